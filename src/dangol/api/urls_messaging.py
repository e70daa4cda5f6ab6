"""Public messaging endpoints: signed delivery-report webhooks and the RFC 8058 one-click unsubscribe."""
from django.urls import path

from . import views_messaging

urlpatterns = [
    path("messaging/reports/<slug:provider>", views_messaging.delivery_report, name="messaging_report"),
    path("messaging/unsubscribe/<str:token>", views_messaging.one_click_unsubscribe, name="messaging_unsubscribe"),
]
