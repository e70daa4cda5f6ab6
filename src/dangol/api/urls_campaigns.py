"""Segment endpoints, mounted under /api/v1/."""
from django.urls import path

from . import views_campaigns as views

urlpatterns: list = [
    path("segments", views.SegmentListView.as_view(), name="segments"),
    path("segments/count", views.RulesCountView.as_view(), name="segments_rules_count"),
    path("segments/<int:pk>/members", views.SegmentMembersView.as_view(), name="segment_members"),
    path("segments/<int:pk>/count", views.SegmentCountView.as_view(), name="segment_count"),
]
