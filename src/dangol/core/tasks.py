"""Periodic housekeeping tasks. Each is idempotent: running it twice has the effect of running it once."""
from __future__ import annotations

import os
import socket
import time

from django.utils import timezone
from django_tasks import task

from .models import Heartbeat


@task(queue_name="default")
def heartbeat(token: str, hold_seconds: float = 0) -> str:
    """Record that a worker picked up queued work. A token seen before is not written again.

    ``hold_seconds`` (at most 10) keeps the worker busy first: the fault tests kill a worker in that window."""
    time.sleep(min(max(hold_seconds, 0), 10))
    Heartbeat.objects.get_or_create(token=token, defaults={"worker": f"{socket.gethostname()}:{os.getpid()}", "at": timezone.now()})
    return token


@task(queue_name="default")
def clear_expired_sessions() -> None:
    from django.contrib.sessions.models import Session

    Session.objects.filter(expire_date__lt=timezone.now()).delete()


@task(queue_name="default")
def prune_finished_tasks(days: int = 14) -> int:
    from .workers import prune_finished_tasks as prune

    return prune(days=days)


@task(queue_name="default")
def requeue_tasks_of_dead_workers() -> int:
    from .workers import requeue_tasks_of_dead_workers as requeue

    return requeue()
