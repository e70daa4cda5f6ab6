import datetime as dt

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PartnersConfig(AppConfig):
    name = "dangol.partners"
    label = "partners"
    verbose_name = _("Partners")

    def ready(self):
        from dangol.core import events
        from dangol.core.scheduler import PeriodicJob, register

        from . import services

        events.subscribe("customer_erased", services.on_customer_erased)
        events.subscribe("customers_merged", services.on_customers_merged)
        events.subscribe("customers_unmerged", services.on_customers_unmerged)
        register(PeriodicJob("partners-purge-expired-exports", "dangol.partners.tasks.purge_expired_exports",
                             dt.timedelta(hours=1)))
