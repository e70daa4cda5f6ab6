import datetime as dt

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ServiceConfig(AppConfig):
    name = "dangol.service"
    label = "service"
    verbose_name = _("Service")

    def ready(self):
        from dangol.core import events
        from dangol.core.scheduler import PeriodicJob, register

        from . import services

        events.subscribe("customer_erased", services.on_customer_erased)
        events.subscribe("customers_merged", services.on_customers_merged)
        events.subscribe("customers_unmerged", services.on_customers_unmerged)
        events.subscribe("order_recorded", services.on_order_recorded)
        register(PeriodicJob("service-escalate-overdue", "dangol.service.tasks.escalate_overdue_cases", dt.timedelta(minutes=5)))
