"""Background work of the ingest app. Each task is idempotent: running it twice has the effect of running it once."""
from __future__ import annotations

from django_tasks import task

from dangol.core.audit import Actor


@task(queue_name="analytics")
def dedupe_customers() -> str:
    """Find probable duplicates among all live customers: merge the sure pairs, queue the grey zone for review
    (after an import, and on demand). Returns the summary line ``candidates: N, merged: N, queued: N``."""
    from .dedupe import run_dedupe  # splink and DuckDB load only in the worker that runs it

    return run_dedupe(actor=Actor.system("task")).summary_line


@task(queue_name="default")
def run_import(job_id: int) -> str:
    """Run a queued import job (the wizard queues it). A job already claimed or finished is left alone."""
    from .models import ImportJob
    from .services import run_job

    job = ImportJob.objects.select_related("unit", "created_by").get(pk=job_id)
    return run_job(job, actor=Actor(user=job.created_by, via="task")).counts_line


@task(queue_name="default")
def prune_uploads() -> int:
    """Daily: remove the files of old dry runs and abandoned uploads (they hold personal data)."""
    from .services import prune_uploads as prune

    return prune()
