"""The outbox and everything the compliance engine records.

One ``Message`` per (source, customer, channel, occurrence): the idempotency key is unique in the database, so a
message is created once whatever the caller retries, and the delivery engine sends it once (see ``delivery``)."""
from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Channel(models.TextChoices):
    SMS = "sms", _("SMS")
    KAKAO = "kakao", _("KakaoTalk")
    EMAIL = "email", _("Email")
    POST = "post", _("Post")
    PHONE = "phone", _("Phone call")


class Subtype(models.TextChoices):
    SMS = "sms", _("SMS")
    LMS = "lms", _("LMS")
    MMS = "mms", _("MMS")
    ALIMTALK = "alimtalk", _("AlimTalk")
    BRAND = "brand", _("Kakao brand message")
    EMAIL = "email", _("Email")
    POST = "post", _("Letter")
    PHONE = "phone", _("Phone call")


class Kind(models.TextChoices):
    AD = "ad", _("Advertising")
    INFO = "info", _("Information")


class Status(models.TextChoices):
    QUEUED = "queued", _("Queued")
    HELD = "held", _("Held until morning")
    BLOCKED = "blocked", _("Blocked")
    CLAIMED = "claimed", _("Being sent")
    SENT = "sent", _("Sent")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Failed")
    UNCERTAIN = "uncertain", _("Uncertain (awaiting report)")


class MessageImage(models.Model):
    """A JPEG sent with an MMS. Kept in the database, so every worker on every host can send it without shared disks;
    the same picture uploaded twice is stored once (by its SHA-256)."""

    name = models.CharField(_("file name"), max_length=40)
    content = models.BinaryField(_("content"))
    size = models.PositiveIntegerField(_("size (bytes)"))
    width = models.PositiveSmallIntegerField(_("width (px)"))
    height = models.PositiveSmallIntegerField(_("height (px)"))
    sha256 = models.CharField(max_length=64, unique=True)
    unit = models.ForeignKey("core.BusinessUnit", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("uploaded at"))

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("MMS image")
        verbose_name_plural = _("MMS images")

    def __str__(self) -> str:
        return f"{self.name} ({self.width}×{self.height}, {self.size // 1024} KB)"


class Message(models.Model):
    idempotency_key = models.CharField(_("idempotency key"), max_length=255, unique=True)
    source = models.CharField(_("source"), max_length=100)
    occurrence = models.CharField(_("occurrence"), max_length=60)
    customer = models.ForeignKey("customers.Customer", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                 db_index=False)  # composite indexes below
    unit = models.ForeignKey("core.BusinessUnit", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False)
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices)
    subtype = models.CharField(_("type"), max_length=10, choices=Subtype.choices)
    kind = models.CharField(_("kind"), max_length=4, choices=Kind.choices)
    template_code = models.CharField(_("template code"), max_length=60, blank=True)
    variables = models.JSONField(_("variables"), default=dict, blank=True)
    to_address = models.CharField(_("to"), max_length=254, blank=True)
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    body = models.TextField(_("text"), blank=True)
    html = models.TextField(_("HTML"), blank=True)
    image = models.ForeignKey(MessageImage, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                              db_index=False, verbose_name=_("image (MMS)"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.QUEUED)
    reason = models.CharField(_("reason"), max_length=40, blank=True)
    detail = models.CharField(_("detail"), max_length=300, blank=True)
    provider = models.CharField(_("provider"), max_length=30, blank=True)
    provider_message_id = models.CharField(_("provider message id"), max_length=100, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    claim_token = models.CharField(max_length=40, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    is_test = models.BooleanField(_("test send"), default=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                   db_index=False)
    created_at = models.DateTimeField(_("created at"))
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    failed_at = models.DateTimeField(_("failed at"), null=True, blank=True)
    opened_at = models.DateTimeField(_("opened at"), null=True, blank=True)
    clicked_at = models.DateTimeField(_("clicked at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="msg_due"),
            models.Index(fields=["customer", "channel", "-created_at"], name="msg_customer_channel"),
            models.Index(fields=["source"], name="msg_source"),
            models.Index(fields=["claim_token"], name="msg_claim"),
            models.Index(fields=["provider", "provider_message_id"], name="msg_provider_id"),
        ]
        verbose_name = _("message")
        verbose_name_plural = _("messages")

    def __str__(self) -> str:
        return f"{self._meta.verbose_name} #{self.pk}"


class Decision(models.Model):
    """Every decision of the engine about a message, with its reason (the compliance log)."""

    message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.CASCADE, related_name="decisions")
    customer_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    channel = models.CharField(max_length=8)
    kind = models.CharField(max_length=4)
    stage = models.CharField(_("stage"), max_length=12, help_text=_("send, dispatch, release, withdrawal, report"))
    outcome = models.CharField(_("outcome"), max_length=10)
    reason = models.CharField(_("reason"), max_length=40)
    at = models.DateTimeField(_("at"))

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("decision")
        verbose_name_plural = _("decisions")


class Suppression(models.Model):
    """The global suppression list: an address (or a whole customer) that gets nothing from us."""

    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices, blank=True,
                               help_text=_("empty: every channel"))
    address = models.CharField(_("address"), max_length=254, blank=True, db_index=True)
    customer = models.ForeignKey("customers.Customer", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                   db_index=False)

    class Meta:
        constraints = [models.CheckConstraint(condition=~models.Q(address="") | models.Q(customer__isnull=False),
                                              name="suppression_address_or_customer")]
        verbose_name = _("suppression")
        verbose_name_plural = _("suppression list")


class FrequencyCap(models.Model):
    """At most ``max_messages`` ads per customer on ``channel`` within ``period_days`` (per unit, or group-wide)."""

    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices, unique=True)
    max_messages = models.PositiveSmallIntegerField(_("at most"))
    period_days = models.PositiveSmallIntegerField(_("days"))

    class Meta:
        verbose_name = _("frequency cap")
        verbose_name_plural = _("frequency caps")


class SenderProfile(models.Model):
    """Who the ads say they come from. A unit's own profile, else the group's (unit empty), else settings."""

    unit = models.OneToOneField("core.BusinessUnit", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(_("sender name"), max_length=60)
    contact = models.CharField(_("contact number"), max_length=20)
    optout_number = models.CharField(_("080 opt-out number"), max_length=20)
    sms_from = models.CharField(_("registered SMS sender number"), max_length=20, blank=True)
    email_from = models.EmailField(_("email sender"), blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["unit"], condition=models.Q(unit__isnull=True), name="one_group_sender")]
        verbose_name = _("sender profile")
        verbose_name_plural = _("sender profiles")


class NoticeKind(models.TextChoices):
    CHANGE = "change", _("Confirmation of a consent change")
    RECONFIRM = "reconfirm", _("Two-year re-confirmation")


class ConsentNotice(models.Model):
    """A notice the law requires: confirmation of a consent change within 14 days, re-confirmation every 2 years."""

    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(_("kind"), max_length=10, choices=NoticeKind.choices)
    consent_id = models.BigIntegerField(_("consent record"))
    channel = models.CharField(_("channel"), max_length=8)
    purpose = models.CharField(_("purpose"), max_length=20)
    granted = models.BooleanField(_("granted"))
    consent_at = models.DateTimeField(_("consent given/changed at"))
    due_by = models.DateTimeField(_("due by"))
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    via = models.CharField(_("sent via"), max_length=8, blank=True)
    result = models.CharField(_("result"), max_length=20, blank=True)
    message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "consent_id", "due_by"], name="consent_notice_once")]
        indexes = [models.Index(fields=["sent_at", "due_by"])]
        verbose_name = _("consent notice")
        verbose_name_plural = _("consent notices")


class ProviderReceipt(models.Model):
    """A delivery report received, once per (provider, report id): replays of a webhook change nothing."""

    provider = models.CharField(max_length=30)
    report_id = models.CharField(max_length=120)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["provider", "report_id"], name="receipt_once")]
