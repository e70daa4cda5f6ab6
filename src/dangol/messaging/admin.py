"""Read-only views of the outbox for administrators; settings (caps, senders) are edited through the services."""
from django.contrib import admin

from .models import ConsentNotice, Decision, FrequencyCap, Message, SenderProfile, Suppression


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Message)
class MessageAdmin(ReadOnly):
    list_display = ["id", "source", "channel", "subtype", "kind", "status", "reason", "provider", "created_at", "sent_at"]
    list_filter = ["status", "channel", "kind", "provider"]
    search_fields = ["source", "idempotency_key", "provider_message_id"]
    exclude = ["to_address", "body", "html", "subject", "variables"]  # personal text stays out of the admin


@admin.register(Decision)
class DecisionAdmin(ReadOnly):
    list_display = ["id", "message_id", "stage", "outcome", "reason", "channel", "kind", "at"]
    list_filter = ["stage", "outcome", "reason", "channel"]


@admin.register(ConsentNotice)
class ConsentNoticeAdmin(ReadOnly):
    list_display = ["id", "customer_id", "kind", "channel", "purpose", "granted", "consent_at", "due_by", "sent_at", "via", "result"]
    list_filter = ["kind", "result"]


@admin.register(Suppression)
class SuppressionAdmin(ReadOnly):
    list_display = ["id", "channel", "customer_id", "reason", "created_at"]


@admin.register(FrequencyCap)
class FrequencyCapAdmin(ReadOnly):
    list_display = ["channel", "max_messages", "period_days"]


@admin.register(SenderProfile)
class SenderProfileAdmin(ReadOnly):
    list_display = ["unit", "name", "contact", "optout_number"]
