"""Pages of messaging, registered in web/urls.py: the composer (with its live byte counter), the outbox log, the
suppression list, sender profiles, the direct-mail print file, the call list, and the public opt-out page."""
from django.urls import path

from . import views_messaging as views

urlpatterns: list = [
    path("messages/", views.outbox, name="messaging_outbox"),
    path("messages/<int:message_id>/", views.message_detail, name="messaging_message"),
    path("messages/compose/", views.compose, name="messaging_compose"),
    path("messages/count/", views.byte_count, name="messaging_byte_count"),
    path("messages/suppressions/", views.suppressions, name="messaging_suppressions"),
    path("messages/suppressions/<int:suppression_id>/remove/", views.suppression_remove, name="messaging_suppression_remove"),
    path("messages/senders/", views.sender_profiles, name="messaging_senders"),
    path("messages/caps/", views.frequency_caps, name="messaging_caps"),
    path("messages/print/", views.print_batch, name="messaging_print"),
    path("messages/call-list/", views.call_list, name="messaging_call_list"),
    path("customers/<int:customer_id>/messages/", views.customer_messages_panel, name="messaging_customer_panel"),
    path("o/<str:token>/", views.opt_out, name="messaging_opt_out"),
]
