"""Integration tokens, idempotency records and outbound webhooks."""
from __future__ import annotations

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils.translation import gettext_lazy as _

from dangol.core.models import BusinessUnit, Role

# Resources of the API; a scope is "<resource>:read" or "<resource>:write".
SCOPE_RESOURCES = ("customers", "consents", "orders", "points", "coupons", "segments", "campaigns", "cases",
                   "messages", "privacy", "loyalty")
SCOPES = tuple(f"{resource}:{action}" for resource in SCOPE_RESOURCES for action in ("read", "write"))


class ApiToken(models.Model):
    """A token of one integration (a POS, a website…), limited to scopes and business units.

    The integration acts as its own service account (``user``): a staff, manager or admin account without a password,
    holding the token's units, so every endpoint applies the same unit scope as for people. Only a SHA-256 hash of
    the token is stored; the token itself is shown once, when it is created.
    """

    name = models.CharField(_("name"), max_length=80, unique=True)
    prefix = models.CharField(_("prefix"), max_length=16, help_text=_("the token's first characters, to recognise it"))
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_token",
                                verbose_name=_("service account"))
    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.STAFF,
                            help_text=_("staff: masked contacts; manager: full contacts and adjustments; admin: every unit"))
    scopes = models.JSONField(_("scopes"), default=list, help_text=_("e.g. customers:read, orders:write"))
    units = models.ManyToManyField(BusinessUnit, blank=True, related_name="+", verbose_name=_("business units"))
    rate = models.CharField(_("rate limit"), max_length=20, blank=True,
                            help_text=_("requests per period, e.g. 600/min; empty: DANGOL_API_TOKEN_RATE"))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", verbose_name=_("created by"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def has_scope(self, scope: str) -> bool:
        resource = scope.split(":", 1)[0]
        # write implies read of the same resource
        return scope in self.scopes or (scope.endswith(":read") and f"{resource}:write" in self.scopes)


class IdempotencyRecord(models.Model):
    """The stored answer to a POST sent with an ``Idempotency-Key``: a retry with the same key and body gets it again."""

    owner = models.CharField(max_length=80, help_text="token:<id>, legacy:<user id> or session:<user id>")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and body")
    status_code = models.PositiveSmallIntegerField(null=True, blank=True, help_text="empty while the first request runs")
    response_body = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["owner", "key"], name="idempotency_unique_owner_key")]


class WebhookEndpoint(models.Model):
    """An outside URL that receives signed event notifications."""

    name = models.CharField(_("name"), max_length=80)
    url = models.URLField(_("URL"), max_length=500)
    secret = models.CharField(_("signing secret"), max_length=100,
                              help_text=_("deliveries carry Dangol-Signature: t=<unix time>,v1=<HMAC-SHA256 of “t.body”>"))
    event_types = models.JSONField(_("events"), default=list, blank=True,
                                   help_text=_("event names, or [\"*\"] for all; see the API documentation"))
    units = models.ManyToManyField(BusinessUnit, blank=True, related_name="+", verbose_name=_("business units"),
                                   help_text=_("only events of these units; none: every unit"))
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")

    def __str__(self) -> str:
        return self.name

    def wants(self, event: str) -> bool:
        return "*" in self.event_types or event in self.event_types


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("pending")
    SUCCEEDED = "succeeded", _("succeeded")
    RETRYING = "retrying", _("retrying")
    FAILED = "failed", _("failed (gave up)")


class WebhookDelivery(models.Model):
    """One event for one endpoint, and what happened when it was sent (the delivery log)."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries",
                                 verbose_name=_("endpoint"))
    event = models.CharField(_("event"), max_length=60, db_index=True)
    event_id = models.CharField(_("event id"), max_length=40, db_index=True)
    payload = models.JSONField(_("payload"), encoder=DjangoJSONEncoder)
    status = models.CharField(_("status"), max_length=12, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True, db_index=True)
    last_status_code = models.PositiveSmallIntegerField(_("last HTTP status"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.event} → {self.endpoint} ({self.status})"
