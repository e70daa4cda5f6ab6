from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from dangol.core.crypto import EncryptedTextField


class Stage(models.TextChoices):
    PROSPECT = "prospect", _("Prospect")
    CUSTOMER = "customer", _("Customer")
    REGULAR = "regular", _("Regular")
    ADVOCATE = "advocate", _("Advocate")
    PARTNER = "partner", _("Partner")


class Gender(models.TextChoices):
    UNKNOWN = "", _("Not given")
    FEMALE = "F", _("Female")
    MALE = "M", _("Male")


class Tag(models.Model):
    name = models.CharField(_("name"), max_length=40, unique=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("tag")
        verbose_name_plural = _("tags")

    def __str__(self) -> str:
        return self.name


class Customer(models.Model):
    """One person, once, across every business unit and channel of the group.

    Indexes are chosen for the reads that need them: a foreign key covered by a composite or unique index that starts
    with it gets no index of its own, and rarely followed references (who created a row) get none — every index is
    paid for by each of a million imported rows."""

    name = models.CharField(_("name"), max_length=100, db_index=True)
    gender = models.CharField(_("gender"), max_length=1, choices=Gender.choices, blank=True, default="")
    stage = models.CharField(_("relationship stage"), max_length=16, choices=Stage.choices, default=Stage.PROSPECT)
    # Staff chose the stage by hand: the analysis rules (analytics' nightly refresh) leave it alone from then on.
    stage_set_by_staff = models.BooleanField(_("stage set by staff"), default=False, db_default=False)
    home_unit = models.ForeignKey("core.BusinessUnit", null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="home_customers", verbose_name=_("registered at"))
    joined_at = models.DateTimeField(_("joined at"))  # indexed descending in Meta
    tags = models.ManyToManyField(Tag, blank=True, related_name="customers", verbose_name=_("tags"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                   db_index=False)
    # Set when this record was merged into another (a duplicate of the same person). The row stays so that the merge
    # can be undone; every selector leaves merged records out.
    merged_into = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="merged_records",
                                    verbose_name=_("merged into"))
    # Data-subject rights (privacy): a customer who asked to suspend processing gets no marketing and is left out of
    # segments; an erased customer is an anonymous shell kept so that orders and aggregates stay correct.
    processing_suspended = models.BooleanField(_("processing suspended"), default=False, db_default=False)
    erased_at = models.DateTimeField(_("erased at"), null=True, blank=True)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        indexes = [models.Index(fields=["-joined_at"])]

    def __str__(self) -> str:
        return f"{self._meta.verbose_name} #{self.pk}"  # never the name: str() ends up in logs


class Membership(models.Model):
    """The customer is known to this business unit (registered there or bought there): the unit-scope rule."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="memberships", db_index=False)  # unique (customer, unit)
    unit = models.ForeignKey("core.BusinessUnit", on_delete=models.PROTECT, related_name="memberships")
    joined_at = models.DateTimeField(_("joined at"))
    source = models.CharField(_("source"), max_length=20, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["customer", "unit"], name="membership_unique_customer_unit")]
        indexes = [models.Index(fields=["unit", "customer"])]
        verbose_name = _("unit membership")
        verbose_name_plural = _("unit memberships")


class ContactKind(models.TextChoices):
    PHONE = "phone", _("Phone")
    EMAIL = "email", _("Email")


class ContactPoint(models.Model):
    """A phone number (stored E.164) or an email (lower-cased) of a customer."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="contacts", db_index=False)  # unique (customer, kind, value)
    kind = models.CharField(_("kind"), max_length=8, choices=ContactKind.choices)
    value = models.CharField(_("value"), max_length=254)
    last4 = models.CharField(_("last four digits"), max_length=4, blank=True, db_index=True)
    label = models.CharField(_("label"), max_length=20, blank=True, help_text=_("mobile, home, work…"))
    is_primary = models.BooleanField(_("primary"), default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-is_primary", "id"]
        indexes = [models.Index(fields=["kind", "value"])]
        constraints = [
            models.UniqueConstraint(fields=["customer", "kind", "value"], name="contact_unique_per_customer"),
            models.UniqueConstraint(fields=["customer", "kind"], condition=models.Q(is_primary=True), name="contact_one_primary_per_kind"),
        ]
        verbose_name = _("contact point")
        verbose_name_plural = _("contact points")


class Channel(models.TextChoices):
    SMS = "sms", _("SMS")
    KAKAO = "kakao", _("KakaoTalk")
    EMAIL = "email", _("Email")
    POST = "post", _("Post")
    PHONE = "phone", _("Phone call")


class Purpose(models.TextChoices):
    MARKETING = "marketing", _("Advertising (marketing messages)")
    NIGHT_MARKETING = "night_marketing", _("Advertising at night (21:00–08:00)")


class ConsentSource(models.TextChoices):
    STORE = "store", _("At the counter")
    PHONE = "phone", _("By phone")
    WEB = "web", _("Website")
    APP = "app", _("App")
    IMPORT = "import", _("Import")
    API = "api", _("API")


class ConsentKind(models.TextChoices):
    """Required and optional consents are asked for, recorded and withdrawn apart (개인정보보호법 §22 ①·⑤): refusing an
    optional one never costs the customer the service, and the required one is never a marketing consent."""

    REQUIRED = "required", _("Required: collection and use of personal data to serve the customer")
    OPTIONAL = "optional", _("Optional: collection of further items (birthday, address…)")
    MARKETING = "marketing", _("Optional: advertising by channel")


class NoticeVersion(models.Model):
    """The notice shown when a consent is asked for (개인정보보호법 §15 ②, §22 ①): purpose, items collected, how long
    they are kept, the full text. A version is never changed once a consent points at it: publish a new version."""

    kind = models.CharField(_("kind"), max_length=10, choices=ConsentKind.choices)
    version = models.CharField(_("version"), max_length=20, help_text=_("e.g. 2026-01"))
    title = models.CharField(_("title"), max_length=120)
    purpose = models.CharField(_("purpose"), max_length=300)
    items = models.CharField(_("items collected"), max_length=300)
    retention = models.CharField(_("retention period"), max_length=200)
    text = models.TextField(_("full text shown"))
    effective_from = models.DateTimeField(_("in force from"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                   db_index=False)

    class Meta:
        ordering = ["kind", "-effective_from", "-id"]
        constraints = [models.UniqueConstraint(fields=["kind", "version"], name="notice_unique_kind_version")]
        verbose_name = _("notice version")
        verbose_name_plural = _("notice versions")

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.version}"

    @classmethod
    def current(cls, kind: str, at=None) -> "NoticeVersion | None":
        """The version in force for this kind of consent (the latest that has started)."""
        from django.utils import timezone

        return cls.objects.filter(kind=kind, effective_from__lte=at or timezone.now()).order_by("-effective_from", "-id").first()


class Consent(models.Model):
    """One consent event (granted or withdrawn). History is kept; the latest per channel × purpose is in force.

    Each record is evidence on its own: what it is for (kind, purpose; the notice's purpose, items and retention),
    the notice version shown, the channel it came through (source: counter, phone, web…), when, where (unit), how
    (method) and who recorded it. Marketing consents are per channel; the required and optional collection consents
    have no channel and their purpose is their kind."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="consents", db_index=False)  # composite index
    kind = models.CharField(_("kind"), max_length=10, choices=ConsentKind.choices, default=ConsentKind.MARKETING,
                            db_default=ConsentKind.MARKETING)
    notice = models.ForeignKey(NoticeVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="consents",
                               verbose_name=_("notice shown"), db_index=False)
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices, blank=True)
    purpose = models.CharField(_("purpose"), max_length=20, choices=Purpose.choices, default=Purpose.MARKETING)
    granted = models.BooleanField(_("granted"))
    at = models.DateTimeField(_("at"))
    source = models.CharField(_("source"), max_length=10, choices=ConsentSource.choices)
    unit = models.ForeignKey("core.BusinessUnit", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("where"),
                             db_index=False)
    method = models.CharField(_("how"), max_length=60, blank=True, help_text=_("e.g. signed paper form, verbal at the counter, web checkbox"))
    evidence = models.TextField(_("evidence"), blank=True, help_text=_("the notice text or form version the customer agreed to"))
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                    db_index=False)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["customer", "channel", "purpose", "-at"])]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(kind="marketing", purpose__in=["marketing", "night_marketing"]) & ~models.Q(channel=""))
                | (models.Q(kind__in=["required", "optional"], channel="") & models.Q(purpose=models.F("kind"))),
                name="consent_kind_matches_channel_purpose",
            ),
        ]
        verbose_name = _("consent")
        verbose_name_plural = _("consents")


class AnniversaryKind(models.TextChoices):
    BIRTHDAY = "birthday", _("Birthday")
    WEDDING = "wedding", _("Wedding anniversary")
    OTHER = "other", _("Other")


class Anniversary(models.Model):
    """A yearly date; lunar dates are converted to their solar date each year."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="anniversaries")
    kind = models.CharField(_("kind"), max_length=10, choices=AnniversaryKind.choices)
    label = models.CharField(_("label"), max_length=60, blank=True)
    year = models.PositiveSmallIntegerField(_("year"), null=True, blank=True)
    month = models.PositiveSmallIntegerField(_("month"))
    day = models.PositiveSmallIntegerField(_("day"))
    is_lunar = models.BooleanField(_("lunar calendar"), default=False)
    is_leap_month = models.BooleanField(_("leap month"), default=False)

    class Meta:
        ordering = ["kind", "month", "day"]
        indexes = [models.Index(fields=["kind", "month", "day"])]
        constraints = [
            models.CheckConstraint(condition=models.Q(month__gte=1, month__lte=12), name="anniversary_month_range"),
            models.CheckConstraint(condition=models.Q(day__gte=1, day__lte=31), name="anniversary_day_range"),
        ]
        verbose_name = _("anniversary")
        verbose_name_plural = _("anniversaries")


class Address(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="addresses")
    sido = models.CharField(_("province (시/도)"), max_length=20, blank=True, db_index=True)
    sigungu = models.CharField(_("district (시/군/구)"), max_length=30, blank=True, db_index=True)
    line = models.CharField(_("street address"), max_length=200, blank=True)
    postal_code = models.CharField(_("postal code"), max_length=5, blank=True)
    is_primary = models.BooleanField(_("primary"), default=True)

    class Meta:
        ordering = ["-is_primary", "id"]
        constraints = [
            models.UniqueConstraint(fields=["customer"], condition=models.Q(is_primary=True), name="address_one_primary"),
        ]
        verbose_name = _("address")
        verbose_name_plural = _("addresses")


class Preference(models.Model):
    """Something staff learned about what the customer likes (room, bread, frame size…)."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="preferences")
    topic = models.CharField(_("topic"), max_length=60)
    value = models.CharField(_("preference"), max_length=200)
    unit = models.ForeignKey("core.BusinessUnit", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    recorded_at = models.DateTimeField(_("recorded at"))

    class Meta:
        ordering = ["topic", "-recorded_at"]
        verbose_name = _("preference")
        verbose_name_plural = _("preferences")


class InteractionKind(models.TextChoices):
    PURCHASE = "purchase", _("Purchase")
    REFUND = "refund", _("Refund")
    VISIT = "visit", _("Visit")
    NOTE = "note", _("Note")
    MESSAGE = "message", _("Message")
    CASE = "case", _("Case")


class Interaction(models.Model):
    """One entry of the 360° timeline. Other apps add entries (purchases through the order_recorded event)."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="interactions", db_index=False)  # composite index
    kind = models.CharField(_("kind"), max_length=10, choices=InteractionKind.choices)
    occurred_at = models.DateTimeField(_("when"))
    unit = models.ForeignKey("core.BusinessUnit", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("business unit"),
                             db_index=False)
    channel = models.CharField(_("channel"), max_length=10, blank=True)
    summary = models.CharField(_("summary"), max_length=300, blank=True)
    body = models.TextField(_("text"), blank=True)
    amount = models.BigIntegerField(_("amount (KRW)"), null=True, blank=True)
    # A note flagged sensitive (health, family matters…) keeps its text only here, encrypted at rest; summary and body
    # stay empty so that lists, exports and search never carry it. Reading it is audited.
    sensitive = models.BooleanField(_("sensitive"), default=False, db_default=False)
    sensitive_text = EncryptedTextField(_("sensitive text"), blank=True, default="", db_default="")
    ref_type = models.CharField(max_length=40, blank=True)
    ref_id = models.BigIntegerField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                   db_index=False)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["customer", "-occurred_at", "-id"]),
            models.Index(fields=["ref_type", "ref_id"]),
        ]
        verbose_name = _("timeline entry")
        verbose_name_plural = _("timeline entries")
