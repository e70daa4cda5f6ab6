"""Stamp cards at the counter in headless Chromium at 360 px: a bakery clerk stamps a member's card in one tap
(a double tap stamps once), the full card puts the reward coupon in the wallet, the member card link shows the stamps."""
from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from dangol.loyalty import card as member_card
from dangol.loyalty import services
from dangol.loyalty.models import CouponKind, CouponTemplate, StampBasis, StampCard, StampEntry

from tests.e2e.support import assert_no_horizontal_scroll, login, open_customer
from tests.loyalty.conftest import program  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def coffee_card(units):
    reward = CouponTemplate.objects.create(name="Free Americano", kind=CouponKind.GIFT, value=0, valid_days=30)
    return StampCard.objects.create(unit=units["bakery"], name="Coffee stamps", basis=StampBasis.PURCHASE, stamps=1,
                                    target=3, reward=reward, starts_at=timezone.now() - dt.timedelta(days=1))


def test_a_clerk_stamps_in_one_tap_until_the_reward(page, live_server, bora, program, coffee_card, make_customer,  # noqa: F811
                                                   screenshot):
    member = make_customer("bakery", name="김도장")
    login(page, live_server, "bora")
    open_customer(page, live_server, member)
    card = page.get_by_test_id("stamp-card")
    expect(card).to_contain_text("Coffee stamps")
    expect(page.get_by_test_id("stamp-count")).to_have_text("0")
    assert_no_horizontal_scroll(page)

    page.get_by_test_id("stamp").dblclick()  # a double tap: one request id, one stamp
    expect(page.get_by_test_id("loyalty-done")).to_contain_text("Stamped: 1 of 3")
    expect(page.get_by_test_id("stamp-count")).to_have_text("1")
    assert StampEntry.objects.filter(customer=member).count() == 1

    for expected in ("2", "0"):
        page.get_by_test_id("stamp").tap()
        expect(page.get_by_test_id("stamp-count")).to_have_text(expected)
    expect(page.get_by_test_id("loyalty-done")).to_contain_text("Free Americano is in the wallet")
    expect(page.get_by_test_id("coupons")).to_contain_text("Free Americano")
    assert_no_horizontal_scroll(page)
    screenshot(page, "stamp-card-at-360px")

    page.get_by_test_id("stamp").tap()
    expect(page.get_by_test_id("stamp-count")).to_have_text("1")
    number = services.ensure_account(member).member_number
    page.goto(live_server.url + member_card.card_path(number))
    expect(page.get_by_test_id("card-stamp-count")).to_have_text("1")
    expect(page.get_by_test_id("card-stamps")).to_contain_text("2 more for Free Americano")
    expect(page.get_by_test_id("card-coupons")).to_contain_text("Free Americano")
    assert_no_horizontal_scroll(page)
