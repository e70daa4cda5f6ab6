"""Periodic jobs, enqueued idempotently by `dangol scheduler`.

Time is cut into slots of each job's interval. Enqueueing a job first inserts (job, slot) into ScheduledSlot, whose
unique constraint lets exactly one of any number of schedulers (on any number of hosts) win; the winner enqueues,
in the same transaction. A scheduler that was down catches up only the current slot, not every missed one.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from .models import ScheduledSlot

logger = logging.getLogger("dangol.scheduler")


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    task_path: str
    every: dt.timedelta
    kwargs: dict = field(default_factory=dict)


# The core's own jobs; apps add theirs with ``register`` in their AppConfig.ready().
PERIODIC_JOBS: list[PeriodicJob] = [
    PeriodicJob("requeue-dead-workers", "dangol.core.tasks.requeue_tasks_of_dead_workers", dt.timedelta(minutes=1)),
    PeriodicJob("clear-expired-sessions", "dangol.core.tasks.clear_expired_sessions", dt.timedelta(hours=6)),
    PeriodicJob("prune-finished-tasks", "dangol.core.tasks.prune_finished_tasks", dt.timedelta(days=1)),
]


def register(job: PeriodicJob) -> None:
    """Apps add their periodic jobs from ``AppConfig.ready()`` (analytics refresh, points expiry…)."""
    if all(existing.name != job.name for existing in PERIODIC_JOBS):
        PERIODIC_JOBS.append(job)


def slot_of(job: PeriodicJob, now: dt.datetime) -> int:
    return int(now.timestamp()) // int(job.every.total_seconds())


def enqueue_due_jobs(now: dt.datetime | None = None, jobs: list[PeriodicJob] | None = None) -> list[str]:
    """Enqueue every job whose current slot has not been enqueued yet. Returns the names enqueued."""
    now = now or timezone.now()
    enqueued = []
    for job in jobs if jobs is not None else PERIODIC_JOBS:
        slot = slot_of(job, now)
        if ScheduledSlot.objects.filter(job=job.name, slot=slot).exists():
            continue
        try:
            with transaction.atomic():
                record = ScheduledSlot.objects.create(job=job.name, slot=slot)
                result = import_string(job.task_path).enqueue(**job.kwargs)
                record.task_id = str(result.id)
                record.save(update_fields=["task_id"])
        except IntegrityError:
            continue  # another scheduler won this slot
        enqueued.append(job.name)
        logger.info("enqueued periodic job %s (slot %d)", job.name, slot)
    return enqueued
