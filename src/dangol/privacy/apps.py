import datetime as dt

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PrivacyConfig(AppConfig):
    name = "dangol.privacy"
    label = "privacy"
    verbose_name = _("Privacy")

    def ready(self):
        from dangol.core import events
        from dangol.core.scheduler import PeriodicJob, register

        from . import services

        events.subscribe("customers_merged", services.on_customers_merged)
        events.subscribe("customers_unmerged", services.on_customers_unmerged)

        # Anonymise customers past their retention period and drop access logs past theirs, once a day.
        register(PeriodicJob("privacy-retention", "dangol.privacy.tasks.apply_retention", dt.timedelta(days=1)))
