"""A coupon used on a purchase: the minimum spend is checked when the counter or a POS gives the amount, and the
discount it gave is recorded (amount coupons their value up to the purchase, percentages their share, gifts
unknown) — what campaign results count as the offer's cost."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from dangol.core.audit import Actor
from dangol.loyalty.models import Coupon, CouponKind, CouponStatus, CouponTemplate
from dangol.loyalty.services import coupon_discount, coupon_problem, use_coupon
from dangol.loyalty.wallet import issue_coupons

from tests.helpers import login

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english():
    from django.utils import translation

    with translation.override("en"):
        yield


@pytest.fixture
def templates():
    return {
        "amount": CouponTemplate.objects.create(name="10,000 off 50,000", kind=CouponKind.AMOUNT, value=10_000, min_spend_krw=50_000),
        "percent": CouponTemplate.objects.create(name="15 %", kind=CouponKind.PERCENT, value=15),
        "gift": CouponTemplate.objects.create(name="Free coffee", kind=CouponKind.GIFT, value=0),
    }


def one(template, customer) -> Coupon:
    [pk] = issue_coupons(template=template, customer_ids=[customer.pk], source="campaign")
    return Coupon.objects.select_related("template").get(pk=pk)


@pytest.mark.parametrize("kind, amount, expected", [
    ("amount", None, 10_000), ("amount", 80_000, 10_000), ("amount", 6_000, 6_000),
    ("percent", 33_333, 4_999), ("percent", None, None), ("gift", 20_000, None),
])
def test_the_discount_of_each_kind(templates, kind, amount, expected):
    assert coupon_discount(templates[kind], amount) == expected


def test_below_the_minimum_spend_the_coupon_is_refused_and_stays_in_the_wallet(templates, make_customer, units, bora):
    guest = make_customer("bakery", name="박하늘")
    coupon = one(templates["amount"], guest)
    assert coupon_problem(coupon, unit=units["bakery"]) is None  # without the amount: not checked
    assert "at least 50,000 KRW" in coupon_problem(coupon, unit=units["bakery"], amount_krw=49_999)["amount_krw"][0]
    for bad in (-1, 10**12, "5000"):
        assert "amount_krw" in coupon_problem(coupon, unit=units["bakery"], amount_krw=bad)
    with pytest.raises(ValidationError):
        use_coupon(actor=Actor(user=bora), coupon=coupon, unit=units["bakery"], amount_krw=30_000)
    assert Coupon.objects.get(pk=coupon.pk).status == CouponStatus.ACTIVE
    used = use_coupon(actor=Actor(user=bora), coupon=coupon, unit=units["bakery"], amount_krw=50_000)
    assert (used.status, used.purchase_krw, used.discount_krw) == (CouponStatus.USED, 50_000, 10_000)
    percent = use_coupon(actor=Actor(user=bora), coupon=one(templates["percent"], guest), unit=units["bakery"], amount_krw=20_000)
    assert percent.discount_krw == 3_000
    gift = use_coupon(actor=Actor(user=bora), coupon=one(templates["gift"], guest), unit=units["bakery"])
    assert gift.discount_krw is None and gift.purchase_krw is None


def test_the_counter_takes_the_purchase_amount(client, templates, make_customer, units, bora):
    guest = make_customer("bakery", name="박하늘")
    coupon = one(templates["amount"], guest)
    login(client, bora)
    html = client.get(reverse("web:customer_detail", args=[guest.pk])).content.decode()
    assert 'data-testid="coupon-amount"' in html
    url = reverse("web:loyalty_use_coupon", args=[guest.pk, coupon.pk])
    hx = {"HTTP_HX_REQUEST": "true", "HTTP_ACCEPT_LANGUAGE": "en"}
    low = client.post(url, {"coupon-unit": str(units["bakery"].pk), "coupon-amount_krw": "20000"}, **hx).content.decode()
    assert "at least 50,000 KRW" in low and Coupon.objects.get(pk=coupon.pk).status == CouponStatus.ACTIVE
    bad = client.post(url, {"coupon-unit": str(units["bakery"].pk), "coupon-amount_krw": "-5"}, **hx).content.decode()
    assert 'data-testid="loyalty-error"' in bad and Coupon.objects.get(pk=coupon.pk).status == CouponStatus.ACTIVE
    client.post(url, {"coupon-unit": str(units["bakery"].pk), "coupon-amount_krw": "64000"}, **hx)
    assert Coupon.objects.get(pk=coupon.pk).discount_krw == 10_000

