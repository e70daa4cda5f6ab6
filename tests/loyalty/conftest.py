"""Shared set-up of the loyalty tests: a configured program (bakery 1 %, Seoul hotel 3 %, Silver and Gold tiers with an
upgrade coupon), purchases through the real sales service, and the ledger's invariant."""
from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone, translation

from dangol.core.audit import Actor
from dangol.loyalty.models import CouponKind, CouponTemplate, EarnRule, LedgerEntry, Lot, Program, Tier
from dangol.sales.services import LineInput, record_order


@pytest.fixture(autouse=True)
def _english():
    """Messages and timeline texts are written in the active language: the tests read them in English."""
    with translation.override("en"):
        yield


@pytest.fixture
def program(units):
    program = Program.current()
    program.default_rate_bp = 100
    program.validity_months = 12
    program.min_redeem_points = 100
    program.expiring_soon_days = 30
    program.tier_basis = "spend"
    program.tier_period_days = 365
    program.tier_grace_days = 90
    program.referral_referrer_points = 3000
    program.referral_newcomer_points = 2000
    program.referral_min_purchase_krw = 10_000
    program.save()
    EarnRule.objects.create(unit=units["bakery"], rate_bp=100)
    EarnRule.objects.create(unit=units["seoul-hotel"], rate_bp=300)
    return program


@pytest.fixture
def tiers(program):
    welcome = CouponTemplate.objects.create(name="Gold welcome 10,000 KRW", kind=CouponKind.AMOUNT, value=10_000, valid_days=60)
    silver = Tier.objects.create(code="silver", name="Silver", rank=1, threshold=200_000, earn_multiplier_pct=110)
    gold = Tier.objects.create(code="gold", name="Gold", rank=2, threshold=500_000, earn_multiplier_pct=150,
                               upgrade_coupon=welcome, benefits="late check-out")
    return {"silver": silver, "gold": gold, "welcome": welcome}


@pytest.fixture
def buy(units, products):
    """buy(customer, "croissant", quantity=1, at=None, unit=None) → the Order, through sales.services.record_order."""

    def purchase(customer, product: str = "croissant", quantity: int = 1, *, at: dt.datetime | None = None,
                 unit_price: int | None = None, actor: Actor | None = None):
        item = products[product]
        return record_order(actor=actor or Actor.system("test"), unit=item.unit, customer=customer,
                            lines=[LineInput(product_id=item.pk, quantity=quantity, unit_price=unit_price)], at=at or timezone.now())

    return purchase


def balance(customer) -> int:
    return sum(LedgerEntry.objects.filter(customer_id=customer.pk).values_list("points", flat=True))


def open_points(customer) -> int:
    return sum(Lot.objects.filter(customer_id=customer.pk).values_list("remaining", flat=True))


def assert_ledger_consistent() -> None:
    from dangol.loyalty.management.commands.loyalty import check

    assert check() == 0, "some customer's lots disagree with their ledger"
