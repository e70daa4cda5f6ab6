"""Scheduled work of the privacy app (registered in apps.py). Idempotent: a second run finds nothing left to do."""
from __future__ import annotations

from django_tasks import task


@task(queue_name="default")
def apply_retention() -> str:
    from .retention import run_retention

    return run_retention(dry_run=False).lines()[-1]
