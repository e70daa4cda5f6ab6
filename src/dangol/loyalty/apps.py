import datetime as dt

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LoyaltyConfig(AppConfig):
    name = "dangol.loyalty"
    label = "loyalty"
    verbose_name = _("Loyalty")

    def ready(self):
        from dangol.core import events
        from dangol.core.scheduler import PeriodicJob, register

        from . import services, stamps

        events.subscribe("order_recorded", services.on_order_recorded)
        events.subscribe("orders_imported", services.on_orders_imported)
        # Not emitted yet: ingest.review.accept_flag is to emit it when a flagged order joins the books.
        events.subscribe("orders_accepted", services.on_orders_accepted)
        events.subscribe("customers_merged", services.on_customers_merged)
        events.subscribe("customers_unmerged", services.on_customers_unmerged)
        # Stamp cards react to the same events, after the points (stamps.py).
        events.subscribe("order_recorded", stamps.on_order_recorded)
        events.subscribe("orders_imported", stamps.on_orders_imported)
        events.subscribe("orders_accepted", stamps.on_orders_accepted)
        events.subscribe("customers_merged", stamps.on_customers_merged)
        events.subscribe("customers_unmerged", stamps.on_customers_unmerged)
        register(PeriodicJob("loyalty-expire-stamps", "dangol.loyalty.tasks.expire_stamps", dt.timedelta(hours=1)))
        register(PeriodicJob("loyalty-expire-points", "dangol.loyalty.tasks.expire_points", dt.timedelta(hours=1)))
        register(PeriodicJob("loyalty-expiring-soon", "dangol.loyalty.tasks.announce_expiring_points", dt.timedelta(days=1)))
        register(PeriodicJob("loyalty-review-tiers", "dangol.loyalty.tasks.review_tiers", dt.timedelta(days=1)))
