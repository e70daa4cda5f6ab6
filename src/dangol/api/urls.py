"""The REST API, mounted at /api/v1/. Paths have no trailing slash."""
from django.urls import path, re_path

from . import urls_campaigns, urls_loyalty, urls_messaging, urls_privacy, urls_service, views
from .docs import SchemaView, docs_page
from .errors import not_found

app_name = "api"

urlpatterns = [
    path("customers", views.CustomerListCreateView.as_view(), name="customers"),
    path("customers/lookup", views.CustomerLookupView.as_view(), name="customer_lookup"),
    path("customers/<int:pk>", views.CustomerDetailView.as_view(), name="customer"),
    path("customers/<int:pk>/orders", views.CustomerOrdersView.as_view(), name="customer_orders"),
    path("orders", views.OrderCreateView.as_view(), name="orders"),
    path("orders/<int:pk>/refund", views.OrderRefundView.as_view(), name="order_refund"),
    *urls_loyalty.urlpatterns,
    *urls_messaging.urlpatterns,
    *urls_campaigns.urlpatterns,
    *urls_service.urlpatterns,
    *urls_privacy.urlpatterns,
    path("openapi.json", SchemaView.as_view(), name="schema"),
    path("docs", docs_page, name="docs"),
    re_path(r"", not_found),
]
