"""Stamp cards: stamps per purchase or per item, the reward coupon at the target, one tap at the counter (idempotent),
refunds taking stamps back (owed when already rewarded), expiry, merges, and no lost or double stamps under a
hundred concurrent taps on PostgreSQL."""
from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from dangol.core.audit import Actor
from dangol.core.models import AuditEvent
from dangol.customers.models import Interaction
from dangol.loyalty import stamps
from dangol.loyalty.models import Coupon, CouponKind, CouponTemplate, StampBasis, StampCard, StampEntry, StampKind, StampLot
from dangol.sales.services import record_refund


@pytest.fixture
def americano(units):
    template = CouponTemplate.objects.create(name="Free Americano", kind=CouponKind.GIFT, value=0, valid_days=30)
    template.units.set([units["bakery"]])
    return template


@pytest.fixture
def card(units, americano):
    """The bakery's card: one stamp per purchase of 5,000 KRW or more, ten for a free Americano, valid 90 days."""
    return StampCard.objects.create(unit=units["bakery"], name="Bakery stamps", basis=StampBasis.PURCHASE, stamps=1,
                                    min_amount_krw=5000, target=10, reward=americano, validity_days=90,
                                    starts_at=timezone.now() - dt.timedelta(days=365))


def on_card(customer, card) -> int:
    state = [s for s in stamps.card_states(customer.pk) if s.card.pk == card.pk]
    return state[0].stamps if state else 0


def entries_sum(customer) -> int:
    return sum(StampEntry.objects.filter(customer_id=customer.pk).values_list("stamps", flat=True))


def lots_sum(customer) -> int:
    return sum(StampLot.objects.filter(customer_id=customer.pk).values_list("remaining", flat=True))


def test_a_qualifying_purchase_stamps_and_a_small_one_does_not(program, card, make_customer, buy):
    customer = make_customer("bakery")
    buy(customer, "croissant", 1)  # 4,500 KRW: below the minimum
    assert on_card(customer, card) == 0
    order = buy(customer, "croissant", 2)  # 9,000 KRW
    entry = StampEntry.objects.get(customer=customer)
    assert (entry.kind, entry.stamps, entry.order_id, entry.unit_id) == (StampKind.EARN, 1, order.pk, card.unit_id)
    assert entry.created_lot.expires_at == entry.at + dt.timedelta(days=90)
    assert on_card(customer, card) == 1
    assert Interaction.objects.filter(customer=customer, summary="+1 stamp on Bakery stamps").exists()
    # Points are earned beside the stamps.
    assert customer.points_entries.filter(kind="earn").count() == 2


def test_a_purchase_at_a_unit_without_a_card_or_before_the_card_started_does_not_stamp(program, card, make_customer, buy):
    customer = make_customer("bakery")
    buy(customer, "deluxe")  # the hotel runs no stamp card
    buy(customer, "baguette", 2, at=card.starts_at - dt.timedelta(days=1))
    assert not StampEntry.objects.exists()


def test_per_item_cards_count_the_items_of_the_chosen_products_and_categories(program, units, americano, products,
                                                                             make_customer, buy):
    item_card = StampCard.objects.create(unit=units["bakery"], name="Baguette club", basis=StampBasis.ITEM, stamps=2,
                                         target=10, reward=americano, starts_at=timezone.now() - dt.timedelta(days=1))
    item_card.products.add(products["baguette"])
    customer = make_customer("bakery")
    buy(customer, "croissant", 3)  # not a chosen product
    buy(customer, "baguette", 3)
    assert on_card(customer, item_card) == 6
    item_card.categories.add(products["croissant"].category)
    buy(customer, "croissant", 1)
    # 6 + 2 = 8, then a reward at 10 is not reached yet
    assert on_card(customer, item_card) == 8


def test_the_target_issues_the_reward_coupon_into_the_wallet_and_starts_a_new_card(program, card, make_customer, bora, units):
    customer = make_customer("bakery")
    for i in range(9):
        stamps.stamp(actor=Actor(user=bora), customer=customer, unit=units["bakery"], idempotency_key=f"t{i}")
    assert not Coupon.objects.filter(customer=customer).exists()
    result = stamps.stamp(actor=Actor(user=bora), customer=customer, unit=units["bakery"], stamps=3, idempotency_key="t9")
    coupon = Coupon.objects.get(customer=customer)
    assert result.coupon_ids == [coupon.pk] and result.stamps == 2 and result.target == 10
    assert (coupon.template.name, coupon.source, coupon.source_ref, coupon.status) == (
        "Free Americano", "stamps", f"stampcard:{card.pk}", "active")
    reward = StampEntry.objects.get(kind=StampKind.REWARD)
    assert (reward.stamps, reward.coupon_id) == (-10, coupon.pk)
    assert entries_sum(customer) == lots_sum(customer) == 2
    assert Interaction.objects.filter(customer=customer, summary__startswith="Stamp card Bakery stamps complete").exists()
    assert AuditEvent.objects.filter(action="loyalty.stamp", actor=bora).count() == 10
    assert stamps.check() == 0


def test_a_tap_sent_twice_stamps_once_and_a_reused_id_for_another_tap_is_refused(program, card, make_customer, bora, units):
    customer = make_customer("bakery")
    first = stamps.stamp(actor=Actor(user=bora), customer=customer, unit=units["bakery"], idempotency_key="tap-1")
    again = stamps.stamp(actor=Actor(user=bora), customer=customer, unit=units["bakery"], idempotency_key="tap-1")
    assert again.replayed and again.entry.pk == first.entry.pk and again.stamps == 1
    with pytest.raises(ValidationError) as caught:
        stamps.stamp(actor=Actor(user=bora), customer=customer, unit=units["bakery"], stamps=2, idempotency_key="tap-1")
    assert "idempotency_key" in caught.value.message_dict
    assert StampEntry.objects.count() == 1


@pytest.mark.parametrize("count, message", [
    (0, "Give between 1 and 5 stamps at a time."),
    (6, "Give between 1 and 5 stamps at a time."),
    (True, "Enter a whole number of stamps."),
    ("1", "Enter a whole number of stamps."),
    (1.0, "Enter a whole number of stamps."),
])
def test_a_refused_tap_says_why_and_writes_nothing(program, card, make_customer, units, count, message):
    customer = make_customer("bakery")
    with pytest.raises(ValidationError) as caught:
        stamps.stamp(actor=Actor.system("test"), customer=customer, unit=units["bakery"], stamps=count)
    assert caught.value.message_dict == {"stamps": [message]}
    assert not StampEntry.objects.exists() and not AuditEvent.objects.filter(action="loyalty.stamp").exists()


def test_a_unit_without_a_stamp_card_refuses_a_tap(program, card, make_customer, units):
    customer = make_customer("bakery")
    with pytest.raises(ValidationError) as caught:
        stamps.stamp(actor=Actor.system("test"), customer=customer, unit=units["seoul-hotel"])
    assert caught.value.message_dict == {"unit": ["한빛호텔 서울 runs no stamp card."]}
    with pytest.raises(ValidationError):
        stamps.stamp(actor=Actor.system("test"), customer=customer, unit=None)


def test_a_refund_takes_the_stamps_back(program, card, make_customer, buy):
    customer = make_customer("bakery")
    buy(customer, "baguette", 2)
    sale = buy(customer, "baguette", 1)
    assert on_card(customer, card) == 2
    record_refund(actor=Actor.system("test"), order=sale)
    reverse = StampEntry.objects.get(kind=StampKind.REVERSE)
    assert reverse.stamps == -1 and reverse.reverses.order_id == sale.pk
    assert on_card(customer, card) == 1 and entries_sum(customer) == lots_sum(customer) == 1
    # Replaying the refund's event changes nothing.
    stamps.apply_orders(order_ids=[reverse.order_id], via="test")
    assert StampEntry.objects.filter(kind=StampKind.REVERSE).count() == 1


def test_a_refund_after_the_reward_is_owed_and_paid_by_the_next_stamps(program, card, make_customer, buy, units):
    customer = make_customer("bakery")
    for i in range(9):
        stamps.stamp(actor=Actor.system("test"), customer=customer, unit=units["bakery"], idempotency_key=f"o{i}")
    sale = buy(customer, "baguette", 1)  # the tenth stamp: the reward is issued
    assert Coupon.objects.filter(customer=customer).count() == 1 and on_card(customer, card) == 0
    record_refund(actor=Actor.system("test"), order=sale)
    state = stamps.card_states(customer.pk)[0]
    assert (state.stamps, state.owed) == (0, 1)
    stamps.stamp(actor=Actor.system("test"), customer=customer, unit=units["bakery"], stamps=2, idempotency_key="after")
    state = stamps.card_states(customer.pk)[0]
    assert (state.stamps, state.owed) == (1, 0)
    assert entries_sum(customer) == lots_sum(customer) == 1
    assert stamps.check() == 0


def test_stamps_expire_by_the_job_and_before_a_tap(program, card, make_customer, units):
    customer = make_customer("bakery")
    past = timezone.now() - dt.timedelta(days=100)
    stamps.stamp(actor=Actor.system("test"), customer=customer, unit=units["bakery"], stamps=3, now=past)
    stamps.stamp(actor=Actor.system("test"), customer=customer, unit=units["bakery"], stamps=2,
                 now=past + dt.timedelta(days=5))
    assert on_card(customer, card) == 0  # past their 90 days: not on the card any more, even before the job ran
    assert stamps.expire_due_stamps() == 5
    assert stamps.expire_due_stamps() == 0
    expired = StampEntry.objects.filter(kind=StampKind.EXPIRE).order_by("id")
    assert [(e.stamps, e.lot.stamps) for e in expired] == [(-3, 3), (-2, 2)]
    assert entries_sum(customer) == lots_sum(customer) == 0
    other = make_customer("bakery")
    stamps.stamp(actor=Actor.system("test"), customer=other, unit=units["bakery"], stamps=4, now=past)
    stamps.stamp(actor=Actor.system("test"), customer=other, unit=units["bakery"], stamps=1)  # expires the old lot first
    assert StampEntry.objects.filter(customer=other, kind=StampKind.EXPIRE).get().stamps == -4
    assert entries_sum(other) == lots_sum(other) == 1


def test_imported_orders_stamp_set_based(program, card, make_customer, products, units):
    from dangol.sales.models import Order, OrderLine

    people = [make_customer("bakery") for _ in range(3)]
    now = timezone.now()
    ids = []
    for person in people:
        for _ in range(4):
            order = Order.objects.create(unit=units["bakery"], customer=person, ordered_at=now, total=10_000)
            OrderLine.objects.create(order=order, product=products["baguette"], quantity=2, unit_price=5000, line_total=10_000)
            ids.append(order.pk)
    from dangol.core import events

    events.emit("orders_imported", unit_id=units["bakery"].pk, order_ids=ids)
    assert StampEntry.objects.filter(kind=StampKind.EARN).count() == 12
    assert all(on_card(p, card) == 4 for p in people)
    events.emit("orders_imported", unit_id=units["bakery"].pk, order_ids=ids)  # replay: nothing new
    assert StampEntry.objects.filter(kind=StampKind.EARN).count() == 12


def test_a_merge_moves_the_stamps_and_the_undo_moves_them_back(program, card, make_customer, units, alice):
    from dangol.ingest.merge import merge_customers, unmerge

    survivor, duplicate = make_customer("bakery", name="한스탬"), make_customer("bakery", name="한스탬")
    stamps.stamp(actor=Actor.system("test"), customer=survivor, unit=units["bakery"], stamps=5)
    stamps.stamp(actor=Actor.system("test"), customer=duplicate, unit=units["bakery"], stamps=4)
    merge = merge_customers(actor=Actor(user=alice), survivor=survivor, merged=duplicate)
    assert on_card(survivor, card) == 9 and not StampEntry.objects.filter(customer=duplicate).exists()
    unmerge(actor=Actor(user=alice), merge=merge)
    assert on_card(survivor, card) == 5 and on_card(duplicate, card) == 4
    assert stamps.check() == 0


# --- concurrency on PostgreSQL ------------------------------------------------------------------------------------------------

postgres_only = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="row locks and real concurrent connections")


def free_connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('max_connections')::int - (SELECT count(*) FROM pg_stat_activity)")
        return cursor.fetchone()[0]


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_hundred_concurrent_taps_lose_and_double_no_stamp(program, card, make_customer, units):
    customer = make_customer("bakery")
    # 100 taps of 1–3 stamps, each sent twice (a double tap, or a retry after a timeout): 200 requests.
    amounts = [1 + i % 3 for i in range(100)]
    requests = [(i, n) for i, n in enumerate(amounts)] * 2
    threads_count = max(10, min(50, free_connections() - 8))
    start = threading.Barrier(threads_count)
    lock = threading.Lock()
    results: list[tuple[int, bool, int]] = []
    errors: list[BaseException] = []

    def worker():
        from django.utils import translation

        translation.activate("en")
        try:
            start.wait(30)
            while True:
                with lock:
                    if not requests:
                        return
                    index, count = requests.pop()
                try:
                    result = stamps.stamp(actor=Actor.system("test"), customer=customer, unit=units["bakery"], stamps=count,
                                          idempotency_key=f"conc-{index}")
                except BaseException as exc:  # noqa: BLE001 — reported below
                    with lock:
                        errors.append(exc)
                    continue
                with lock:
                    results.append((index, result.replayed, result.stamps))
        finally:
            connection.close()

    pool = [threading.Thread(target=worker) for _ in range(threads_count)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(120)
    assert not errors, errors[:3]
    assert len(results) == 200
    assert sum(1 for _i, replayed, _s in results if not replayed) == 100
    total = sum(amounts)  # 199 stamps
    earned = StampEntry.objects.filter(customer=customer, kind=StampKind.EARN)
    assert earned.count() == 100 and sum(earned.values_list("stamps", flat=True)) == total
    assert Coupon.objects.filter(customer=customer, source="stamps").count() == total // 10
    assert StampEntry.objects.filter(customer=customer, kind=StampKind.REWARD).count() == total // 10
    assert on_card(customer, card) == entries_sum(customer) == lots_sum(customer) == total % 10
    assert all(0 <= seen < 10 for _i, _r, seen in results)
    assert stamps.check() == 0
    print(f"\n{threads_count} concurrent connections, 200 taps (100 distinct), {total} stamps, {total // 10} rewards")
