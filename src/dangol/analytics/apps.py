import datetime as dt

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AnalyticsConfig(AppConfig):
    name = "dangol.analytics"
    label = "analytics"
    verbose_name = _("Customer analysis")

    def ready(self):
        from dangol.core import events
        from dangol.core.scheduler import PeriodicJob, register

        from . import services

        # Hourly, because scheduler slots start at multiples of the interval since the epoch (a daily slot would
        # start at 09:00 in Seoul); the task itself refreshes once a day, from 03:00 Seoul time.
        register(PeriodicJob("analytics-nightly-refresh", "dangol.analytics.tasks.nightly_refresh", dt.timedelta(hours=1)))
        events.subscribe("customers_merged", services.on_customers_merged)
