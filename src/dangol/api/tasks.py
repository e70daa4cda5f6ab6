"""Tasks of the API app: one-line wrappers of services (idempotent)."""
from django_tasks import task


@task(queue_name="default")
def deliver_webhook(delivery_id: int) -> str | None:
    from .webhooks import deliver

    return deliver(delivery_id)


@task(queue_name="default")
def deliver_due_webhooks() -> int:
    from .webhooks import deliver_due

    return deliver_due()


@task(queue_name="default")
def prune_api_records() -> int:
    from .idempotency import prune
    from .webhooks import prune_deliveries

    return prune() + prune_deliveries()
