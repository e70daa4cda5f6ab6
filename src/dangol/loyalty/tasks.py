"""Background work of the loyalty program, run by the scheduler (``apps.py`` registers the periodic jobs). Each task is
idempotent: an expired lot is closed once, a lot is announced once, a tier review of an unchanged state changes
nothing."""
from __future__ import annotations

from django_tasks import task


@task(queue_name="default")
def expire_points() -> str:
    from .jobs import expire_due_points

    return expire_due_points().summary_line


@task(queue_name="default")
def expire_stamps() -> int:
    from .stamps import expire_due_stamps

    return expire_due_stamps()


@task(queue_name="default")
def announce_expiring_points() -> int:
    from .jobs import notify_expiring_points

    return notify_expiring_points()


@task(queue_name="analytics")
def review_tiers() -> str:
    from django.db import transaction

    from .tiers import evaluate_tiers

    with transaction.atomic():
        return evaluate_tiers().summary_line
