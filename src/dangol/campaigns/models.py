"""Segments, campaigns with their offers, variants and recipients, and lifecycle automations.

A segment is a rule tree (``rules.py``) evaluated in one query whenever it is used (dynamic), or a frozen list of
customers (static). A campaign sends one message, with an optional coupon per recipient, to a segment minus a
reproducible holdout group; its recipients table is what the results compare (recipients against holdout). An
automation sends on a trigger (birthday, first purchase, no purchase for N days…) once per customer and occurrence.
Messages themselves live in the messaging app; rows here keep only their ids.
"""
from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from dangol.customers.models import Channel


class SegmentKind(models.TextChoices):
    DYNAMIC = "dynamic", _("Dynamic (rules, evaluated when used)")
    STATIC = "static", _("Static list")


class Segment(models.Model):
    name = models.CharField(_("name"), max_length=120)
    description = models.CharField(_("description"), max_length=300, blank=True)
    unit = models.ForeignKey("core.BusinessUnit", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                             verbose_name=_("business unit"),
                             help_text=_("the unit whose members it selects; empty: the whole group (admins only)"))
    kind = models.CharField(_("kind"), max_length=8, choices=SegmentKind.choices, default=SegmentKind.DYNAMIC)
    rules = models.JSONField(_("rules"), default=dict, blank=True)
    frozen_at = models.DateTimeField(_("frozen at"), null=True, blank=True)
    member_count = models.IntegerField(_("members when frozen or imported"), null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", db_index=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        verbose_name = _("segment")
        verbose_name_plural = _("segments")

    def __str__(self) -> str:
        return self.name


class SegmentMember(models.Model):
    """A member of a static segment (frozen from rules, or imported from a list of phone numbers)."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="members", db_index=False)
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["segment", "customer"], name="segmentmember_unique")]


class SegmentExport(models.Model):
    """Who exported a segment's contacts, why, and whether unmasked (the audit trail holds the event too)."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="exports")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField(_("at"), auto_now_add=True)
    reason = models.CharField(_("reason"), max_length=300)
    rows = models.IntegerField(_("rows"))
    full_contacts = models.BooleanField(_("full contacts"), default=False)

    class Meta:
        ordering = ["-at"]


class OfferKind(models.TextChoices):
    NONE = "", _("No offer")
    PERCENT = "percent", _("Percent off")
    AMOUNT = "amount", _("Amount off (KRW)")


class Offer(models.Model):
    """What a campaign or automation gives: one coupon per recipient, issued into the loyalty wallet."""

    kind = models.CharField(_("offer"), max_length=8, choices=OfferKind.choices[1:])
    value = models.PositiveIntegerField(_("value"), help_text=_("percent off, or KRW off"))
    valid_days = models.PositiveSmallIntegerField(_("valid for (days)"), default=14, validators=[MinValueValidator(1)])
    min_spend_krw = models.PositiveBigIntegerField(_("minimum spend (KRW)"), default=0)
    units = models.ManyToManyField("core.BusinessUnit", blank=True, related_name="+", verbose_name=_("usable at"),
                                   help_text=_("none: at every business unit"))
    coupon_template = models.ForeignKey("loyalty.CouponTemplate", null=True, blank=True, on_delete=models.PROTECT,
                                        related_name="+")

    class Meta:
        constraints = [models.CheckConstraint(condition=~models.Q(kind="percent") | models.Q(value__lte=100),
                                              name="offer_percent_range")]

    @property
    def units_label(self) -> str:
        """Where the coupon is good, by name; "" when at every business unit."""
        return ", ".join(sorted(u.name for u in self.units.all()))


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    PENDING = "pending", _("Waiting for approval")
    APPROVED = "approved", _("Approved")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    CANCELLED = "cancelled", _("Cancelled")


class Recurrence(models.TextChoices):
    NONE = "", _("Once")
    DAILY = "daily", _("Every day")
    WEEKLY = "weekly", _("Every week")
    MONTHLY = "monthly", _("Every month")


class Campaign(models.Model):
    name = models.CharField(_("name"), max_length=120)
    unit = models.ForeignKey("core.BusinessUnit", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                             verbose_name=_("sent by"), help_text=_("its members only; empty: the whole group (admins)"))
    segment = models.ForeignKey(Segment, on_delete=models.PROTECT, related_name="campaigns", verbose_name=_("segment"))
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices, default=Channel.SMS)
    kind = models.CharField(_("kind"), max_length=4, choices=[("ad", _("Advertising")), ("info", _("Information"))],
                            default="ad")
    status = models.CharField(_("status"), max_length=10, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT)
    offer = models.OneToOneField(Offer, null=True, blank=True, on_delete=models.SET_NULL, related_name="campaign")
    image = models.ForeignKey("messaging.MessageImage", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                              verbose_name=_("picture (MMS)"), help_text=_("a text message with a picture goes as MMS"))
    holdout_pct = models.PositiveSmallIntegerField(_("holdout (%)"), default=10, validators=[MaxValueValidator(90)])
    send_at = models.DateTimeField(_("send at"), null=True, blank=True, help_text=_("empty: as soon as approved"))
    recurrence = models.CharField(_("repeat"), max_length=8, choices=Recurrence.choices, blank=True, default="")
    next_run_at = models.DateTimeField(_("next run"), null=True, blank=True, db_index=True)
    attribution_days = models.PositiveSmallIntegerField(_("attribution window (days)"), default=14,
                                                        validators=[MinValueValidator(1), MaxValueValidator(365)])
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    approved_at = models.DateTimeField(_("approved at"), null=True, blank=True)
    last_sent_at = models.DateTimeField(_("last sent at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        constraints = [models.CheckConstraint(condition=models.Q(holdout_pct__lte=90), name="campaign_holdout_range")]

    def __str__(self) -> str:
        return self.name

    @property
    def source(self) -> str:
        return f"campaign:{self.pk}"


class Variant(models.Model):
    """A/B variants of a campaign's message; recipients are split by ``weight`` (per cent of the treated)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="variants")
    code = models.CharField(_("variant"), max_length=1, default="A")
    subject = models.CharField(_("subject"), max_length=120, blank=True)
    body = models.TextField(_("message"))
    weight = models.PositiveSmallIntegerField(_("share (%)"), default=100, validators=[MinValueValidator(1),
                                                                                      MaxValueValidator(100)])

    class Meta:
        ordering = ["code"]
        constraints = [models.UniqueConstraint(fields=["campaign", "code"], name="variant_unique_code")]


class CampaignRun(models.Model):
    """One sending of a campaign (a recurring campaign has one per occurrence)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="runs")
    occurrence = models.CharField(max_length=20)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    recipients = models.IntegerField(default=0)
    holdout = models.IntegerField(default=0)
    outcome = models.JSONField(default=dict, blank=True, help_text="the counts messaging.send_bulk returned")
    seconds = models.FloatField(default=0)

    class Meta:
        ordering = ["-started_at"]
        constraints = [models.UniqueConstraint(fields=["campaign", "occurrence"], name="campaignrun_once")]


class Recipient(models.Model):
    """A customer selected by a run: sent a variant, or kept back in the holdout (the comparison group)."""

    run = models.ForeignKey(CampaignRun, on_delete=models.CASCADE, related_name="recipient_rows", db_index=False)
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    variant = models.CharField(max_length=1, blank=True, help_text="empty for the holdout")
    is_holdout = models.BooleanField(default=False)
    coupon_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "customer"], name="recipient_once_per_run")]


class AutomationKind(models.TextChoices):
    BIRTHDAY = "birthday", _("Birthday (N days before)")
    ANNIVERSARY = "anniversary", _("Wedding and other anniversaries (N days before)")
    WELCOME = "welcome", _("Welcome after the first purchase")
    THANK_YOU = "thank_you", _("Thank-you after a purchase")
    WINBACK = "winback", _("Win-back after N days without a purchase")
    TIER_UP = "tier_up", _("Tier upgrade")
    TIER_DOWN = "tier_down", _("Tier downgrade")
    POINTS_EXPIRING = "points_expiring", _("Points about to expire")


class Automation(models.Model):
    unit = models.ForeignKey("core.BusinessUnit", on_delete=models.PROTECT, related_name="+", verbose_name=_("business unit"))
    kind = models.CharField(_("trigger"), max_length=16, choices=AutomationKind.choices)
    is_active = models.BooleanField(_("active"), default=True)
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices, default=Channel.SMS)
    body = models.TextField(_("message"))
    days = models.PositiveSmallIntegerField(_("days"), default=7,
                                            help_text=_("before the birthday or anniversary; without a purchase for win-back; "
                                                        "after the purchase for the thank-you"))
    offer = models.OneToOneField(Offer, null=True, blank=True, on_delete=models.SET_NULL, related_name="automation")
    holdout_pct = models.PositiveSmallIntegerField(_("holdout (%)"), default=10, validators=[MaxValueValidator(90)])
    attribution_days = models.PositiveSmallIntegerField(_("attribution window (days)"), default=14,
                                                        validators=[MinValueValidator(1), MaxValueValidator(365)])
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["unit", "kind"]
        verbose_name = _("automation")
        verbose_name_plural = _("automations")
        constraints = [models.UniqueConstraint(fields=["unit", "kind"], name="automation_one_per_unit_kind")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.unit}"

    @property
    def source(self) -> str:
        return f"automation:{self.kind}:{self.unit_id}"


class AutomationSend(models.Model):
    """One customer and occurrence an automation handled (sent, or held back in its holdout): the unique constraint
    makes every trigger fire once per customer and occurrence however often the job runs."""

    automation = models.ForeignKey(Automation, on_delete=models.CASCADE, related_name="sends", db_index=False)
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    occurrence = models.CharField(max_length=20)
    at = models.DateTimeField()
    is_holdout = models.BooleanField(default=False)
    coupon_id = models.BigIntegerField(null=True, blank=True)
    message_id = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=10, blank=True)

    class Meta:
        ordering = ["-at"]
        constraints = [models.UniqueConstraint(fields=["automation", "customer", "occurrence"], name="automationsend_once")]
        indexes = [models.Index(fields=["automation", "at"])]


class CustomerFacts(models.Model):
    """One row per customer holding what the segment rules most often ask, so that a live count reads one table.

    Derived data, never edited: database triggers on the source tables (customer, primary address, birthdays,
    memberships, orders, the metrics snapshot) put the customer's id in ``FactsDirty`` in the same transaction as the
    change, and ``facts.refresh`` recomputes the marked rows (before a count, and every minute in the background). See
    ``facts.py`` for which rules are answered from here."""

    customer = models.OneToOneField("customers.Customer", on_delete=models.CASCADE, primary_key=True,
                                    related_name="segment_facts")
    live = models.BooleanField(default=False)  # not merged, not erased, processing not suspended
    gender = models.CharField(max_length=1, blank=True, default="")
    stage = models.CharField(max_length=16, blank=True, default="")
    joined_at = models.DateTimeField(null=True)
    sido = models.CharField(max_length=20, null=True)  # of the primary address
    sigungu = models.CharField(max_length=30, null=True)
    birth_min = models.IntegerField(null=True)  # yyyymmdd of the earliest / latest birthday with a known year
    birth_max = models.IntegerField(null=True)
    last_sale_at = models.DateTimeField(null=True)  # counted sales: kind sale, not flagged for review
    sales = models.IntegerField(default=0)
    spent = models.BigIntegerField(null=True)  # net: every order not flagged (refunds count against it); null: none
    units = models.JSONField(default=dict)  # {"u<unit id>": 1} per membership
    unit_spent = models.JSONField(default=dict)  # {"u<unit id>": net spend there}
    rfm_segment = models.CharField(max_length=20, null=True)
    churn_risk = models.FloatField(null=True)
    p_alive = models.FloatField(null=True)
    clv_12m = models.BigIntegerField(null=True)

    class Meta:
        verbose_name = _("segment facts")
        verbose_name_plural = _("segment facts")


class FactsDirty(models.Model):
    """Customers whose ``CustomerFacts`` row must be recomputed (written by database triggers only)."""

    customer_id = models.BigIntegerField(primary_key=True)

    class Meta:
        verbose_name = _("segment facts to refresh")
        verbose_name_plural = _("segment facts to refresh")
