"""API endpoints of the service app (cases), mounted under /api/v1/."""
from django.urls import path

from . import views_service as views

urlpatterns: list = [
    path("cases", views.CaseListCreateView.as_view(), name="cases"),
    path("cases/<int:pk>", views.CaseDetailView.as_view(), name="case"),
    path("cases/<int:pk>/status", views.CaseStatusView.as_view(), name="case_status"),
    path("cases/<int:pk>/entries", views.CaseEntryView.as_view(), name="case_entries"),
]
