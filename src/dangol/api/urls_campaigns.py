"""Segment and campaign endpoints, mounted under /api/v1/."""
from django.urls import path

from . import views_campaigns as views

urlpatterns: list = [
    path("segments", views.SegmentListView.as_view(), name="segments"),
    path("segments/count", views.RulesCountView.as_view(), name="segments_rules_count"),
    path("segments/<int:pk>/members", views.SegmentMembersView.as_view(), name="segment_members"),
    path("segments/<int:pk>/count", views.SegmentCountView.as_view(), name="segment_count"),
    path("campaigns", views.CampaignListView.as_view(), name="campaigns"),
    path("campaigns/<int:pk>", views.CampaignDetailView.as_view(), name="campaign"),
    path("campaigns/<int:pk>/results", views.CampaignResultsView.as_view(), name="campaign_results"),
]
