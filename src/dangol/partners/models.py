"""Partner data sharing (alliances, co-branded cards, sister brands): partners, agreements, the customers' consents to
third-party provision (개인정보 제3자 제공 동의) with their evidence, every transfer logged, and where imported customers
came from.

Rules (``services.py``): a customer goes to a partner only with a granted consent naming that partner's agreement
(its purpose), only the agreed fields leave, the file is an AES-encrypted zip that expires; a partner's list comes in
through the ingest pipeline, only its rows whose consent column says yes."""
from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _



class PartnerKind(models.TextChoices):
    CARD = "card", _("Card company")
    BRAND = "brand", _("Sister brand")
    OTHER = "other", _("Other")


class Partner(models.Model):
    name = models.CharField(_("name"), max_length=120, unique=True)
    kind = models.CharField(_("kind"), max_length=8, choices=PartnerKind.choices, default=PartnerKind.OTHER)
    registration_number = models.CharField(_("business registration number"), max_length=20, blank=True)
    contact = models.CharField(_("contact (privacy officer)"), max_length=200, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("partner")
        verbose_name_plural = _("partners")

    def __str__(self) -> str:
        return self.name


class Direction(models.TextChoices):
    TO_PARTNER = "to_partner", _("We provide to the partner")
    FROM_PARTNER = "from_partner", _("The partner provides to us")


class Agreement(models.Model):
    """What may be shared with a partner, for which purpose, in which direction and until when."""

    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="agreements", verbose_name=_("partner"))
    title = models.CharField(_("title"), max_length=120)
    purpose = models.CharField(_("purpose"), max_length=300,
                               help_text=_("the purpose named in the customers' consent, e.g. co-branded card benefits"))
    direction = models.CharField(_("direction"), max_length=12, choices=Direction.choices)
    fields = models.JSONField(_("fields allowed"), default=list, help_text=_("the personal data items the agreement allows"))
    unit = models.ForeignKey("core.BusinessUnit", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                             verbose_name=_("business unit"),
                             help_text=_("whose customers are provided, or which unit receives the partner's list; empty: the group (export only)"))
    valid_from = models.DateTimeField(_("valid from"))
    valid_until = models.DateTimeField(_("valid until"))
    notice_version = models.CharField(_("consent notice version"), max_length=40,
                                      help_text=_("the version of the consent text customers agree to"))
    notice_text = models.TextField(_("consent notice text"), blank=True,
                                   help_text=_("recipient, purpose, items, retention period and the right to refuse"))
    retention = models.CharField(_("retention by the recipient"), max_length=200, blank=True)
    document_ref = models.CharField(_("contract reference"), max_length=120, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["partner", "title"]
        verbose_name = _("agreement")
        verbose_name_plural = _("agreements")
        constraints = [
            models.CheckConstraint(condition=models.Q(valid_until__gt=models.F("valid_from")), name="agreement_ends_after_start"),
            models.CheckConstraint(condition=~models.Q(direction="from_partner") | models.Q(unit__isnull=False),
                                   name="agreement_import_has_unit"),
        ]

    def __str__(self) -> str:
        return f"{self.partner} — {self.title}"

    def clean(self):
        from .fields import FIELDS

        unknown = [f for f in (self.fields or []) if f not in FIELDS]
        if unknown or not self.fields:
            raise ValidationError({"fields": [_("Choose the allowed fields among: %(fields)s.") % {"fields": ", ".join(FIELDS)}]})
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValidationError({"valid_until": [_("An agreement ends after it starts.")]})
        if self.direction == Direction.FROM_PARTNER and not self.unit_id:
            raise ValidationError({"unit": [_("Choose the business unit that receives the partner's list.")]})

    def is_valid_at(self, when) -> bool:
        return self.partner.is_active and self.valid_from <= when < self.valid_until


class ConsentMethod(models.TextChoices):
    PAPER = "paper", _("Signed paper form")
    COUNTER = "counter", _("At the counter (tablet)")
    WEB = "web", _("Web or app checkbox")
    PHONE = "phone", _("By phone (recorded)")
    PARTNER_FILE = "partner_file", _("Collected by the partner (its file)")


class ThirdPartyConsent(models.Model):
    """One decision of a customer about the provision of their data under an agreement (the partner and purpose it
    names). Never changed: a withdrawal is a new row; the latest row per customer and agreement decides."""

    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="third_party_consents",
                                 db_index=False)
    agreement = models.ForeignKey(Agreement, on_delete=models.PROTECT, related_name="consents", verbose_name=_("agreement"))
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="+", verbose_name=_("partner"), db_index=False)
    purpose = models.CharField(_("purpose"), max_length=300)
    granted = models.BooleanField(_("granted"))
    at = models.DateTimeField(_("when"))
    method = models.CharField(_("how"), max_length=12, choices=ConsentMethod.choices)
    notice_version = models.CharField(_("notice version"), max_length=40)
    notice_text = models.TextField(_("notice text shown"), blank=True)
    evidence = models.CharField(_("evidence"), max_length=300, blank=True, help_text=_("form number, file and row, call id…"))
    unit = models.ForeignKey("core.BusinessUnit", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                    db_index=False)
    recorded_at = models.DateTimeField(_("recorded at"), auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("third-party provision consent")
        verbose_name_plural = _("third-party provision consents")
        indexes = [models.Index(fields=["customer", "agreement", "-at", "-id"], name="tpc_customer_agreement"),
                   models.Index(fields=["agreement", "-at"], name="tpc_agreement_at")]

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise ValueError("consents are immutable: record a new decision instead")
        super().save(*args, **kwargs)


class TransferStatus(models.TextChoices):
    READY = "ready", _("Ready to download")
    EXPIRED = "expired", _("Expired (file deleted)")
    DONE = "done", _("Imported")
    FAILED = "failed", _("Failed")


class Transfer(models.Model):
    """Every transfer to or from a partner: who, when, which fields, how many customers, and the file."""

    agreement = models.ForeignKey(Agreement, on_delete=models.PROTECT, related_name="transfers")
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="transfers")
    direction = models.CharField(_("direction"), max_length=12, choices=Direction.choices)
    status = models.CharField(_("status"), max_length=8, choices=TransferStatus.choices)
    at = models.DateTimeField(_("when"))
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                           verbose_name=_("by"))
    fields = models.JSONField(_("fields"), default=list)
    customers = models.PositiveIntegerField(_("customers"), default=0)
    rejected = models.PositiveIntegerField(_("rows refused"), default=0,
                                           help_text=_("rows of a partner's list without consent or that the import rejected"))
    file_name = models.CharField(_("file"), max_length=200, blank=True)
    path = models.CharField(max_length=500, blank=True)
    sha256 = models.CharField(_("SHA-256 of the file"), max_length=64, blank=True)
    token_hash = models.CharField(max_length=64, blank=True, db_index=True)
    expires_at = models.DateTimeField(_("download expires at"), null=True, blank=True)
    downloads = models.PositiveIntegerField(_("downloads"), default=0)
    last_download_at = models.DateTimeField(_("last download"), null=True, blank=True)
    import_job = models.ForeignKey("ingest.ImportJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    note = models.CharField(_("note"), max_length=300, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("transfer")
        verbose_name_plural = _("transfers")

    def __str__(self) -> str:
        return f"{self.get_direction_display()} {self.partner} #{self.pk}"


class PartnerOrigin(models.Model):
    """A customer who came in (or was updated) through a partner's list."""

    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="partner_origins", db_index=False)
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="+")
    transfer = models.ForeignKey(Transfer, on_delete=models.PROTECT, related_name="origins")
    created = models.BooleanField(_("new customer"), default=False)
    at = models.DateTimeField(_("when"))

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("partner origin")
        verbose_name_plural = _("partner origins")
        indexes = [models.Index(fields=["customer", "-at"], name="partnerorigin_customer")]
        constraints = [models.UniqueConstraint(fields=["transfer", "customer"], name="partnerorigin_once_per_transfer")]
