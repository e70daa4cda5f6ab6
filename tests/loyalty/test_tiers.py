"""Tiers: upgrades on purchase with their coupon and event, the earn multiplier, grace before a downgrade, the
scheduled review of everyone, and the history."""
from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from dangol.core.audit import Actor
from dangol.customers.models import Interaction
from dangol.loyalty.models import Account, Coupon, CouponSource, Tier, TierChange
from dangol.loyalty.tiers import evaluate_tiers
from dangol.sales.models import Order, OrderLine
from dangol.sales.services import record_refund

from tests.loyalty.conftest import balance
from tests.loyalty.test_jobs import captured  # noqa: F401 (fixture)


def test_a_purchase_that_reaches_a_tier_upgrades_at_once_and_gold_brings_its_coupon(tiers, make_customer, buy, captured):
    customer = make_customer("seoul-hotel")
    buy(customer, "deluxe")  # 250,000 KRW in the period: Silver
    account = Account.objects.get(pk=customer.pk)
    assert account.tier == tiers["silver"] and account.tier_since is not None
    assert not Coupon.objects.exists()
    buy(customer, "deluxe")  # 500,000 KRW: Gold
    account.refresh_from_db()
    assert account.tier == tiers["gold"]
    coupon = Coupon.objects.get(customer=customer)
    assert (coupon.template, coupon.source, coupon.source_ref, coupon.status) == (tiers["welcome"], CouponSource.TIER, "gold", "active")
    assert coupon.expires_at - coupon.issued_at == dt.timedelta(days=60)
    history = list(TierChange.objects.filter(customer=customer).order_by("at", "id").values_list("from_tier__code", "to_tier__code", "cause"))
    assert history == [(None, "silver", "purchase"), ("silver", "gold", "purchase")]
    changes = [c for call in captured["tier_changed"] for c in call["changes"]]
    assert [(c.customer_id, c.from_tier, c.to_tier, c.direction) for c in changes] == [
        (customer.pk, None, "silver", "up"), (customer.pk, "silver", "gold", "up")]
    assert changes[1].coupon_ids == (coupon.pk,)
    assert Interaction.objects.filter(customer=customer, summary="Tier upgraded: Silver → Gold · coupon issued").exists()


def test_the_tier_multiplier_applies_to_later_purchases(tiers, make_customer, buy):
    customer = make_customer("seoul-hotel")
    buy(customer, "deluxe")
    buy(customer, "deluxe")  # earned at Silver (×1.1), then Gold
    buy(customer, "deluxe")  # at Gold: 7,500 × 1.5
    assert balance(customer) == 7500 + 8250 + 11250


def test_below_the_threshold_a_grace_period_runs_before_the_downgrade(tiers, make_customer, buy, captured):
    customer = make_customer("seoul-hotel")
    buy(customer, "deluxe", at=timezone.now() - dt.timedelta(days=300))
    buy(customer, "deluxe", at=timezone.now() - dt.timedelta(days=300))
    account = Account.objects.get(pk=customer.pk)
    assert account.tier == tiers["gold"]
    in_100_days = timezone.now() + dt.timedelta(days=100)  # the purchases have left the 365-day period
    review = evaluate_tiers(now=in_100_days)
    account.refresh_from_db()
    assert (review.grace_started, review.downgraded) == (1, 0)
    assert account.tier == tiers["gold"] and abs(account.downgrade_at - (in_100_days + dt.timedelta(days=90))) < dt.timedelta(seconds=1)
    assert evaluate_tiers(now=in_100_days + dt.timedelta(days=30)).downgraded == 0  # still in grace
    review = evaluate_tiers(now=in_100_days + dt.timedelta(days=91))
    account.refresh_from_db()
    assert review.downgraded == 1 and account.tier is None and account.downgrade_at is None
    last = captured["tier_changed"][-1]["changes"][0]
    assert (last.from_tier, last.to_tier, last.direction, last.cause) == ("gold", None, "down", "schedule")


def test_qualifying_again_during_grace_keeps_the_tier(tiers, make_customer, buy):
    customer = make_customer("seoul-hotel")
    buy(customer, "deluxe", 2, at=timezone.now() - dt.timedelta(days=300))
    later = timezone.now() + dt.timedelta(days=100)
    evaluate_tiers(now=later)
    assert Account.objects.get(pk=customer.pk).downgrade_at is not None
    Order.objects.filter(customer=customer).update(ordered_at=later - dt.timedelta(days=1))  # spending again
    review = evaluate_tiers(now=later)
    account = Account.objects.get(pk=customer.pk)
    assert review.grace_cleared == 1 and account.downgrade_at is None and account.tier == tiers["gold"]


def test_a_refund_starts_the_grace_period_never_a_sudden_downgrade(tiers, make_customer, buy):
    customer = make_customer("seoul-hotel")
    buy(customer, "deluxe")
    sale = buy(customer, "deluxe")
    record_refund(actor=Actor.system("test"), order=sale)
    account = Account.objects.get(pk=customer.pk)
    assert account.tier == tiers["gold"] and account.downgrade_at is not None


def test_the_scheduled_review_handles_everyone_at_once(tiers, units, products, make_customer):
    now = timezone.now()
    people = [make_customer("seoul-hotel") for _ in range(6)]
    orders = Order.objects.bulk_create([Order(unit=units["seoul-hotel"], customer=c, ordered_at=now - dt.timedelta(days=5),
                                              total=250_000 * (i % 3)) for i, c in enumerate(people)])
    OrderLine.objects.bulk_create([OrderLine(order=o, product=products["deluxe"], quantity=max(1, o.total // 250_000),
                                             unit_price=250_000, line_total=o.total) for o in orders])
    review = evaluate_tiers()
    assert review.upgraded == 4  # two spent 250,000 KRW (Silver), two 500,000 KRW (Gold), two nothing
    tiers_now = dict(Account.objects.filter(tier__isnull=False).values_list("customer_id", "tier__code"))
    assert tiers_now == {people[1].pk: "silver", people[2].pk: "gold", people[4].pk: "silver", people[5].pk: "gold"}
    assert Coupon.objects.count() == 2
    again = evaluate_tiers()
    assert (again.upgraded, again.downgraded, again.grace_started) == (0, 0, 0) and Coupon.objects.count() == 2


def test_tiers_can_qualify_by_points(tiers, program, make_customer, buy):
    program.tier_basis = "points"
    program.save()
    Tier.objects.filter(code="silver").update(threshold=5000)
    Tier.objects.filter(code="gold").update(threshold=20000)
    customer = make_customer("seoul-hotel")
    buy(customer, "deluxe")  # 7,500 P
    assert Account.objects.get(pk=customer.pk).tier.code == "silver"


def test_a_higher_rank_needs_a_higher_threshold(tiers):
    vip = Tier(code="vip", name="VIP", rank=3, threshold=400_000)
    with pytest.raises(ValidationError):
        vip.full_clean()
    vip.threshold = 1_000_000
    vip.full_clean()
