import datetime as dt

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MessagingConfig(AppConfig):
    name = "dangol.messaging"
    label = "messaging"
    verbose_name = _("Messaging")

    def ready(self):
        from dangol.core import events
        from dangol.core.scheduler import PeriodicJob, register

        from . import services

        events.subscribe("consent_changed", services.on_consent_changed)
        events.subscribe("customer_erased", services.on_customer_erased)
        events.subscribe("customers_merged", services.on_customers_merged)
        # The dispatcher also runs after every send; this kick sends what is due later (retries, schedules, 08:00).
        register(PeriodicJob("messaging-dispatch", "dangol.messaging.tasks.dispatch_messages", dt.timedelta(minutes=1)))
        register(PeriodicJob("messaging-release-held", "dangol.messaging.tasks.release_held_messages", dt.timedelta(minutes=5)))
        register(PeriodicJob("messaging-consent-confirmations", "dangol.messaging.tasks.confirm_consent_changes", dt.timedelta(hours=1)))
        register(PeriodicJob("messaging-consent-reconfirmations", "dangol.messaging.tasks.send_consent_reconfirmations",
                             dt.timedelta(days=1)))
