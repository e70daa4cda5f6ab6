from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IngestConfig(AppConfig):
    name = "dangol.ingest"
    label = "ingest"
    verbose_name = _("Import and cleansing")

    def ready(self):
        import datetime as dt

        from dangol.core.scheduler import PeriodicJob, register

        register(PeriodicJob("ingest-prune-uploads", "dangol.ingest.tasks.prune_uploads", dt.timedelta(days=1)))
