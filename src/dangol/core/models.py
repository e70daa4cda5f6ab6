from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _


class BusinessUnit(models.Model):
    """A business of the group (a hotel, a bakery, a restaurant...) that keeps customers and sells."""

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=120)
    kind = models.CharField(_("kind"), max_length=40, blank=True, help_text=_("e.g. hotel, bakery, restaurant"))
    is_active = models.BooleanField(_("active"), default=True)
    opened_on = models.DateField(_("opened on"), null=True, blank=True,
                                 help_text=_("imported orders dated before this day are flagged for review"))

    class Meta:
        ordering = ["name"]
        verbose_name = _("business unit")
        verbose_name_plural = _("business units")

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    ADMIN = "admin", _("Admin")
    MANAGER = "manager", _("Manager")
    STAFF = "staff", _("Staff")


class User(AbstractUser):
    """A staff account. Admins see the whole group; managers and staff see their own units."""

    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.STAFF)
    units = models.ManyToManyField(BusinessUnit, blank=True, related_name="staff", verbose_name=_("business units"))

    class Meta:
        verbose_name = _("staff user")
        verbose_name_plural = _("staff users")

    @property
    def sees_all_units(self) -> bool:
        return self.is_superuser or self.role == Role.ADMIN

    @property
    def may_see_full_contacts(self) -> bool:
        """Staff at the counter work with masked numbers; managers and admins may reveal them (audited)."""
        return self.sees_all_units or self.role == Role.MANAGER


class AuditEvent(models.Model):
    """Who saw or changed personal data, and when. Never holds the personal data itself."""

    at = models.DateTimeField(_("at"), auto_now_add=True, db_index=True)
    actor = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("actor"))
    actor_label = models.CharField(_("actor label"), max_length=150, blank=True, help_text=_("kept when the account is deleted"))
    action = models.CharField(_("action"), max_length=60, db_index=True)
    object_type = models.CharField(_("object type"), max_length=60)
    object_id = models.CharField(_("object id"), max_length=60, db_index=True)
    fields = models.JSONField(_("fields"), default=list, blank=True, help_text=_("names of the fields touched, never their values"))
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    via = models.CharField(_("via"), max_length=20, blank=True, help_text=_("web, api, cli, import"))

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        indexes = [models.Index(fields=["object_type", "object_id", "-at"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.object_type}#{self.object_id}"


class WorkerLease(models.Model):
    """A running `dangol worker`: renewed every few seconds; a stale lease means the worker died."""

    worker_id = models.CharField(max_length=64, unique=True)
    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    renewed_at = models.DateTimeField(db_index=True)


class ScheduledSlot(models.Model):
    """One row per periodic job and time slot: the unique constraint makes enqueueing idempotent across schedulers."""

    job = models.CharField(max_length=80)
    slot = models.BigIntegerField(help_text="the slot number: seconds since the epoch // the job's interval")
    enqueued_at = models.DateTimeField(auto_now_add=True)
    task_id = models.CharField(max_length=64, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "slot"], name="scheduledslot_unique_job_slot")]


class Heartbeat(models.Model):
    """Written by the `heartbeat` task: proof that a worker ran queued work, and where (used by /readyz and tests)."""

    token = models.CharField(max_length=64, unique=True)
    worker = models.CharField(max_length=300)
    at = models.DateTimeField(db_index=True)
