"""Redemption at the counter and manual adjustments: first to expire first spent, never more than the balance (also
with a hundred concurrent redemptions on PostgreSQL), idempotent retries, audited and on the timeline."""
from __future__ import annotations

import datetime as dt
import random
import threading

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.utils import timezone

from dangol.core.audit import Actor
from dangol.core.models import AuditEvent
from dangol.customers.models import Interaction
from dangol.loyalty import services
from dangol.loyalty.models import EntryKind, LedgerEntry, Lot

from tests.loyalty.conftest import assert_ledger_consistent, balance, open_points


@pytest.fixture
def member(program, make_customer, buy):
    """A hotel member with two lots: 90 P (bakery, 100 days ago) and 7,500 P (hotel, today)."""
    customer = make_customer("seoul-hotel", name="한호텔")
    buy(customer, "croissant", 2, at=timezone.now() - dt.timedelta(days=100))
    buy(customer, "deluxe")
    return customer


def test_redemption_spends_the_lot_that_expires_first(member, units, bora):
    entry = services.redeem_points(actor=Actor(user=bora), customer=member, points=1000, unit=units["bakery"])
    assert entry.kind == EntryKind.REDEEM and entry.points == -1000 and entry.unit == units["bakery"]
    assert entry.created_by == bora and entry.balance_after == 6590
    assert sorted(Lot.objects.filter(customer=member).values_list("points", "remaining")) == [(90, 0), (7500, 6590)]
    assert balance(member) == 6590
    timeline = Interaction.objects.get(customer=member, kind="loyalty")
    assert (timeline.summary, timeline.unit, timeline.ref_id) == ("−1,000 points redeemed", units["bakery"], entry.pk)
    assert AuditEvent.objects.filter(action="loyalty.redeem", object_id=str(member.pk), actor=bora).exists()
    assert_ledger_consistent()


@pytest.mark.parametrize("points, field, message", [
    (7591, "points", "Only 7,590 points are available."),
    (50, "points", "Redeem at least 100 points."),
    (0, "points", "Enter a number of points between 1 and 1,000,000,000."),
    (-100, "points", "Enter a number of points between 1 and 1,000,000,000."),
    (True, "points", "Enter a whole number of points."),
    (150.0, "points", "Enter a whole number of points."),
    ("200", "points", "Enter a whole number of points."),
])
def test_a_refused_redemption_says_why_and_writes_nothing(member, units, points, field, message):
    before = (LedgerEntry.objects.count(), Interaction.objects.count(), AuditEvent.objects.count())
    with pytest.raises(ValidationError) as caught:
        services.redeem_points(actor=Actor.system("test"), customer=member, points=points, unit=units["bakery"])
    assert caught.value.message_dict == {field: [message]}
    assert (LedgerEntry.objects.count(), Interaction.objects.count(), AuditEvent.objects.count()) == before
    assert balance(member) == open_points(member) == 7590


def test_a_redemption_needs_a_unit(member):
    with pytest.raises(ValidationError) as caught:
        services.redeem_points(actor=Actor.system("test"), customer=member, points=100, unit=None)
    assert "unit" in caught.value.message_dict


def test_a_retried_redemption_with_the_same_request_id_redeems_once(member, units):
    first = services.redeem_points(actor=Actor.system("test"), customer=member, points=500, unit=units["bakery"], idempotency_key="r-1")
    again = services.redeem_points(actor=Actor.system("test"), customer=member, points=500, unit=units["bakery"], idempotency_key="r-1")
    assert again.pk == first.pk and balance(member) == 7090
    with pytest.raises(ValidationError) as caught:
        services.redeem_points(actor=Actor.system("test"), customer=member, points=600, unit=units["bakery"], idempotency_key="r-1")
    assert "idempotency_key" in caught.value.message_dict


def test_points_past_their_date_expire_before_a_redemption_and_cannot_be_spent(member, units):
    later = timezone.now() + dt.timedelta(days=300)  # the bakery lot (100 days old) is past its 12 months then
    with pytest.raises(ValidationError) as caught:
        services.redeem_points(actor=Actor.system("test"), customer=member, points=7590, unit=units["bakery"], now=later)
    assert caught.value.message_dict["points"] == ["Only 7,500 points are available."]
    services.redeem_points(actor=Actor.system("test"), customer=member, points=7500, unit=units["bakery"], now=later)
    kinds = list(LedgerEntry.objects.filter(customer=member).order_by("id").values_list("kind", "points"))
    assert kinds[-2:] == [("expire", -90), ("redeem", -7500)]
    assert balance(member) == 0 and open_points(member) == 0
    assert_ledger_consistent()


def test_a_merged_record_redeems_from_its_survivor(member, make_customer, units, alice):
    from dangol.ingest.merge import merge_customers

    duplicate = make_customer("bakery", name="한호텔")
    merge_customers(actor=Actor(user=alice), survivor=member, merged=duplicate)
    duplicate.refresh_from_db()
    entry = services.redeem_points(actor=Actor.system("test"), customer=duplicate, points=100, unit=units["bakery"])
    assert entry.customer_id == member.pk


# --- adjustments ---------------------------------------------------------------------------------------------------------

def test_only_managers_and_admins_adjust_and_always_with_a_reason(member, bora, mina, units):
    with pytest.raises(PermissionDenied):
        services.adjust_points(actor=Actor(user=bora), customer=member, points=100, reason="goodwill")
    with pytest.raises(ValidationError) as caught:
        services.adjust_points(actor=Actor(user=mina), customer=member, points=100, reason="  ")
    assert caught.value.message_dict == {"reason": ["Give the reason for the adjustment."]}
    entry = services.adjust_points(actor=Actor(user=mina), customer=member, points=500, reason="complaint: cold coffee",
                                   unit=units["seoul-hotel"])
    assert (entry.kind, entry.points, entry.approved_by, entry.created_by, entry.reason) == (
        EntryKind.ADJUST, 500, mina, mina, "complaint: cold coffee")
    assert entry.created_lot.remaining == 500  # added points are a lot of their own, with their own expiry
    assert Interaction.objects.filter(customer=member, summary="+500 points adjusted: complaint: cold coffee").exists()
    assert AuditEvent.objects.filter(action="loyalty.adjust", actor=mina).count() == 1
    assert balance(member) == 8090


def test_a_negative_adjustment_cannot_take_more_than_the_balance(member, alice):
    with pytest.raises(ValidationError) as caught:
        services.adjust_points(actor=Actor(user=alice), customer=member, points=-9000, reason="duplicate receipt")
    assert caught.value.message_dict["points"] == ["Only 7,590 points are available: an adjustment cannot take more."]
    services.adjust_points(actor=Actor(user=alice), customer=member, points=-90, reason="duplicate receipt")
    assert balance(member) == open_points(member) == 7500
    assert_ledger_consistent()


# --- concurrency on PostgreSQL ------------------------------------------------------------------------------------------------

postgres_only = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="row locks and real concurrent connections")


def free_connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('max_connections')::int - (SELECT count(*) FROM pg_stat_activity)")
        return cursor.fetchone()[0]


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_hundred_concurrent_redemptions_leave_the_balance_exact_and_never_negative(program, make_customer, units, alice):
    customer = make_customer("bakery")
    services.adjust_points(actor=Actor(user=alice), customer=customer, points=10_000, reason="opening balance")
    services.adjust_points(actor=Actor(user=alice), customer=customer, points=5_000, reason="second lot")
    rng = random.Random(8)
    amounts = [rng.choice([100, 150, 250, 300, 400]) for _ in range(100)]
    # One connection per thread. Other engineers' test databases share the server: when fewer than 100 connections
    # are free, the hundred redemptions run on as many connections as there are, still all at once per wave.
    threads_count = max(10, min(100, free_connections() - 8))
    start = threading.Barrier(threads_count)
    results: list[tuple[int, str]] = []
    lock = threading.Lock()
    queue = list(enumerate(amounts))

    def worker():
        from django.utils import translation

        translation.activate("en")  # each thread has its own active language
        try:
            start.wait(30)
            while True:
                with lock:
                    if not queue:
                        return
                    index, points = queue.pop()
                try:
                    entry = services.redeem_points(actor=Actor.system("test"), customer=customer, points=points,
                                                   unit=units["bakery"], idempotency_key=f"concurrent-{index}")
                    outcome = ("ok", entry.balance_after)
                except ValidationError as exc:
                    outcome = ("refused", exc.message_dict["points"][0])
                with lock:
                    results.append((points, *outcome))
        finally:
            connection.close()

    pool = [threading.Thread(target=worker) for _ in range(threads_count)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(120)
    assert len(results) == 100
    spent = sum(points for points, outcome, _detail in results if outcome == "ok")
    refused = [(points, detail) for points, outcome, detail in results if outcome == "refused"]
    assert spent <= 15_000 and refused, "the amounts add up to more than the balance: some must be refused"
    assert balance(customer) == open_points(customer) == 15_000 - spent >= 0
    # Every refusal names what was left at that moment, which was less than asked; every balance seen was >= 0.
    for points, detail in refused:
        left = int(detail.removeprefix("Only ").split(" ")[0].replace(",", ""))
        assert 0 <= left < points
    assert all(after >= 0 for _p, outcome, after in results if outcome == "ok")
    assert LedgerEntry.objects.filter(kind=EntryKind.REDEEM).count() == len(results) - len(refused)
    # The balance only goes down, and each refusal saw less than it asked: what is left is less than every refused amount.
    assert 15_000 - spent < min(points for points, _detail in refused)
    assert_ledger_consistent()
    print(f"\n{threads_count} concurrent connections, {len(results) - len(refused)} redemptions, {len(refused)} refused")
