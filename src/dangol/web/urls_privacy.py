"""Pages of the privacy app: a customer's privacy page and its actions, the requests board, the access log."""
from django.urls import path

from . import views_privacy as views

urlpatterns: list = [
    path("customers/<int:customer_id>/privacy/", views.privacy_customer, name="privacy_customer"),
    path("customers/<int:customer_id>/privacy/withdraw/", views.privacy_withdraw, name="privacy_withdraw"),
    path("customers/<int:customer_id>/privacy/grant/", views.privacy_grant, name="privacy_grant"),
    path("customers/<int:customer_id>/privacy/requests/", views.privacy_open_request, name="privacy_open_request"),
    path("customers/<int:customer_id>/privacy/suspend/", views.privacy_suspend, name="privacy_suspend"),
    path("customers/<int:customer_id>/privacy/notes/", views.privacy_sensitive_note, name="privacy_sensitive_note"),
    path("customers/<int:customer_id>/privacy/notes/<int:note_id>/reveal/", views.privacy_reveal_note, name="privacy_reveal_note"),
    path("customers/<int:customer_id>/privacy/export/", views.privacy_export, name="privacy_export"),
    path("customers/<int:customer_id>/privacy/erase/", views.privacy_erase, name="privacy_erase"),
    path("privacy/requests/", views.privacy_requests, name="privacy_requests"),
    path("privacy/requests/<int:request_id>/", views.privacy_request, name="privacy_request"),
    path("privacy/requests/<int:request_id>/<slug:action>/", views.privacy_request_action, name="privacy_request_action"),
    path("privacy/access-log/", views.privacy_access_log, name="privacy_access_log"),
    path("privacy/access-log/reviewed/", views.privacy_access_log_review, name="privacy_access_log_review"),
    path("privacy/access-log.csv", views.privacy_access_log_csv, name="privacy_access_log_csv"),
]
