"""Data-subject requests and the reasons given for access to personal data.

The access log itself is core's audit trail (``core.AuditEvent``: account, time, IP, whose data, action); this app
adds the reason a download or export was asked for, one row per audit event."""
from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class RequestKind(models.TextChoices):
    ACCESS = "access", _("Access / export (열람)")
    CORRECTION = "correction", _("Correction (정정)")
    DELETION = "deletion", _("Deletion (삭제)")
    SUSPENSION = "suspension", _("Suspension of processing (처리정지)")


class RequestStatus(models.TextChoices):
    RECEIVED = "received", _("Received")
    IN_PROGRESS = "in_progress", _("In progress")
    DONE = "done", _("Done")
    REFUSED = "refused", _("Refused")


OPEN_STATUSES = (RequestStatus.RECEIVED, RequestStatus.IN_PROGRESS)


class ReceivedVia(models.TextChoices):
    STORE = "store", _("At the counter")
    PHONE = "phone", _("By phone")
    EMAIL = "email", _("By email")
    POST = "post", _("By post")
    WEB = "web", _("Website or app")


class DataSubjectRequest(models.Model):
    """A customer's request to see, correct, delete or stop the processing of their data, answered within ten days
    (개인정보보호법 §35–§37, 시행령 §41 ④, §43 ③, §44 ②)."""

    customer = models.ForeignKey("customers.Customer", on_delete=models.PROTECT, related_name="privacy_requests",
                                 verbose_name=_("customer"))
    kind = models.CharField(_("kind"), max_length=12, choices=RequestKind.choices)
    status = models.CharField(_("status"), max_length=12, choices=RequestStatus.choices, default=RequestStatus.RECEIVED)
    received_at = models.DateTimeField(_("received at"))
    due_at = models.DateTimeField(_("due by"), db_index=True)
    received_via = models.CharField(_("received via"), max_length=8, choices=ReceivedVia.choices, default=ReceivedVia.STORE)
    details = models.TextField(_("what was asked"), blank=True, max_length=2000,
                               help_text=_("e.g. which data to correct; scrubbed when the customer is erased"))
    unit = models.ForeignKey("core.BusinessUnit", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                             verbose_name=_("received at unit"), db_index=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", db_index=False)
    handled_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", verbose_name=_("handled by"), db_index=False)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    outcome = models.CharField(_("outcome"), max_length=500, blank=True)

    class Meta:
        ordering = ["due_at", "id"]
        indexes = [models.Index(fields=["status", "due_at"], name="dsr_status_due")]
        verbose_name = _("data subject request")
        verbose_name_plural = _("data subject requests")

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class AccessReasonCode(models.TextChoices):
    DATA_SUBJECT_REQUEST = "dsr", _("The customer's own request")
    CUSTOMER_SERVICE = "service", _("Serving the customer")
    AUDIT = "audit", _("Internal audit")
    LEGAL = "legal", _("Legal obligation or authority's request")
    OTHER = "other", _("Other (explain)")


class AccessReason(models.Model):
    """Why personal data was downloaded or exported: asked before every download and kept with its audit event."""

    audit_event = models.OneToOneField("core.AuditEvent", primary_key=True, on_delete=models.CASCADE,
                                       related_name="access_reason")
    code = models.CharField(_("reason"), max_length=10, choices=AccessReasonCode.choices)
    detail = models.CharField(_("explanation"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("access reason")
        verbose_name_plural = _("access reasons")

    def __str__(self) -> str:
        return self.get_code_display() + (f": {self.detail}" if self.detail else "")
