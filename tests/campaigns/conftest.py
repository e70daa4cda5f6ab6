"""Shared set-up of the campaign tests: a small town of customers whose every attribute a segment rule can read, with
purchases through the real sales service, metrics rows, tiers and points."""
from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone, translation

from dangol.analytics.models import CustomerMetrics
from dangol.core.audit import Actor
from dangol.customers.models import Tag
from dangol.customers.services import DateParts
from dangol.loyalty.models import Account, LedgerEntry, Tier
from dangol.loyalty.services import ensure_account
from dangol.sales.services import LineInput, record_order

NOW = dt.datetime(2026, 11, 24, 3, 0, tzinfo=dt.timezone.utc)  # 12:00 in Seoul


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


@pytest.fixture
def buy(units, products):
    def purchase(customer, product: str = "croissant", quantity: int = 1, *, at: dt.datetime | None = None):
        item = products[product]
        return record_order(actor=Actor.system("test"), unit=item.unit, customer=customer,
                            lines=[LineInput(product_id=item.pk, quantity=quantity)], at=at or timezone.now())
    return purchase


@pytest.fixture
def tiers(db):
    return {"gold": Tier.objects.create(code="gold", name="Gold", rank=1, threshold=500_000),
            "vip": Tier.objects.create(code="vip", name="VIP", rank=2, threshold=2_000_000)}


def set_tier(customer, tier):
    ensure_account(customer)
    Account.objects.filter(pk=customer.pk).update(tier=tier, tier_since=timezone.now())


def give_points(customer, points: int):
    LedgerEntry.objects.create(customer=customer, kind="earn" if points > 0 else "adjust", points=points,
                               at=timezone.now(), created_at=timezone.now())


def set_metrics(customer, **fields):
    CustomerMetrics.objects.update_or_create(customer=customer, defaults={"as_of": timezone.localdate(), **fields})


@pytest.fixture
def town(units, products, make_customer, buy, tiers):
    """Named customers, each standing out in one or two ways."""
    now = timezone.now()
    c = {}
    c["jisu"] = make_customer("seoul-hotel", name="김지수", gender="F", sido="서울특별시", sigungu="강남구",
                              birthday=DateParts(year=1990, month=3, day=1), tags=["vip-guest"],
                              consents=[("sms", "marketing", True)])
    c["minho"] = make_customer("seoul-hotel", name="이민호", gender="M", sido="서울특별시", sigungu="서초구",
                               birthday=DateParts(year=1960, month=12, day=31))
    c["yuna"] = make_customer("bakery", name="박유나", gender="F", sido="부산광역시", sigungu="해운대구",
                              consents=[("sms", "marketing", True), ("email", "marketing", True)], stage="regular")
    c["old"] = make_customer("bakery", name="최노인", birthday=DateParts(year=1940, month=1, day=1))
    set_tier(c["jisu"], tiers["vip"])
    set_tier(c["minho"], tiers["gold"])
    give_points(c["jisu"], 12_000)
    give_points(c["yuna"], 800)
    buy(c["jisu"], "deluxe", at=now - dt.timedelta(days=200))
    buy(c["minho"], "deluxe", at=now - dt.timedelta(days=10))
    buy(c["yuna"], "croissant", 3, at=now - dt.timedelta(days=5))
    buy(c["yuna"], "baguette", at=now - dt.timedelta(days=40))
    buy(c["yuna"], "croissant", at=now - dt.timedelta(days=100))
    set_metrics(c["jisu"], rfm_segment="at_risk", clv_12m=900_000, p_alive=0.3, churn_risk=0.8)
    set_metrics(c["yuna"], rfm_segment="champions", clv_12m=120_000, p_alive=0.95, churn_risk=0.05)
    Tag.objects.get_or_create(name="vip-guest")
    return c
