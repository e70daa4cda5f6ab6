"""Earning when an order is recorded and reversing when it is refunded: rates per unit, category multipliers,
promotions, tier multipliers, debts after refunds of spent points, flagged orders, the set-based paths (import,
backfill) and their idempotency."""
from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from dangol.core import events
from dangol.core.audit import Actor
from dangol.customers.models import Interaction
from dangol.loyalty import earning, services
from dangol.loyalty.models import Account, CategoryMultiplier, EntryKind, LedgerEntry, Lot, Promotion
from dangol.sales.models import Order, OrderKind, OrderLine
from dangol.sales.services import record_refund

from tests.loyalty.conftest import assert_ledger_consistent, balance, open_points


def test_a_purchase_earns_at_its_units_rate_and_anywhere_in_the_group(program, make_customer, buy):
    customer = make_customer("seoul-hotel", name="한호텔")
    buy(customer, "croissant", 2)  # 9,000 KRW at the bakery: 1 %
    buy(customer, "deluxe")  # 250,000 KRW at the Seoul hotel: 3 %
    entries = list(LedgerEntry.objects.filter(customer=customer).order_by("id").values_list("kind", "points", "unit__code"))
    assert entries == [("earn", 90, "bakery"), ("earn", 7500, "seoul-hotel")]
    assert balance(customer) == open_points(customer) == 7590
    account = Account.objects.get(pk=customer.pk)
    assert len(account.member_number) == 12 and len(account.referral_code) == 8
    lot = Lot.objects.get(entry__order__total=9000)
    assert lot.expires_at > timezone.now() + dt.timedelta(days=364)
    assert_ledger_consistent()


def test_units_without_a_rule_earn_the_default_rate_and_a_zero_rate_earns_nothing(program, units, make_customer, buy, products):
    from dangol.loyalty.models import EarnRule

    customer = make_customer("bakery")
    EarnRule.objects.filter(unit=units["bakery"]).delete()
    program.default_rate_bp = 500
    program.save()
    buy(customer, "baguette")
    assert balance(customer) == 250
    EarnRule.objects.create(unit=units["bakery"], rate_bp=0)
    buy(customer, "baguette")
    assert balance(customer) == 250 and LedgerEntry.objects.count() == 1  # nothing earned: no entry at all


def test_category_multipliers_and_the_best_promotion_apply_to_their_lines(program, products, make_customer, buy):
    customer = make_customer("bakery")
    CategoryMultiplier.objects.create(category=products["croissant"].category, multiplier_pct=200)
    buy(customer, "croissant", 2)
    assert balance(customer) == 180
    now = timezone.now()
    Promotion.objects.create(name="double points", unit=products["croissant"].unit, starts_at=now - dt.timedelta(hours=1),
                             ends_at=now + dt.timedelta(days=1), multiplier_pct=200)
    Promotion.objects.create(name="triple, over", starts_at=now - dt.timedelta(days=10), ends_at=now - dt.timedelta(days=1),
                             multiplier_pct=300)
    buy(customer, "croissant", 2)
    assert balance(customer) == 180 + 360  # ×2 category × ×2 promotion; the ended promotion does not apply


def test_an_order_with_several_categories_earns_each_at_its_own_multiplier(program, units, products, make_customer):
    from dangol.sales.models import Category, Product
    from dangol.sales.services import LineInput, record_order

    cakes = Category.objects.create(name="케이크", unit=units["bakery"])
    cake = Product.objects.create(unit=units["bakery"], category=cakes, sku="C-1", name="케이크", price=30_000)
    CategoryMultiplier.objects.create(category=cakes, multiplier_pct=300)
    customer = make_customer("bakery")
    record_order(actor=Actor.system("test"), unit=units["bakery"], customer=customer,
                 lines=[LineInput(products["croissant"].pk, 2), LineInput(cake.pk, 1)])
    assert balance(customer) == 90 + 900


def test_a_refund_reverses_the_points_of_its_sale(program, make_customer, buy):
    customer = make_customer("bakery")
    sale = buy(customer, "croissant", 2)
    buy(customer, "baguette", 2)
    record_refund(actor=Actor.system("test"), order=sale)
    reverse = LedgerEntry.objects.get(kind=EntryKind.REVERSE)
    assert reverse.points == -90 and reverse.reverses.order_id == sale.pk
    assert balance(customer) == 100
    assert Lot.objects.get(entry__order=sale).remaining == 0  # taken from the refunded sale's own lot first
    assert Interaction.objects.filter(customer=customer, kind="loyalty", summary__contains="90").exists()
    assert_ledger_consistent()


def test_a_partial_refund_reverses_in_proportion(program, units, make_customer, buy, products):
    customer = make_customer("bakery")
    sale = buy(customer, "croissant", 4)  # 18,000 KRW → 180 P
    refund = Order.objects.create(unit=units["bakery"], customer=customer, kind=OrderKind.REFUND, refund_of=sale,
                                  ordered_at=timezone.now(), total=-4500)
    OrderLine.objects.create(order=refund, product=products["croissant"], quantity=-1, unit_price=4500, line_total=-4500)
    events.emit("order_recorded", order=refund, actor=Actor.system("test"))
    assert LedgerEntry.objects.get(order=refund).points == -45
    assert balance(customer) == 135
    events.emit("order_recorded", order=refund, actor=Actor.system("test"))  # replayed: nothing more
    assert LedgerEntry.objects.filter(kind=EntryKind.REVERSE).count() == 1


def test_a_refund_of_points_already_spent_leaves_a_debt_that_the_next_earnings_pay(program, units, make_customer, buy):
    customer = make_customer("bakery")
    sale = buy(customer, "deluxe")  # 7,500 P
    services.redeem_points(actor=Actor.system("test"), customer=customer, points=7000, unit=units["seoul-hotel"])
    record_refund(actor=Actor.system("test"), order=sale)
    account = Account.objects.get(pk=customer.pk)
    assert balance(customer) == -7000 and account.points_owed == 7000 and open_points(customer) == 0
    buy(customer, "deluxe")  # 7,500 P earned: 7,000 pay the debt
    account.refresh_from_db()
    assert account.points_owed == 0 and balance(customer) == 500 and open_points(customer) == 500
    assert_ledger_consistent()


def test_orders_without_a_customer_or_flagged_for_review_earn_nothing_until_accepted(program, units, products, make_customer):
    customer = make_customer("bakery")
    flagged = Order.objects.create(unit=units["bakery"], customer=customer, ordered_at=timezone.now(), total=9000, needs_review=True)
    OrderLine.objects.create(order=flagged, product=products["croissant"], quantity=2, unit_price=4500, line_total=9000)
    anonymous = Order.objects.create(unit=units["bakery"], customer=None, ordered_at=timezone.now(), total=9000)
    OrderLine.objects.create(order=anonymous, product=products["croissant"], quantity=2, unit_price=4500, line_total=9000)
    events.emit("orders_imported", unit_id=units["bakery"].pk, order_ids=[flagged.pk, anonymous.pk])
    assert LedgerEntry.objects.count() == 0
    Order.objects.filter(pk=flagged.pk).update(needs_review=False)
    events.emit("orders_accepted", order_ids=[flagged.pk], actor=Actor.system("review"))
    assert list(LedgerEntry.objects.values_list("order_id", "points", "via")) == [(flagged.pk, 90, "review")]


def test_an_order_earns_once_whatever_replays_it(program, make_customer, buy):
    customer = make_customer("bakery")
    sale = buy(customer, "croissant", 2)
    events.emit("order_recorded", order=sale, actor=Actor.system("test"))
    earning.apply_orders(order_ids=[sale.pk], via="test")
    assert LedgerEntry.objects.filter(order=sale).count() == 1
    with pytest.raises(IntegrityError), transaction.atomic():  # the database's backstop
        LedgerEntry.objects.create(customer=customer, kind=EntryKind.EARN, points=1, at=timezone.now(),
                                   created_at=timezone.now(), order=sale)


def test_entries_are_immutable(program, make_customer, buy):
    customer = make_customer("bakery")
    buy(customer, "croissant")
    entry = LedgerEntry.objects.get()
    entry.points = 1000
    with pytest.raises(ValueError):
        entry.save()
    with pytest.raises(ValueError):
        entry.delete()
    with pytest.raises(IntegrityError), transaction.atomic():  # and the sign must match the kind
        LedgerEntry.objects.create(customer=customer, kind=EntryKind.REDEEM, points=10, at=timezone.now(), created_at=timezone.now())


def _bulk_orders(units, products, customers, per_customer=3, refund_every=0):
    """Orders written the way a generator or a migration writes them: no event, no points."""
    now = timezone.now()
    orders = Order.objects.bulk_create([Order(unit=units["bakery"], customer=c, ordered_at=now - dt.timedelta(days=i), total=9000)
                                        for c in customers for i in range(per_customer)])
    OrderLine.objects.bulk_create([OrderLine(order=o, product=products["croissant"], quantity=2, unit_price=4500, line_total=9000)
                                   for o in orders])
    refunds = []
    if refund_every:
        refunds = Order.objects.bulk_create([Order(unit=units["bakery"], customer=o.customer, kind=OrderKind.REFUND, refund_of=o,
                                                   ordered_at=now, total=-9000) for o in orders[::refund_every]])
        OrderLine.objects.bulk_create([OrderLine(order=r, product=products["croissant"], quantity=-2, unit_price=4500,
                                                 line_total=-9000) for r in refunds])
    return orders, refunds


def test_the_backfill_earns_every_past_order_once_and_resumes(program, units, products, make_customer):
    customers = [make_customer("bakery") for _ in range(5)]
    orders, refunds = _bulk_orders(units, products, customers, per_customer=4, refund_every=3)
    done = earning.backfill(chunk=7)
    assert done.earned_orders == 20 and done.earned_points == 20 * 90
    assert done.reversed_orders == len(refunds) == 7 and done.reversed_points == 7 * 90
    assert sum(balance(c) for c in customers) == (20 - 7) * 90
    again = earning.backfill(chunk=7)
    assert (again.earned_orders, again.reversed_orders) == (0, 0)
    assert LedgerEntry.objects.count() == 27
    assert_ledger_consistent()


def test_the_backfill_command_prints_its_counts(program, units, products, make_customer):
    from io import StringIO

    from django.core.management import call_command

    customers = [make_customer("bakery") for _ in range(3)]
    _bulk_orders(units, products, customers, per_customer=2)
    out = StringIO()
    call_command("loyalty", "backfill", "--chunk", "2", "--expire", "--tiers", stdout=out)
    line = out.getvalue().strip().splitlines()[-1]
    assert line.startswith("earned orders: 6, earned points: 540, reversed orders: 0") and "expired lots: 0" in line
    out = StringIO()
    call_command("loyalty", "check", stdout=out)
    assert out.getvalue().strip() == "customers whose lots disagree with their ledger: 0"


@pytest.mark.django_db(transaction=True)
def test_accounts_are_created_outside_a_transaction_too(units, make_customer):
    """A page opening a customer's panel for the first time runs in autocommit (PostgreSQL's temporary table of the
    set-based insert must survive its statements)."""
    customer = make_customer("bakery")
    account = services.ensure_account(customer)
    assert account.pk == customer.pk and len(account.member_number) == 12
    assert earning.ensure_accounts([customer.pk]) == 0
