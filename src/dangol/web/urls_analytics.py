"""Pages of the analytics app, registered in web/urls.py."""
from django.urls import path

from . import views_analytics

urlpatterns: list = [
    path("analytics/", views_analytics.dashboard, name="analytics_dashboard"),
    path("analytics/membership/", views_analytics.dashboard_membership, name="analytics_membership"),
    path("analytics/panel/<slug:name>/", views_analytics.dashboard_panel, name="analytics_panel"),
    path("analytics/csv/<slug:chart>.csv", views_analytics.dashboard_csv, name="analytics_csv"),
    path("analytics/segment/", views_analytics.segment, name="analytics_segment"),
    path("analytics/lookalikes/", views_analytics.lookalikes, name="analytics_lookalikes"),
    path("customers/<int:customer_id>/suggestions/", views_analytics.customer_suggestions,
         name="analytics_customer_suggestions"),
]
