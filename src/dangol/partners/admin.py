"""Partners and agreements are kept in the admin by admins; consents and transfers are read-only there (written by the
services only)."""
from django import forms
from django.contrib import admin

from .fields import FIELD_CHOICES
from .models import Agreement, Partner, PartnerOrigin, ThirdPartyConsent, Transfer


@admin.register(Partner)
class PartnerAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "registration_number", "contact", "is_active"]
    list_filter = ["kind", "is_active"]


class AgreementForm(forms.ModelForm):
    fields = forms.MultipleChoiceField(choices=FIELD_CHOICES, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = Agreement
        exclude = ["created_by"]


@admin.register(Agreement)
class AgreementAdmin(admin.ModelAdmin):
    form = AgreementForm
    list_display = ["title", "partner", "direction", "unit", "valid_from", "valid_until", "notice_version"]
    list_filter = ["direction", "partner"]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ThirdPartyConsent)
class ThirdPartyConsentAdmin(ReadOnly):
    list_display = ["at", "customer_id", "partner", "agreement", "granted", "method", "notice_version", "recorded_by"]
    list_filter = ["granted", "method", "partner"]
    show_full_result_count = False


@admin.register(Transfer)
class TransferAdmin(ReadOnly):
    list_display = ["at", "partner", "direction", "status", "by", "customers", "rejected", "fields", "expires_at", "downloads"]
    list_filter = ["direction", "status", "partner"]


@admin.register(PartnerOrigin)
class PartnerOriginAdmin(ReadOnly):
    list_display = ["at", "customer_id", "partner", "transfer", "created"]
