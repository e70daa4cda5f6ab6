"""Loyalty at the counter in real headless Chromium at 360 px — the demo of issue 8: a bakery clerk finds a hotel
member by the number on their card, earns by recording a purchase, redeems with a confirmation, the member card link
shows the new balance, a refund takes the points back, expiry runs; a newcomer joins with the member's referral code
and the first purchase rewards both; a big purchase upgrades the member to Gold, whose coupon is used at the counter."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from dangol.core.audit import Actor
from dangol.loyalty import jobs
from dangol.loyalty.models import Account, Coupon, EntryKind, LedgerEntry, Referral
from dangol.sales.models import Order
from dangol.sales.services import record_refund

from tests.e2e.support import assert_no_horizontal_scroll, customer_url, detail_url_pattern, login, open_customer
from tests.loyalty.conftest import buy, program, tiers  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def hotel_member(tiers, make_customer, buy):  # noqa: F811
    """A Seoul hotel guest (Silver after a 250,000 KRW stay: 7,500 P) with an old bakery purchase whose points are past
    their date."""
    guest = make_customer("seoul-hotel", name="한지민", phone="010-2468-1357")
    buy(guest, "croissant", 10, at=timezone.now() - dt.timedelta(days=400))  # 450 P, expired since
    buy(guest, "deluxe")
    return guest


def balance_text(page) -> str:
    return page.get_by_test_id("points-balance").inner_text()


def record_purchase(page, product, quantity: int) -> None:
    page.get_by_test_id("earn").tap()
    form = page.get_by_test_id("order-form")
    form.locator("#id_product_0").select_option(str(product.pk))
    form.locator("#id_quantity_0").fill(str(quantity))
    form.get_by_test_id("save-order").tap()


def test_a_bakery_clerk_earns_and_redeems_for_a_hotel_member_and_the_card_follows(page, live_server, bora, hotel_member,
                                                                                products, screenshot):
    number = Account.objects.get(pk=hotel_member.pk).member_number
    login(page, live_server, "bora")
    page.get_by_test_id("nav-member").tap()
    page.locator("#id_number").fill(f"{number[:4]} {number[4:8]} {number[8:]}")
    assert_no_horizontal_scroll(page)
    page.get_by_test_id("member-find").tap()

    # The hotel member is now known at the bakery too; the 360° page shows the points panel.
    expect(page).to_have_url(customer_url(live_server, hotel_member))
    panel = page.get_by_test_id("loyalty-panel")
    expect(panel).to_be_visible()
    expect(page.get_by_test_id("points-balance")).to_have_text("7,500")  # the expired 450 P do not count
    expect(page.get_by_test_id("tier")).to_have_text("Silver")
    assert_no_horizontal_scroll(page)
    screenshot(page, "loyalty-panel-at-360px")

    # The hourly expiry job closes the old lot: the balance shown already left it out.
    run = jobs.expire_due_points()
    assert (run.lots, run.points) == (1, 450)
    page.reload()
    expect(page.get_by_test_id("points-balance")).to_have_text("7,500")
    expect(page.get_by_test_id("timeline")).to_contain_text("−450")

    # Earn: a purchase at the bakery, 3 croissants = 13,500 KRW → 135 P × 1.1 (Silver) = 148 P.
    record_purchase(page, products["croissant"], 3)
    expect(page).to_have_url(customer_url(live_server, hotel_member))
    expect(page.get_by_test_id("points-balance")).to_have_text("7,648")

    # Redeem with a confirmation step; nothing is spent before the confirmation.
    form = page.get_by_test_id("redeem-form")
    form.locator("input[name=redeem-points]").fill("5000")
    form.get_by_test_id("redeem").tap()
    confirm = page.get_by_test_id("redeem-confirm")
    expect(confirm).to_be_visible()
    expect(confirm).to_contain_text("5,000 P")
    expect(confirm).to_contain_text("7,648 P → 2,648 P")
    assert not LedgerEntry.objects.filter(kind=EntryKind.REDEEM).exists()
    assert_no_horizontal_scroll(page)
    screenshot(page, "loyalty-redeem-confirm-at-360px")
    page.get_by_test_id("redeem-confirm-button").tap()
    expect(page.get_by_test_id("loyalty-done")).to_contain_text("5,000 points redeemed.")
    expect(page.get_by_test_id("points-balance")).to_have_text("2,648")
    assert LedgerEntry.objects.get(kind=EntryKind.REDEEM).unit.code == "bakery"
    screenshot(page, "loyalty-redeemed-at-360px")

    # A refused redemption says why, in place.
    form = page.get_by_test_id("redeem-form")
    form.locator("input[name=redeem-points]").fill("9999")
    form.get_by_test_id("redeem").tap()
    expect(page.get_by_test_id("redeem-error")).to_contain_text("Only 2,648 points are available.")

    # The member card behind its signed link, without a login: the new balance.
    card_url = page.get_by_test_id("card-link").get_attribute("href")
    card = page.context.browser.new_context(viewport={"width": 360, "height": 740}, locale="en-US").new_page()
    card.goto(card_url)
    expect(card.get_by_test_id("card-balance")).to_have_text("2,648")
    expect(card.get_by_test_id("card-tier")).to_have_text("Silver")
    expect(card.get_by_test_id("card-name")).to_have_text("한*민")
    expect(card.get_by_test_id("card-qr").locator("svg")).to_be_visible()
    expect(card.get_by_test_id("card-number")).to_have_text(f"{number[:4]} {number[4:8]} {number[8:]}")
    assert "010-2468-1357" not in card.content() and "한지민" not in card.content()
    assert_no_horizontal_scroll(card)
    screenshot(card, "loyalty-member-card-at-360px")

    # A refund takes the purchase's points back.
    sale = Order.objects.filter(customer=hotel_member, unit__code="bakery", ordered_at__gte=timezone.now() - dt.timedelta(days=1)).get()
    record_refund(actor=Actor(user=bora), order=sale)
    card.reload()
    expect(card.get_by_test_id("card-balance")).to_have_text("2,500")
    page.reload()
    expect(page.get_by_test_id("points-balance")).to_have_text("2,500")
    kinds = list(LedgerEntry.objects.filter(customer=hotel_member).order_by("id").values_list("kind", "points"))
    assert kinds == [("earn", 450), ("earn", 7500), ("expire", -450), ("earn", 148), ("redeem", -5000), ("reverse", -148)]
    card.context.close()


def test_a_referral_rewards_both_after_the_first_purchase_and_gold_brings_its_coupon(page, live_server, bora, hotel_member,
                                                                                   products, units, screenshot):
    code = Account.objects.get(pk=hotel_member.pk).referral_code  # known at the bakery since their old purchase there
    login(page, live_server, "bora")

    # A newcomer registers at the bakery and joins with the hotel member's code.
    page.get_by_test_id("nav-new").tap()
    form = page.get_by_test_id("customer-form")
    form.locator("#id_name").fill("오새봄")
    form.locator("#id_phone").fill("010-3579-2468")
    form.get_by_test_id("save").tap()
    expect(page).to_have_url(detail_url_pattern(live_server))
    newcomer_id = int(re.search(r"/customers/(\d+)/$", page.url).group(1))
    page.locator("input[name=referral-code]").fill(code.lower())
    page.get_by_test_id("referral-link-button").tap()
    expect(page.get_by_test_id("joined-with")).to_be_visible()
    expect(page.get_by_test_id("points-balance")).to_have_text("0")  # nothing at sign-up
    assert_no_horizontal_scroll(page)
    screenshot(page, "loyalty-referral-linked-at-360px")

    # The first qualifying purchase: 3 croissants (13,500 KRW) → 135 P and the newcomer's 2,000 P reward.
    record_purchase(page, products["croissant"], 3)
    expect(page.get_by_test_id("points-balance")).to_have_text("2,135")
    assert Referral.objects.get().status == "rewarded"

    # The referrer got 3,000 P; a big order makes them Gold, whose coupon lands in the wallet.
    open_customer(page, live_server, hotel_member)
    expect(page.get_by_test_id("points-balance")).to_have_text("10,500")
    record_purchase(page, products["baguette"], 60)  # 300,000 KRW: 550,000 in the period → Gold
    expect(page.get_by_test_id("tier")).to_have_text("Gold")
    coupons = page.get_by_test_id("coupons")
    expect(coupons).to_contain_text("Gold welcome 10,000 KRW")
    assert_no_horizontal_scroll(page)
    screenshot(page, "loyalty-gold-coupon-at-360px")
    coupons.get_by_test_id("coupon-use").tap()
    coupons.get_by_test_id("coupon-use-confirm").tap()
    expect(page.get_by_test_id("loyalty-done")).to_contain_text("Coupon used")
    assert Coupon.objects.get(customer=hotel_member).status == "used"
    assert Account.objects.get(pk=newcomer_id).customer.stage == "customer"
    hotel_member.refresh_from_db()
    assert hotel_member.stage == "advocate"
