"""The staff app in real headless Chromium, at the 360 px width of a counter phone: live search, the 360° page,
the customer and purchase forms, htmx fragments, masking and the audited reveal, XSS, self-hosted assets."""
from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from dangol.core.audit import Actor
from dangol.core.masking import mask_name
from dangol.core.models import AuditEvent
from dangol.customers.models import Consent, Customer, Interaction
from dangol.customers.services import add_note
from dangol.sales.models import Order

from tests.e2e.support import (assert_no_horizontal_scroll, customer_url, detail_url_pattern, login, mark_document,
                               open_customer, still_same_document)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_counter_lookup_by_last_four_digits_at_360px(page, live_server, bora, products, make_customer, screenshot):
    customer = make_customer(name="김하늘", phone="010-1234-5678", consents=[("sms", "marketing", True)])
    make_customer(name="이바다", phone="010-9999-0000")
    add_note(actor=Actor(user=bora), customer=customer, unit=None, text="창가 자리 선호")
    login(page, live_server, "bora")
    assert_no_horizontal_scroll(page)

    page.get_by_test_id("search-input").press_sequentially("5678", delay=40)  # typing, no enter
    results = page.get_by_test_id("result")
    expect(results).to_have_count(1)
    expect(page).to_have_url(f"{live_server.url}/")  # the results came in place, through htmx
    expect(results).to_contain_text("010-****-5678")
    expect(results).to_contain_text("김*늘")
    assert "김하늘" not in results.inner_text() and "1234" not in results.inner_text()
    assert_no_horizontal_scroll(page)

    results.tap()
    expect(page).to_have_url(customer_url(live_server, customer))
    expect(page.get_by_test_id("customer-name")).to_have_text("김하늘")
    expect(page.get_by_test_id("phone")).to_have_text("010-****-5678")
    assert "010-1234-5678" not in page.content()
    consents = page.get_by_test_id("consents")
    expect(consents).to_be_visible()
    expect(consents.locator("tbody tr")).to_have_count(5)  # 5 channels, each with advertising and at-night cells
    expect(consents.locator("tbody td")).to_have_count(10)
    expect(consents.get_by_test_id("consent-sms-marketing").locator(".yes")).to_be_visible()
    expect(consents.get_by_test_id("consent-sms-night_marketing").locator(".yes")).to_have_count(0)
    expect(page.get_by_test_id("timeline")).to_be_visible()
    expect(page.get_by_test_id("timeline-entry").first).to_contain_text("창가 자리 선호")
    assert_no_horizontal_scroll(page)
    screenshot(page, "customer-360-at-360px")

    page.goto(f"{live_server.url}/customers/search/?q=5678")  # the search page itself (no-JS fallback of the box)
    expect(page.get_by_test_id("result")).to_have_count(1)
    assert_no_horizontal_scroll(page)
    open_customer(page, live_server, customer)
    page.get_by_test_id("edit").tap()
    expect(page.get_by_test_id("customer-form")).to_be_visible()
    assert_no_horizontal_scroll(page)
    page.goto(f"{live_server.url}/customers/new/")
    expect(page.get_by_test_id("customer-form")).to_be_visible()
    assert_no_horizontal_scroll(page)
    screenshot(page, "customer-form-at-360px")

    open_customer(page, live_server, customer)
    page.get_by_test_id("record-purchase").tap()
    expect(page.get_by_test_id("order-form")).to_be_visible()
    screenshot(page, "purchase-form-at-360px")
    assert_no_horizontal_scroll(page)


def test_create_a_customer_with_consent_then_validation_errors_at_360px(page, live_server, bora):
    login(page, live_server, "bora")
    page.get_by_test_id("nav-new").tap()
    form = page.get_by_test_id("customer-form")
    form.locator("#id_name").fill("이서연")
    form.locator("#id_phone").fill("010-2222-3333")
    form.locator("#id_consent_sms_marketing").check()
    form.get_by_test_id("save").tap()

    expect(page).to_have_url(detail_url_pattern(live_server))
    expect(page.get_by_test_id("customer-name")).to_have_text("이서연")
    expect(page.get_by_test_id("phone")).to_have_text("010-****-3333")
    consents = page.get_by_test_id("consents")
    expect(consents.get_by_test_id("consent-sms-marketing").locator(".yes")).to_have_text("granted")
    expect(consents.get_by_test_id("consent-sms-night_marketing").locator(".yes")).to_have_count(0)
    customer = Customer.objects.get()
    assert customer.name == "이서연"
    assert list(Consent.objects.filter(customer=customer, granted=True).values_list("channel", "purpose")) == [("sms", "marketing")]

    page.get_by_test_id("nav-new").tap()
    form = page.get_by_test_id("customer-form")
    form.locator("#id_name").fill("")
    form.locator("#id_phone").fill("123")
    form.get_by_test_id("save").tap()
    name_field = page.locator(".field", has=page.locator("#id_name"))
    phone_field = page.locator(".field", has=page.locator("#id_phone"))
    expect(name_field.get_by_test_id("error-name")).to_be_visible()
    expect(phone_field.get_by_test_id("error-phone")).to_be_visible()
    expect(page.locator("#id_phone")).to_have_value("123")  # the input is kept to be corrected
    assert_no_horizontal_scroll(page)
    assert Customer.objects.count() == 1


def test_duplicate_phone_is_warned_while_typing_and_needs_a_confirmation(page, live_server, bora, make_customer):
    make_customer("bakery", name="박민수", phone="010-3333-4444")
    login(page, live_server, "bora")
    page.goto(f"{live_server.url}/customers/new/")
    page.locator("#id_name").fill("박민지")
    page.locator("#id_phone").press_sequentially("010-3333-4444", delay=20)

    warning = page.get_by_test_id("duplicate-warning")
    expect(warning).to_be_visible()  # htmx, before any save
    expect(warning).to_contain_text("박*수")
    expect(page).to_have_url(f"{live_server.url}/customers/new/")
    assert Customer.objects.count() == 1

    page.get_by_test_id("save").tap()
    expect(page.get_by_test_id("duplicate-warning")).to_be_visible()
    confirm = page.locator("#id_confirm_duplicate")
    expect(confirm).to_be_visible()
    assert Customer.objects.count() == 1

    confirm.check()
    page.get_by_test_id("save").tap()
    expect(page).to_have_url(detail_url_pattern(live_server))
    expect(page.get_by_test_id("customer-name")).to_have_text("박민지")
    assert Customer.objects.count() == 2


def test_record_a_purchase_from_the_360_page(page, live_server, bora, products, make_customer, screenshot):
    customer = make_customer(name="김하늘")
    login(page, live_server, "bora")
    open_customer(page, live_server, customer)
    page.get_by_test_id("record-purchase").tap()

    form = page.get_by_test_id("order-form")
    form.locator("#id_product_0").select_option(str(products["croissant"].pk))
    form.locator("#id_quantity_0").fill("2")
    form.locator("#id_product_1").select_option(str(products["baguette"].pk))
    form.locator("#id_quantity_1").fill("1")
    screenshot(page, "purchase-form-filled-at-360px")
    form.get_by_test_id("save-order").tap()

    expect(page).to_have_url(customer_url(live_server, customer))
    latest = page.get_by_test_id("timeline-entry").first
    expect(latest.locator(".badge.kind-purchase")).to_be_visible()
    expect(latest.locator(".amount")).to_have_text("14,000원")  # 2 × 4,500 + 5,000
    assert Order.objects.get(customer=customer).total == 14000


def test_purchase_form_inputs_show_a_typical_quantity_and_price_at_360px(page, live_server, bora, products, make_customer):
    customer = make_customer()
    login(page, live_server, "bora")
    page.goto(f"{customer_url(live_server, customer)}orders/new/")
    form = page.get_by_test_id("order-form")
    form.locator("#id_quantity_0").fill("120")
    form.locator("#id_price_0").fill("250000")
    clipped = form.locator("#id_quantity_0, #id_price_0").evaluate_all(
        "inputs => inputs.filter(i => i.scrollWidth > i.clientWidth).map(i => `${i.name}: ${i.scrollWidth} > ${i.clientWidth}`)")
    assert clipped == []


def test_a_manager_reveals_the_full_number_with_an_audit_and_staff_cannot(new_page, live_server, mina, bora, make_customer):
    hotel_guest = make_customer("seoul-hotel", name="정우성", phone="010-8765-4321")
    bakery_guest = make_customer("bakery", name="한지민", phone="010-2468-1357")

    manager = new_page()
    login(manager, live_server, "mina")
    open_customer(manager, live_server, hotel_guest)
    expect(manager.get_by_test_id("phone")).to_have_text("010-****-4321")
    assert not AuditEvent.objects.filter(action="customer.view_contacts").exists()
    manager.get_by_test_id("reveal").tap()
    expect(manager.get_by_test_id("phone")).to_have_text("010-8765-4321")
    expect(manager.get_by_test_id("reveal")).to_have_count(0)
    event = AuditEvent.objects.get(action="customer.view_contacts")
    assert (event.actor, event.object_id) == (mina, str(hotel_guest.pk))

    staff = new_page()
    login(staff, live_server, "bora")
    open_customer(staff, live_server, bakery_guest)
    expect(staff.get_by_test_id("phone")).to_have_text("010-****-1357")
    expect(staff.get_by_test_id("reveal")).to_have_count(0)
    assert "010-2468-1357" not in staff.content()
    assert AuditEvent.objects.filter(action="customer.view_contacts").count() == 1


def test_markup_in_a_name_is_shown_as_text_and_never_runs(page, live_server, bora, make_customer):
    names = ["<script>alert(1)</script>", "<img src=x onerror=alert(2)>"]
    customers = [make_customer(name=name, phone=f"010-7777-000{i}") for i, name in enumerate(names)]
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    login(page, live_server, "bora")

    for name, customer in zip(names, customers):
        open_customer(page, live_server, customer)
        expect(page.get_by_test_id("customer-name")).to_have_text(name)

    page.get_by_test_id("nav-new").tap()
    page.locator("#id_phone").press_sequentially("010-7777-0000", delay=10)  # the duplicate warning lists the name
    expect(page.get_by_test_id("duplicate-warning")).to_contain_text(mask_name(names[0]))

    page.goto(f"{live_server.url}/")
    page.get_by_test_id("search-input").press_sequentially("alert", delay=20)  # by name, swapped in by htmx
    expect(page.get_by_test_id("result")).to_have_count(2)
    for name in names:
        expect(page.get_by_test_id("search-results")).to_contain_text(mask_name(name))

    page.goto(f"{live_server.url}/customers/search/?q=alert")  # the full page, no htmx
    expect(page.get_by_test_id("result")).to_have_count(2)
    page.wait_for_timeout(200)
    assert dialogs == []
    assert page.locator("main script, main img").count() == 0


def test_older_timeline_entries_load_in_place(page, live_server, bora, make_customer, settings):
    settings.TIMELINE_PAGE_SIZE = 3
    customer = make_customer()
    start = timezone.now() - dt.timedelta(days=1)
    for i in range(7):
        add_note(actor=Actor(user=bora), customer=customer, unit=None, text=f"note {i}", at=start + dt.timedelta(minutes=i))
    login(page, live_server, "bora")
    open_customer(page, live_server, customer)
    entries = page.get_by_test_id("timeline-entry")
    expect(entries).to_have_count(3)
    mark_document(page)

    page.get_by_test_id("timeline-more").tap()
    expect(entries).to_have_count(6)
    page.get_by_test_id("timeline-more").tap()
    expect(entries).to_have_count(7)
    expect(page.get_by_test_id("timeline-more")).to_have_count(0)
    assert [e.split()[0:2] for e in entries.locator(".ev-body").all_inner_texts()] == [["note", str(i)] for i in range(6, -1, -1)]
    assert still_same_document(page)
    assert page.url == customer_url(live_server, customer)


def test_assets_are_served_by_the_app_itself(page, live_server, bora, make_customer):
    customer = make_customer()
    requests, responses = [], {}
    page.on("request", lambda request: requests.append(request.url))
    page.on("response", lambda response: responses.__setitem__(response.url, response.status))
    login(page, live_server, "bora")
    open_customer(page, live_server, customer)
    page.wait_for_load_state("networkidle")

    assert requests, "no request recorded"
    foreign = [url for url in requests if not url.startswith(live_server.url + "/")]
    assert foreign == [], f"requests to other hosts: {foreign}"
    assert page.evaluate("typeof window.htmx") == "object"
    assert page.evaluate("typeof window.htmx.ajax") == "function"

    css_url = page.locator("link[rel=stylesheet]").evaluate("link => link.href")
    assert css_url.startswith(live_server.url + "/static/") and css_url.endswith(".css")
    css = page.request.get(css_url)
    assert css.status == 200 and "text/css" in css.headers["content-type"]
    assert responses.get(css_url) == 200
    script_urls = page.locator("script[src]").evaluate_all("scripts => scripts.map(s => s.src)")
    assert script_urls and all(responses.get(url) == 200 for url in script_urls), (script_urls, responses)
    # The stylesheet is applied, not only downloaded: the top bar has the app's green.
    assert page.locator(".topbar").evaluate("el => getComputedStyle(el).backgroundColor") == "rgb(11, 110, 79)"


def test_a_note_added_through_htmx_tops_the_timeline_without_a_reload(page, live_server, bora, make_customer):
    customer = make_customer()
    add_note(actor=Actor(user=bora), customer=customer, unit=None, text="이전 메모", at=timezone.now() - dt.timedelta(hours=1))
    login(page, live_server, "bora")
    open_customer(page, live_server, customer)
    mark_document(page)

    note_form = page.locator("#note-form")
    note_form.locator("select[name=kind]").select_option("visit")
    note_form.locator("textarea[name=text]").fill("생일 케이크 문의")
    note_form.locator("button").tap()

    first = page.get_by_test_id("timeline-entry").first
    expect(first).to_contain_text("생일 케이크 문의")
    expect(first.locator(".badge.kind-visit")).to_be_visible()
    expect(page.get_by_test_id("timeline-entry")).to_have_count(2)
    expect(page.locator("#note-form textarea[name=text]")).to_have_value("")  # a fresh form for the next note
    assert still_same_document(page)
    assert Interaction.objects.filter(customer=customer, kind="visit", summary="생일 케이크 문의").count() == 1

    text = page.locator("#note-form textarea[name=text]")
    page.locator("#note-form button").tap()  # empty: the browser's own check (required) stops it
    assert text.evaluate("el => el.validity.valueMissing")
    text.fill("   ")  # only blanks: the server says no, in place
    page.locator("#note-form button").tap()
    expect(page.locator("#note-form .error")).to_be_visible()
    assert still_same_document(page)
    assert Interaction.objects.filter(customer=customer).count() == 2
