"""Background work of messaging (queue "messages"), one-line wrappers around idempotent services."""
from __future__ import annotations

from django_tasks import task


@task(queue_name="messages")
def dispatch_messages(fan_out: bool = True) -> dict:
    """Send what is due. With a big queue, first ask MESSAGING_DISPATCH_FANOUT more workers to join (they claim
    different batches), and hand over to a fresh task when the time budget runs out."""
    from django.conf import settings

    from .delivery import dispatch, pending_count

    if fan_out and pending_count() > 2 * settings.MESSAGING_BATCH_SIZE:
        for _ in range(settings.MESSAGING_DISPATCH_FANOUT):
            dispatch_messages.enqueue(fan_out=False)
    result = dispatch()
    if fan_out and pending_count():
        dispatch_messages.enqueue(fan_out=True)
    return result


@task(queue_name="messages")
def release_held_messages() -> int:
    from .delivery import release_held

    return release_held()


@task(queue_name="messages")
def confirm_consent_changes() -> int:
    from .notices import confirm_consent_changes as run

    return run()


@task(queue_name="messages")
def send_consent_reconfirmations() -> int:
    from .notices import send_reconfirmations

    return send_reconfirmations()
