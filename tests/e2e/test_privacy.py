"""Privacy in real headless Chromium at 360 px: the requests board shows an overdue deletion request, the admin
follows it to the erasure confirmation, a wrong confirmation is refused, the right one erases (orders kept); a
manager withdraws a marketing consent in one tap and exports with a reason."""
from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from dangol.core.audit import Actor
from dangol.core.models import AuditEvent
from dangol.customers.models import Customer
from dangol.privacy import services as privacy
from dangol.sales.models import Order
from dangol.sales.services import LineInput, record_order

from tests.e2e.support import assert_no_horizontal_scroll, login

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def requests_due(make_customer, products):
    system = Actor.system("test")
    now = timezone.now()
    leaving = make_customer("bakery", name="탈퇴희망", phone="010-3690-1470", email="leaving@example.com")
    record_order(actor=system, unit=products["croissant"].unit, customer=leaving,
                 lines=[LineInput(product_id=products["croissant"].pk, quantity=3)])
    deletion = privacy.open_request(actor=system, customer=leaving, kind="deletion", received_at=now - dt.timedelta(days=12))
    curious = make_customer("bakery", name="열람요청")
    access = privacy.open_request(actor=system, customer=curious, kind="access", received_at=now - dt.timedelta(days=9))
    return {"leaving": leaving, "deletion": deletion, "access": access}


def test_the_admin_erases_an_overdue_deletion_request_after_confirming(page, live_server, alice, requests_due, screenshot):
    leaving, deletion = requests_due["leaving"], requests_due["deletion"]
    login(page, live_server, "alice")
    page.get_by_test_id("nav-privacy").click()
    overdue = page.get_by_test_id("requests-overdue")
    expect(overdue.get_by_test_id(f"request-{deletion.pk}")).to_be_visible()
    expect(overdue).to_contain_text("탈**망")  # masked on the board
    expect(page.get_by_test_id("requests-near-due").get_by_test_id(f"request-{requests_due['access'].pk}")).to_be_visible()
    assert_no_horizontal_scroll(page)
    screenshot(page, "privacy-requests-board")

    overdue.get_by_role("link", name=f"#{deletion.pk}").click()
    expect(page.get_by_test_id("request-overdue")).to_be_visible()
    page.get_by_test_id("request-erase").click()

    confirm = page.get_by_test_id("erase-confirm")
    expect(confirm).to_contain_text("cannot be undone")
    expect(confirm).to_contain_text("Orders: 1")
    assert_no_horizontal_scroll(page)
    screenshot(page, "privacy-erase-confirm")
    page.locator("#id_confirm").fill(str(leaving.pk + 1000))
    page.get_by_test_id("erase-submit").click()
    expect(page.get_by_test_id("error-confirm")).to_be_visible()
    assert Customer.objects.get(pk=leaving.pk).erased_at is None

    page.locator("#id_confirm").fill(str(leaving.pk))
    page.get_by_test_id("erase-submit").click()
    expect(page.get_by_test_id("erased-banner")).to_be_visible()
    erased = Customer.objects.get(pk=leaving.pk)
    assert erased.name == f"삭제된 고객 #{leaving.pk}" and not erased.contacts.exists()
    assert Order.objects.filter(customer=erased).count() == 1
    deletion.refresh_from_db()
    assert deletion.status == "done"
    assert AuditEvent.objects.filter(action="privacy.erase", object_id=str(leaving.pk)).exists()

    page.get_by_test_id("nav-privacy").click()
    expect(page.get_by_test_id("requests-overdue").get_by_test_id(f"request-{deletion.pk}")).to_have_count(0)
    expect(page.get_by_test_id("requests-closed").get_by_test_id(f"request-{deletion.pk}")).to_be_visible()


def test_a_manager_withdraws_in_one_tap_and_exports_with_a_reason(page, live_server, mina, make_customer):
    guest = make_customer("seoul-hotel", name="한지민", email="jimin@example.com", consents=[("email", "marketing", True)])
    login(page, live_server, "mina")
    page.goto(f"{live_server.url}/customers/{guest.pk}/")
    page.get_by_test_id("privacy-link").click()
    page.get_by_test_id("withdraw-marketing-email-marketing").click()
    expect(page.get_by_test_id("consents-in-force")).to_contain_text("No consent in force")
    assert not guest.consents.order_by("-at", "-id").first().granted
    assert_no_horizontal_scroll(page)

    page.get_by_test_id("export-link").click()
    page.locator("#id_format").select_option("html")
    page.get_by_test_id("export-submit").click()  # no reason yet: the browser refuses to send the form
    expect(page.get_by_test_id("export-form")).to_be_visible()
    assert not AuditEvent.objects.filter(action__startswith="privacy.export").exists()
    page.locator("#id_reason").select_option("dsr")
    page.get_by_test_id("export-submit").click()
    expect(page.get_by_test_id("export-page")).to_contain_text("jimin@example.com")
    assert AuditEvent.objects.get(action="privacy.export_html").access_reason.code == "dsr"
