import datetime as dt

from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "dangol.api"
    label = "api"
    verbose_name = "REST API"

    def ready(self) -> None:
        from dangol.core.scheduler import PeriodicJob, register

        from . import schema  # noqa: F401  registers the OpenAPI extension of the Bearer token scheme
        from .webhooks import subscribe_to_events

        subscribe_to_events()
        register(PeriodicJob("webhook-deliveries", "dangol.api.tasks.deliver_due_webhooks", dt.timedelta(minutes=1)))
        register(PeriodicJob("prune-api-records", "dangol.api.tasks.prune_api_records", dt.timedelta(hours=6)))
