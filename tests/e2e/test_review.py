"""The review pages of data cleansing in real headless Chromium, at a phone's 360 px and at a desktop width: a manager
works through the duplicate queue, merges a pair, sees the integrated customer with orders of two units, undoes the
merge, and accepts a flagged order."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from dangol.core.audit import Actor
from dangol.core.models import AuditEvent, Role
from dangol.core.services import create_staff_user
from dangol.customers.models import Customer
from dangol.customers.services import DateParts
from dangol.ingest.models import CandidateStatus, DuplicateCandidate, FlagReason, FlagStatus, Merge, OrderFlag
from dangol.sales.models import Category, Order, Product
from dangol.sales.services import LineInput, record_order

from tests.e2e.support import (assert_no_horizontal_scroll, customer_url, login, mark_document, open_customer,
                               still_same_document)
from tests.helpers import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

DESKTOP = {"viewport": {"width": 1280, "height": 900}, "is_mobile": False, "has_touch": False, "device_scale_factor": 1}
WIDTHS = {"360px": None, "desktop": DESKTOP}


@pytest.fixture
def hotel_group(units, products, make_customer):
    """A manager of both hotels; one guest registered twice (once per hotel), each record with a stay; a suspicious
    imported order."""
    create_staff_user(username="jun", password=PASSWORD, role=Role.MANAGER, units=[units["seoul-hotel"], units["busan-hotel"]])
    rooms = Category.objects.create(name="객실", unit=units["busan-hotel"])
    ocean = Product.objects.create(unit=units["busan-hotel"], category=rooms, sku="B-OCN", name="오션뷰 룸", price=180000)
    seoul = make_customer("seoul-hotel", name="정우성", phone="010-8765-4321", email="woosung@example.com",
                          birthday=DateParts(month=3, day=20, year=1985), sido="서울특별시", sigungu="강남구")
    busan = make_customer("busan-hotel", name="정우성", phone="010-8765-4321", sido="부산광역시", sigungu="해운대구")
    actor = Actor.system("test")
    record_order(actor=actor, unit=units["seoul-hotel"], customer=seoul, lines=[LineInput(product_id=products["deluxe"].pk, quantity=1)])
    record_order(actor=actor, unit=units["busan-hotel"], customer=busan, lines=[LineInput(product_id=ocean.pk, quantity=2)])
    record_order(actor=actor, unit=units["busan-hotel"], customer=busan, lines=[LineInput(product_id=ocean.pk, quantity=1)])
    left, right = sorted([seoul, busan], key=lambda c: c.pk)
    candidate = DuplicateCandidate.objects.create(
        left=left, right=right, match_probability=0.91, match_weight=6.4,
        agreements={"name": "exact", "phone": "exact", "email": "missing", "birth_date": "missing", "address": "different",
                    "gender": "missing"})
    other_guest = make_customer("seoul-hotel", name="한지민", phone="010-2468-1357")
    suspicious = record_order(actor=actor, unit=units["seoul-hotel"], customer=other_guest,
                              lines=[LineInput(product_id=products["deluxe"].pk, quantity=1, unit_price=25_000_000)])
    Order.objects.filter(pk=suspicious.pk).update(needs_review=True)
    flag = OrderFlag.objects.create(order=suspicious, reason=FlagReason.EXTREME_PRICE, detail="25,000,000원 vs list price 250,000원")
    return {"seoul": seoul, "busan": busan, "candidate": candidate, "flag": flag, "order": suspicious}


@pytest.mark.parametrize("width", list(WIDTHS))
def test_a_manager_merges_a_pair_sees_the_integrated_customer_and_undoes_it(new_page, live_server, hotel_group, screenshot, width):
    options = WIDTHS[width]
    page = new_page(**options) if options else new_page()
    check_width = 1280 if options else 360
    seoul, busan, candidate = hotel_group["seoul"], hotel_group["busan"], hotel_group["candidate"]
    login(page, live_server, "jun")

    page.get_by_test_id("nav-review").click()
    expect(page).to_have_url(f"{live_server.url}/review/duplicates/")
    pairs = page.get_by_test_id("pair")
    expect(pairs).to_have_count(1)
    expect(pairs).to_contain_text("91%")
    expect(pairs).to_contain_text("정*성")
    expect(pairs).to_contain_text("010-****-4321")
    expect(pairs).to_contain_text("한빛호텔 부산")
    assert "정우성" not in pairs.inner_text() and "8765" not in pairs.inner_text()
    assert_no_horizontal_scroll(page, check_width)
    screenshot(page, f"review-queue-{width}")

    pairs.click()
    expect(page).to_have_url(f"{live_server.url}/review/duplicates/{candidate.pk}/")
    expect(page.get_by_test_id("probability")).to_have_text("91%")
    expect(page.get_by_test_id("weight")).to_have_text("6.4")
    expect(page.get_by_test_id("level-name")).to_have_text("agree")
    expect(page.get_by_test_id("level-address")).to_have_text("differ")
    expect(page.get_by_test_id("row-units")).to_contain_text("한빛호텔 서울")
    expect(page.get_by_test_id("row-units")).to_contain_text("한빛호텔 부산")
    expect(page.get_by_test_id("row-orders")).to_contain_text("2 orders")
    assert AuditEvent.objects.filter(action="customer.view_contacts").count() == 2
    suggested = page.locator("[data-suggested=true]")
    expect(suggested).to_have_count(1)
    expect(suggested).to_have_attribute("value", str(busan.pk))  # more orders: the Busan record is kept
    assert_no_horizontal_scroll(page, check_width)
    screenshot(page, f"review-pair-{width}")

    suggested.click()
    expect(page).to_have_url(customer_url(live_server, busan))
    expect(page.locator(".flash")).to_contain_text("Merged customer")
    timeline = page.get_by_test_id("timeline")
    expect(timeline.locator(".ev-purchase", has_text="한빛호텔 서울")).to_have_count(1)
    expect(timeline.locator(".ev-purchase", has_text="한빛호텔 부산")).to_have_count(2)
    assert_no_horizontal_scroll(page, check_width)
    screenshot(page, f"review-integrated-customer-{width}")
    page.goto(f"{customer_url(live_server, busan)}orders/")
    orders = page.get_by_test_id("orders")
    expect(orders).to_contain_text("디럭스 룸")
    expect(orders).to_contain_text("오션뷰 룸")
    assert Customer.objects.get(pk=seoul.pk).merged_into_id == busan.pk
    assert DuplicateCandidate.objects.get().status == CandidateStatus.MERGED

    page.goto(f"{live_server.url}/review/duplicates/")
    expect(page.get_by_test_id("no-pairs")).to_be_visible()
    page.get_by_test_id("review-tabs").get_by_role("link", name=re.compile("Merges")).click()
    merge_row = page.get_by_test_id("merge")
    expect(merge_row).to_have_count(1)
    expect(merge_row.get_by_test_id("merge-status")).to_have_text("merged")
    mark_document(page)
    merge_row.get_by_test_id("undo").click()
    expect(merge_row.get_by_test_id("confirm-undo")).to_be_visible()
    assert_no_horizontal_scroll(page, check_width)
    screenshot(page, f"review-undo-confirm-{width}")
    merge_row.get_by_test_id("confirm-undo").click()
    expect(page.get_by_test_id("merge").get_by_test_id("merge-status")).to_have_text("undone")
    expect(page.get_by_test_id("merge")).to_contain_text("Merge undone")
    assert still_same_document(page)  # the row was replaced in place, through htmx
    screenshot(page, f"review-undone-{width}")
    assert Customer.objects.get(pk=seoul.pk).merged_into_id is None
    assert Merge.objects.get().undone_at is not None
    assert set(Order.objects.filter(customer=seoul).values_list("unit__code", flat=True)) == {"seoul-hotel"}
    open_customer(page, live_server, seoul)
    expect(page.get_by_test_id("customer-name")).to_have_text("정우성")


@pytest.mark.parametrize("width", list(WIDTHS))
def test_a_manager_accepts_a_flagged_order(new_page, live_server, hotel_group, screenshot, width):
    options = WIDTHS[width]
    page = new_page(**options) if options else new_page()
    check_width = 1280 if options else 360
    login(page, live_server, "jun")
    page.goto(f"{live_server.url}/review/duplicates/")
    page.get_by_test_id("review-tabs").get_by_role("link", name=re.compile("Flagged orders")).click()
    row = page.get_by_test_id("flag")
    expect(row).to_have_count(1)
    expect(row.get_by_test_id("flag-reason")).to_have_text("Price far from the product's list price")
    expect(row).to_contain_text("25,000,000원")
    expect(row).to_contain_text("한빛호텔 서울")
    expect(row.get_by_test_id("flag-customer")).to_have_text("한*민")
    assert_no_horizontal_scroll(page, check_width)
    screenshot(page, f"review-flagged-orders-{width}")

    mark_document(page)
    row.get_by_test_id("accept").click()
    expect(row.get_by_test_id("flag-status")).to_have_text("Accepted")
    expect(row).to_contain_text("now counts in analytics")
    expect(row.get_by_test_id("accept")).to_have_count(0)
    assert still_same_document(page)
    screenshot(page, f"review-flag-accepted-{width}")
    assert OrderFlag.objects.get().status == FlagStatus.ACCEPTED
    assert Order.objects.get(pk=hotel_group["order"].pk).needs_review is False

    page.reload()
    expect(page.get_by_test_id("no-flags")).to_be_visible()
    page.get_by_test_id("status-accepted").click()
    expect(page.get_by_test_id("flag")).to_have_count(1)


def test_the_review_pages_work_without_javascript(new_page, live_server, hotel_group):
    page = new_page(java_script_enabled=False)
    login(page, live_server, "jun")
    page.goto(f"{live_server.url}/review/orders/")
    page.get_by_test_id("keep-out").click()
    expect(page.locator(".flash")).to_contain_text("Kept out")
    assert OrderFlag.objects.get().status == FlagStatus.REJECTED
    page.goto(f"{live_server.url}/review/duplicates/{hotel_group['candidate'].pk}/")
    page.get_by_test_id("not-same").click()
    expect(page).to_have_url(f"{live_server.url}/review/duplicates/")
    expect(page.get_by_test_id("no-pairs")).to_be_visible()
    assert DuplicateCandidate.objects.get().status == CandidateStatus.NOT_SAME


def test_staff_get_a_403_page_and_no_review_link(page, live_server, bora):
    login(page, live_server, "bora")
    expect(page.get_by_test_id("nav-review")).to_have_count(0)
    response = page.goto(f"{live_server.url}/review/duplicates/")
    assert response.status == 403
    expect(page.get_by_test_id("forbidden")).to_be_visible()
