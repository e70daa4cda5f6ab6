"""Background work of messaging (queue "messages"), one-line wrappers around idempotent services."""
from __future__ import annotations

from django_tasks import task


@task(queue_name="messages")
def dispatch_messages() -> dict:
    from .delivery import dispatch

    return dispatch()


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
