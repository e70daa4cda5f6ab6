"""The scheduled jobs: expiry of lots (first earned, first expired), the 'points expiring soon' event, the tier review,
their registration with the scheduler, and the tasks that run them."""
from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from dangol.core import events
from dangol.core.audit import Actor
from dangol.core.models import AuditEvent
from dangol.core.scheduler import PERIODIC_JOBS
from dangol.customers.models import Interaction
from dangol.loyalty import jobs, services
from dangol.loyalty.models import EntryKind, LedgerEntry, Lot

from tests.loyalty.conftest import assert_ledger_consistent, balance, open_points


@pytest.fixture
def captured():
    seen: dict[str, list] = {}

    def catch(name):
        def handler(**payload):
            seen.setdefault(name, []).append(payload)
        return handler

    handlers = {name: catch(name) for name in ("points_expiring_soon", "tier_changed", "referral_rewarded")}
    for name, handler in handlers.items():
        events.subscribe(name, handler)
    yield seen
    for name, handler in handlers.items():
        events._handlers[name].remove(handler)


def test_expiry_closes_each_lot_past_its_date_once(program, make_customer, buy, units):
    a, b = make_customer("bakery"), make_customer("bakery")
    now = timezone.now()
    buy(a, "croissant", 2, at=now - dt.timedelta(days=400))  # 90 P, expired
    buy(a, "baguette", 2, at=now - dt.timedelta(days=380))  # 100 P, expired
    buy(a, "baguette", 1, at=now - dt.timedelta(days=10))  # 50 P, valid
    buy(b, "croissant", 4, at=now - dt.timedelta(days=370))  # 180 P, partly spent below, rest expired
    services.redeem_points(actor=Actor.system("test"), customer=b, points=100, unit=units["bakery"],
                           now=now - dt.timedelta(days=300))
    run = jobs.expire_due_points(now=now)
    assert (run.lots, run.points, run.customers) == (3, 90 + 100 + 80, 2)
    assert balance(a) == open_points(a) == 50 and balance(b) == open_points(b) == 0
    expired = LedgerEntry.objects.filter(kind=EntryKind.EXPIRE)
    assert sorted(expired.values_list("points", flat=True)) == [-100, -90, -80]
    assert all(e.lot_id and e.via == "schedule" for e in expired)
    assert Interaction.objects.filter(customer=a, kind="loyalty", summary="−190 points expired").count() == 1
    assert AuditEvent.objects.filter(action="loyalty.expire").count() == 1
    again = jobs.expire_due_points(now=now)
    assert again.lots == 0 and LedgerEntry.objects.filter(kind=EntryKind.EXPIRE).count() == 3
    assert_ledger_consistent()


def test_points_expiring_soon_are_announced_once_per_lot(program, make_customer, buy, captured):
    a, b = make_customer("bakery"), make_customer("bakery")
    now = timezone.now()
    buy(a, "croissant", 2, at=now - dt.timedelta(days=350))  # expires within 30 days
    buy(a, "baguette", 2, at=now - dt.timedelta(days=200))  # not yet
    buy(b, "croissant", 1, at=now - dt.timedelta(days=100))
    assert jobs.notify_expiring_points(now=now) == 1
    [call] = captured["points_expiring_soon"]
    assert call["window_days"] == 30
    [notice] = call["notices"]
    assert (notice.customer_id, notice.points) == (a.pk, 90)
    assert now < notice.first_expiry <= now + dt.timedelta(days=30)
    assert jobs.notify_expiring_points(now=now) == 0  # announced once
    # Later, the second lot enters the window: announced with everything that expires in it.
    later = now + dt.timedelta(days=150)
    assert jobs.notify_expiring_points(now=later) == 1
    assert captured["points_expiring_soon"][-1]["notices"][0].points == 100
    assert Lot.objects.filter(customer=a, notified_at__isnull=False).count() == 2


def test_the_jobs_are_registered_with_the_scheduler_and_their_tasks_run(program, make_customer, buy):
    names = {job.name: job for job in PERIODIC_JOBS}
    assert names["loyalty-expire-points"].every == dt.timedelta(hours=1)
    assert names["loyalty-expiring-soon"].every == dt.timedelta(days=1)
    assert names["loyalty-review-tiers"].every == dt.timedelta(days=1)
    from django.utils.module_loading import import_string

    for job in ("loyalty-expire-points", "loyalty-expiring-soon", "loyalty-review-tiers"):
        assert import_string(names[job].task_path)
    from dangol.loyalty import tasks

    customer = make_customer("bakery")
    buy(customer, "croissant", 2, at=timezone.now() - dt.timedelta(days=400))
    assert tasks.expire_points.call() == "expired lots: 1, points: 90, customers: 1"
    assert tasks.announce_expiring_points.call() == 0
    assert tasks.review_tiers.call().startswith("upgraded: 0")
