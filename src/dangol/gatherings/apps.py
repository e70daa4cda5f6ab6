from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class GatheringsConfig(AppConfig):
    name = "dangol.gatherings"
    label = "gatherings"
    verbose_name = _("Events")

    def ready(self):
        from dangol.core import events

        from . import services

        events.subscribe("customer_erased", services.on_customer_erased)
        events.subscribe("customers_merged", services.on_customers_merged)
        events.subscribe("customers_unmerged", services.on_customers_unmerged)
