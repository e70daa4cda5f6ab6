import datetime as dt

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CampaignsConfig(AppConfig):
    name = "dangol.campaigns"
    label = "campaigns"
    verbose_name = _("Campaigns")

    def ready(self):
        from dangol.core import events
        from dangol.core.scheduler import PeriodicJob, register

        from . import automations, facts, segments

        register(PeriodicJob("campaigns-due", "dangol.campaigns.tasks.run_due_campaigns_task", dt.timedelta(minutes=1)))
        register(PeriodicJob("campaigns-segment-facts", "dangol.campaigns.tasks.refresh_segment_facts_task",
                             dt.timedelta(minutes=1)))
        register(PeriodicJob("campaigns-automations", "dangol.campaigns.tasks.run_automations_task", dt.timedelta(hours=1)))
        events.subscribe("tier_changed", automations.on_tier_changed)
        events.subscribe("points_expiring_soon", automations.on_points_expiring)
        events.subscribe("customers_erased", facts.on_customers_erased)
        events.subscribe("customers_merged", segments.on_customers_merged)
        events.subscribe("customers_unmerged", segments.on_customers_unmerged)
