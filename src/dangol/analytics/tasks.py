"""Background work of the analytics app. Each task is idempotent: running it twice has the effect of running it once."""
from __future__ import annotations

from django_tasks import task

from dangol.core.audit import Actor


@task(queue_name="analytics")
def refresh_customer_metrics(as_of: str | None = None) -> str:
    """Recompute the whole snapshot (``as_of``: an ISO day, default today in Seoul). Returns a summary line."""
    import datetime as dt

    from .services import refresh_metrics

    run = refresh_metrics(actor=Actor.system("task"), as_of=dt.date.fromisoformat(as_of) if as_of else None)
    return f"customers: {run.customers}, as of: {run.as_of}, seconds: {run.seconds:.1f}"


@task(queue_name="analytics")
def nightly_refresh() -> str:
    """Enqueued every hour by the scheduler; refreshes once a day from 03:00 in Seoul (see services.refresh_if_due)."""
    from .services import refresh_if_due

    run = refresh_if_due(actor=Actor.system("task"))
    return "not due" if run is None else f"customers: {run.customers}, as of: {run.as_of}, seconds: {run.seconds:.1f}"
