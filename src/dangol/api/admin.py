"""Admin pages of integrations: API tokens (shown once when created), webhook endpoints and the delivery log.
Admins only (managers reach the admin for reference data, not for integrations)."""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from dangol.core.audit import Actor
from dangol.core.models import BusinessUnit, Role
from dangol.core.permissions import Action, may

from . import tokens, webhooks
from .models import SCOPES, ApiToken, WebhookDelivery, WebhookEndpoint


class AdminsOnly:
    def has_module_permission(self, request):
        return may(request.user, Action.MANAGE_INTEGRATIONS)

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_add_permission(self, request):
        return self.has_module_permission(request)

    def has_change_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_delete_permission(self, request, obj=None):
        return self.has_module_permission(request)


class ApiTokenForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(label=_("scopes"), choices=[(s, s) for s in SCOPES],
                                       widget=forms.CheckboxSelectMultiple)
    units = forms.ModelMultipleChoiceField(label=_("business units"), queryset=BusinessUnit.objects.all(), required=False,
                                           widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = ApiToken
        fields = ["name", "role", "scopes", "units", "rate", "expires_at"]


@admin.register(ApiToken)
class ApiTokenAdmin(AdminsOnly, admin.ModelAdmin):
    form = ApiTokenForm
    list_display = ["name", "prefix", "role", "scope_list", "created_at", "last_used_at", "expires_at", "revoked_at"]
    list_filter = ["role", "units"]
    search_fields = ["name", "prefix"]
    readonly_fields = ["prefix", "user", "created_by", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    @admin.display(description=_("scopes"))
    def scope_list(self, obj):
        return ", ".join(obj.scopes)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields + (["name", "role"] if obj else [])

    def save_model(self, request, obj, form, change):
        actor = Actor.from_request(request, via="admin")
        if change:
            obj.scopes = tokens.validate_scopes(form.cleaned_data["scopes"])
            super().save_model(request, obj, form, change)
            return
        try:
            created = tokens.create_token(actor=actor, name=form.cleaned_data["name"], scopes=form.cleaned_data["scopes"],
                                          units=form.cleaned_data["units"], role=form.cleaned_data["role"] or Role.STAFF,
                                          rate=form.cleaned_data.get("rate", ""), expires_at=form.cleaned_data.get("expires_at"))
        except ValidationError as exc:
            messages.error(request, "; ".join(exc.messages))
            raise
        obj.__dict__.update(created.token.__dict__)  # the admin logs and redirects with the object it passed in
        messages.warning(request, _("The token of “%(name)s” is shown only now; copy it into the integration: %(key)s")
                         % {"name": obj.name, "key": created.key})

    def save_related(self, request, form, formsets, change):
        if change:
            super().save_related(request, form, formsets, change)
            form.instance.user.units.set(form.instance.units.all())

    @admin.action(description=_("Revoke the selected tokens"))
    def revoke(self, request, queryset):
        actor = Actor.from_request(request, via="admin")
        for token in queryset:
            tokens.revoke_token(actor=actor, token=token)


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(label=_("URL"), max_length=500, assume_scheme="https")
    event_types = forms.MultipleChoiceField(
        label=_("events"), widget=forms.CheckboxSelectMultiple,
        choices=[("*", _("all events"))] + [(name, f"{name} — {text}") for name, text in webhooks.EVENTS.items()])

    class Meta:
        model = WebhookEndpoint
        fields = ["name", "url", "event_types", "units", "is_active"]


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(AdminsOnly, admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["name", "url", "is_active", "created_at"]
    list_filter = ["is_active"]
    filter_horizontal = ["units"]
    readonly_fields = ["secret", "created_at"]

    def save_model(self, request, obj, form, change):
        webhooks.validate_endpoint(url=obj.url, event_types=obj.event_types)
        if not obj.secret:
            obj.secret = webhooks.new_secret()
        super().save_model(request, obj, form, change)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(AdminsOnly, admin.ModelAdmin):
    """The delivery log: read-only, with a button to send again."""

    list_display = ["created_at", "endpoint", "event", "status", "attempts", "last_status_code", "next_attempt_at", "delivered_at"]
    list_filter = ["status", "event", "endpoint"]
    search_fields = ["event_id"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
    actions = ["send_again"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Send the selected deliveries again"))
    def send_again(self, request, queryset):
        actor = Actor.from_request(request, via="admin")
        for delivery in queryset:
            webhooks.redeliver(actor=actor, delivery=delivery)
        messages.success(request, _("%(n)d deliveries will be sent again.") % {"n": queryset.count()})
