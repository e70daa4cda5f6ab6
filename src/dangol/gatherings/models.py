"""Events with attendance (a tasting, a fair, a VIP night, an in-store promotion): invitations to a segment with a
holdout, RSVP by link with a waiting list, check-in at the door (walk-ins too), and the report of what followed."""
from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _


class EventKind(models.TextChoices):
    TASTING = "tasting", _("Tasting")
    FAIR = "fair", _("Fair")
    VIP = "vip", _("VIP night")
    PROMOTION = "promotion", _("In-store promotion")


class Event(models.Model):
    unit = models.ForeignKey("core.BusinessUnit", on_delete=models.PROTECT, related_name="+", verbose_name=_("business unit"))
    title = models.CharField(_("title"), max_length=120)
    kind = models.CharField(_("kind"), max_length=10, choices=EventKind.choices, default=EventKind.TASTING)
    starts_at = models.DateTimeField(_("starts at"))
    ends_at = models.DateTimeField(_("ends at"))
    place = models.CharField(_("place"), max_length=200)
    capacity = models.PositiveIntegerField(_("capacity"), validators=[MinValueValidator(1)])
    segment = models.ForeignKey("campaigns.Segment", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                verbose_name=_("invited segment"))
    holdout_pct = models.PositiveSmallIntegerField(_("holdout (%)"), default=10, validators=[MaxValueValidator(50)],
                                                   help_text=_("a share of the segment not invited, to compare with"))
    followup_days = models.PositiveSmallIntegerField(_("report purchases within (days)"), default=14,
                                                     validators=[MinValueValidator(1), MaxValueValidator(365)])
    invited_at = models.DateTimeField(_("invitations sent at"), null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["-starts_at", "-id"]
        verbose_name = _("event")
        verbose_name_plural = _("events")
        constraints = [models.CheckConstraint(condition=models.Q(ends_at__gt=models.F("starts_at")), name="event_ends_after_start")]

    def __str__(self) -> str:
        return self.title


class InvitationStatus(models.TextChoices):
    INVITED = "invited", _("Invited")
    GOING = "going", _("Going")
    WAITLIST = "waitlist", _("On the waiting list")
    DECLINED = "declined", _("Declined")
    HOLDOUT = "holdout", _("Held out (not invited)")


class Invitation(models.Model):
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="invitations")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+", db_index=False)
    status = models.CharField(_("status"), max_length=10, choices=InvitationStatus.choices, default=InvitationStatus.INVITED)
    responded_at = models.DateTimeField(_("answered at"), null=True, blank=True)
    waitlisted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["event", "customer"], name="invitation_once")]
        indexes = [models.Index(fields=["customer"], name="invitation_customer"),
                   models.Index(fields=["event", "status"], name="invitation_event_status")]


class Attendance(models.Model):
    """A check-in at the door: an invited customer, a known customer who walked in, or a guest without a record."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="attendances")
    customer = models.ForeignKey("customers.Customer", null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                                 db_index=False)
    invitation = models.ForeignKey(Invitation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    walk_in = models.BooleanField(_("walk-in"), default=False)
    guest_name = models.CharField(_("guest's name"), max_length=60, blank=True)
    at = models.DateTimeField(_("checked in at"))
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-at", "-id"]
        constraints = [models.UniqueConstraint(fields=["event", "customer"], condition=models.Q(customer__isnull=False),
                                               name="attendance_once_per_customer")]
        indexes = [models.Index(fields=["customer"], name="attendance_customer")]
