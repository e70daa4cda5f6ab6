import datetime as dt

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WarehouseConfig(AppConfig):
    name = "dangol.warehouse"
    label = "warehouse"
    verbose_name = _("Warehouse export")

    def ready(self):
        from django.conf import settings

        from dangol.core.scheduler import PeriodicJob, register

        hours = int(getattr(settings, "WAREHOUSE_EVERY_HOURS", 24))
        register(PeriodicJob("warehouse-export", "dangol.warehouse.tasks.export_to_warehouse", dt.timedelta(hours=hours)))
