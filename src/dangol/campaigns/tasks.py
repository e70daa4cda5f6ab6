"""Background work of campaigns and automations; each task is idempotent (a run is unique per campaign and occurrence,
an automation send per customer and occurrence)."""
from __future__ import annotations

from django_tasks import task


@task(queue_name="messages")
def run_campaign_task(campaign_id: int) -> int:
    from .services import run_campaign

    run = run_campaign(campaign_id=campaign_id)
    return run.recipients if run else 0


@task(queue_name="messages")
def run_due_campaigns_task() -> int:
    from .services import run_due_campaigns

    return run_due_campaigns()


@task(queue_name="messages")
def run_automations_task() -> dict:
    from .automations import run_automations

    return run_automations()


@task(queue_name="default")
def refresh_segment_facts_task() -> int:
    from .facts import refresh

    return refresh()
