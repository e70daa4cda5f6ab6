"""Pages of segments, campaigns and automations, registered in web/urls.py."""
from django.urls import path

from . import views_campaigns as views

urlpatterns: list = [
    path("campaigns/", views.campaign_list, name="campaign_list"),
    path("campaigns/new/", views.campaign_new, name="campaign_new"),
    path("campaigns/<int:campaign_id>/", views.campaign_detail, name="campaign_detail"),
    path("campaigns/<int:campaign_id>/report/", views.campaign_report, name="campaign_report"),
    path("campaigns/<int:campaign_id>/<slug:action>/", views.campaign_action, name="campaign_action"),
    path("segments/", views.segment_list, name="segment_list"),
    path("segments/new/", views.segment_builder, name="segment_new"),
    path("segments/import/", views.segment_import, name="segment_import"),
    path("segments/<int:segment_id>/", views.segment_detail, name="segment_detail"),
    path("segments/<int:segment_id>/edit/", views.segment_builder, name="segment_edit"),
    path("segments/<int:segment_id>/freeze/", views.segment_freeze, name="segment_freeze"),
    path("segments/<int:segment_id>/export/", views.segment_export, name="segment_export"),
    path("automations/", views.automation_list, name="automation_list"),
    path("automations/<int:automation_id>/", views.automation_detail, name="automation_detail"),
]
