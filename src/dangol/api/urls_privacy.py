"""Privacy endpoints under /api/v1 (no trailing slashes)."""
from django.urls import path

from . import views_privacy as views

urlpatterns: list = [
    path("customers/<int:pk>/consents", views.ConsentsView.as_view(), name="customer_consents"),
    path("customers/<int:pk>/consents/withdraw", views.ConsentWithdrawView.as_view(), name="customer_consents_withdraw"),
    path("customers/<int:pk>/export", views.ExportView.as_view(), name="customer_export"),
    path("privacy/requests", views.RequestListCreateView.as_view(), name="privacy_requests"),
    path("privacy/requests/<int:pk>", views.RequestDetailView.as_view(), name="privacy_request"),
    path("privacy/requests/<int:pk>/complete", views.RequestCompleteView.as_view(), name="privacy_request_complete"),
    path("privacy/requests/<int:pk>/refuse", views.RequestRefuseView.as_view(), name="privacy_request_refuse"),
]
