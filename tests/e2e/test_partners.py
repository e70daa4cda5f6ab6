"""The partner export page in headless Chromium at 360 px: a hotel manager records a customer's consent on the 360°
page, exports the consenting customers' agreed fields, reads the password and the link once, and the link downloads an
encrypted zip that opens with that password."""
from __future__ import annotations

import io

import pytest
import pyzipper
from playwright.sync_api import expect

from dangol.partners.models import Transfer

from tests.e2e.support import assert_no_horizontal_scroll, login, open_customer
from tests.partners.test_sharing import card_company, outbound  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"


def test_a_manager_records_a_consent_and_exports_to_the_partner(page, live_server, mina, outbound, make_customer,  # noqa: F811
                                                                screenshot):
    guest = make_customer("seoul-hotel", name="한동의", phone="010-8642-1357")
    make_customer("seoul-hotel", name="무응답")
    login(page, live_server, "mina")

    open_customer(page, live_server, guest)
    panel = page.get_by_test_id(f"partner-consent-{outbound.pk}")
    expect(panel).to_contain_text("not asked")
    panel.locator("summary").tap()
    form = page.get_by_test_id(f"partner-consent-form-{outbound.pk}")
    form.locator("input[value=yes]").check()
    form.locator("select[name=method]").select_option("paper")
    form.locator("input[name=evidence]").fill("form 2026-0042")
    form.locator("button").tap()
    expect(page.get_by_test_id(f"partner-consent-{outbound.pk}")).to_contain_text("agreed")

    page.get_by_test_id("nav-partners").tap()
    expect(page.get_by_test_id(f"agreement-{outbound.pk}")).to_contain_text("1")
    page.get_by_test_id(f"export-{outbound.pk}").tap()
    expect(page.get_by_test_id("consenting")).to_contain_text("1 customer consented")
    assert_no_horizontal_scroll(page)
    screenshot(page, "partner-export-at-360px")
    page.get_by_label("Member number").uncheck()
    page.get_by_test_id("export-run").tap()

    expect(page.get_by_test_id("export-done")).to_contain_text("1 customer for Hanbit Card")
    password = page.get_by_test_id("export-password").inner_text()
    link = page.get_by_test_id("export-link").input_value()
    assert_no_horizontal_scroll(page)
    response = page.request.get(link)
    assert response.ok and response.headers["content-type"] == "application/zip"
    archive = pyzipper.AESZipFile(io.BytesIO(response.body()))
    archive.setpassword(password.encode())
    text = archive.read(archive.namelist()[0]).decode("utf-8-sig")
    assert text.splitlines() == ["Name,Mobile phone", "한동의,+821086421357"]
    transfer = Transfer.objects.get()
    assert (transfer.customers, transfer.fields, transfer.downloads, transfer.by) == (1, ["name", "phone"], 1, mina)
