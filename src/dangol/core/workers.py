"""Worker leases and recovery for the database task queue.

django-tasks-db claims a task by marking it RUNNING with the worker's id. A worker killed mid-task (OOM, kill -9,
a lost host) would leave it RUNNING forever. Every `dangol worker` therefore holds a lease that a background
thread renews; when a lease is older than WORKER_LEASE_SECONDS, its RUNNING tasks go back to READY and another
worker runs them again. Tasks are written to be idempotent, so a task cut off half-way is safe to run twice.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from .models import WorkerLease

logger = logging.getLogger("dangol.workers")


def new_worker_id() -> str:
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{os.urandom(3).hex()}"


class LeaseKeeper:
    """Renews the worker's lease from a daemon thread until stopped."""

    def __init__(self, worker_id: str, every: float | None = None):
        self.worker_id = worker_id
        self.every = every or max(settings.WORKER_LEASE_SECONDS / 4, 1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dangol-lease", daemon=True)

    def start(self) -> None:
        now = timezone.now()
        WorkerLease.objects.update_or_create(
            worker_id=self.worker_id,
            defaults={"host": socket.gethostname()[:255], "pid": os.getpid(), "started_at": now, "renewed_at": now},
        )
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                WorkerLease.objects.filter(worker_id=self.worker_id).update(renewed_at=timezone.now())
            except Exception:  # the database may be restarting: keep trying, the lease has slack
                logger.warning("could not renew worker lease", exc_info=True)
                close_old_connections()
            finally:
                connection.close()

    def stop(self) -> None:
        self._stop.set()
        WorkerLease.objects.filter(worker_id=self.worker_id).delete()

    def abandon(self) -> None:
        """Stop renewing without touching the database (it may be down); the lease goes stale by itself."""
        self._stop.set()


def wait_for_database(max_delay: float = 30.0) -> None:
    delay = 0.5
    while True:
        try:
            close_old_connections()
            connection.close()
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            return
        except Exception:  # noqa: BLE001 - any failure means: not back yet
            time.sleep(delay)
            delay = min(delay * 2, max_delay)


def requeue_own_tasks(worker_id: str) -> int:
    """Tasks this process claimed under ``worker_id`` and can no longer be running: back to READY."""
    from django_tasks.base import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    mine = [r.pk for r in DBTaskResult.objects.filter(status=TaskResultStatus.RUNNING).only("id", "worker_ids")
            if r.worker_ids and r.worker_ids[-1] == worker_id]
    count = DBTaskResult.objects.filter(pk__in=mine, status=TaskResultStatus.RUNNING).update(status=TaskResultStatus.READY, started_at=None)
    WorkerLease.objects.filter(worker_id=worker_id).delete()
    return count


def requeue_tasks_of_dead_workers(now: dt.datetime | None = None) -> int:
    """Put RUNNING tasks whose worker's lease has expired (or never existed) back in the queue. Returns how many."""
    from django_tasks.base import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=settings.WORKER_LEASE_SECONDS)
    alive = set(WorkerLease.objects.filter(renewed_at__gte=cutoff).values_list("worker_id", flat=True))
    requeued = 0
    # Only tasks that started before the cutoff: a task claimed a moment ago by a worker whose lease row
    # is still being written is not mistaken for an orphan.
    for result in DBTaskResult.objects.filter(status=TaskResultStatus.RUNNING, started_at__lt=cutoff).only("id", "worker_ids"):
        if result.worker_ids and result.worker_ids[-1] in alive:
            continue
        # Conditional UPDATE: if the task finished meanwhile, its status is no longer RUNNING and nothing changes.
        requeued += DBTaskResult.objects.filter(pk=result.pk, status=TaskResultStatus.RUNNING).update(
            status=TaskResultStatus.READY, started_at=None)
    WorkerLease.objects.filter(renewed_at__lt=cutoff - dt.timedelta(days=1)).delete()
    if requeued:
        logger.warning("requeued %d task(s) of dead workers", requeued)
    return requeued


def prune_finished_tasks(days: int = 14) -> int:
    from django_tasks.base import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    cutoff = timezone.now() - dt.timedelta(days=days)
    deleted, _ = DBTaskResult.objects.filter(
        status__in=[TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED], finished_at__lt=cutoff).delete()
    return deleted
