"""The import wizard in real headless Chromium at phone width: a manager imports the bakery's CP949 member export
(dry run first, then for real), reads the counts, downloads the error report, then imports the order lines and finds
the flagged ones on the review page."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from dangol.core.models import Role
from dangol.core.services import create_staff_user
from dangol.customers.models import Customer
from dangol.demo.catalogue import ensure_reference_data
from dangol.demo.samples import write_sample_files
from dangol.ingest.models import ImportJob, OrderFlag

from tests.e2e.support import assert_no_horizontal_scroll, login
from tests.helpers import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def bakery_manager(settings, tmp_path):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend",
                                  "QUEUES": ["default", "analytics", "messages"]}}
    settings.DANGOL_DEDUPE_AFTER_IMPORT = False
    settings.DATA_DIR = tmp_path / "data"
    ensure_reference_data()
    from dangol.core.models import BusinessUnit

    create_staff_user(username="hana", password=PASSWORD, role=Role.MANAGER, units=[BusinessUnit.objects.get(code="bakery")])
    return write_sample_files(tmp_path / "samples")


def test_a_manager_imports_the_bakery_export_with_a_dry_run_first(new_page, live_server, bakery_manager, screenshot, tmp_path):
    page = new_page()
    login(page, live_server, "hana")
    page.get_by_test_id("nav-import").click()
    page.locator("select[name=kind]").select_option("customers")
    page.locator("input[name=file]").set_input_files(str(bakery_manager["bakery_customers"]))
    page.get_by_test_id("upload").click()
    expect(page.get_by_test_id("preview")).to_contain_text("성명")
    expect(page.get_by_test_id("map-1")).to_have_value("name")  # 성명 recognised
    expect(page.get_by_test_id("dry-run")).to_be_checked()
    assert_no_horizontal_scroll(page)
    screenshot(page, "import-mapping")
    page.get_by_test_id("start-import").click()
    status = page.get_by_test_id("import-status")
    expect(status).to_have_attribute("data-status", "done")
    expect(page.get_by_test_id("counts-line")).to_have_text("read: 84, created: 80, updated: 0, unchanged: 0, rejected: 4")
    assert Customer.objects.count() == 0
    page.get_by_test_id("import-for-real").click()
    expect(page.get_by_test_id("counts-line")).to_have_text("read: 84, created: 80, updated: 0, unchanged: 0, rejected: 4")
    assert Customer.objects.count() == 80
    expect(page.get_by_test_id("row-errors")).to_contain_text("1990-02-30")
    assert_no_horizontal_scroll(page)
    screenshot(page, "import-result")
    with page.expect_download() as download:
        page.get_by_test_id("error-report").click()
    report = download.value.path().read_bytes().decode("utf-8-sig")
    assert report.splitlines()[0] == "row,column,value,code,reason_ko,reason_en"
    assert len(report.splitlines()) == 1 + ImportJob.objects.get(dry_run=False).row_errors.count()

    page.get_by_test_id("nav-import").click()
    page.locator("select[name=kind]").select_option("orders")
    page.locator("input[name=file]").set_input_files(str(bakery_manager["bakery_orders"]))
    page.get_by_test_id("upload").click()
    page.get_by_test_id("dry-run").uncheck()
    page.get_by_test_id("start-import").click()
    expect(page.get_by_test_id("import-status")).to_have_attribute("data-status", "done")
    expect(page.get_by_test_id("count-rejected")).to_have_text("1")
    expect(page.get_by_test_id("flagged")).to_be_visible()
    page.get_by_test_id("flagged").get_by_role("link").click()
    expect(page.get_by_test_id("flags").locator("li")).to_have_count(OrderFlag.objects.count())
    screenshot(page, "import-flagged-orders")
