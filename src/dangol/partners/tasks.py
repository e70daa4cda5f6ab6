"""Hourly: the files of expired partner exports are deleted (the transfer log stays)."""
from __future__ import annotations

from django_tasks import task


@task(queue_name="default")
def purge_expired_exports() -> int:
    from .services import purge_expired_exports as purge

    return purge()
