"""Background work of the service app, run by the scheduler (``apps.py`` registers the periodic job). Idempotent: a
case is escalated once (a conditional UPDATE claims it) and a closed case is not closed again."""
from __future__ import annotations

from django_tasks import task


@task(queue_name="default")
def escalate_overdue_cases() -> str:
    from .services import close_resolved, escalate_overdue

    return f"escalated: {escalate_overdue()}, closed: {close_resolved()}"
