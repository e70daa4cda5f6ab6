"""The warehouse export's own bookkeeping: one row per run, holding the watermarks the next run starts from."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ExportStatus(models.TextChoices):
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class ExportRun(models.Model):
    """A run of ``dangol export warehouse DIR``: where to, with or without identities, what it wrote, and up to where
    (``watermarks``, per dataset) — the next run to the same directory starts after them."""

    target = models.CharField(_("directory"), max_length=500)
    identities = models.BooleanField(_("with identities"), default=False,
                                     help_text=_("customer ids, names and contacts in clear; otherwise keyed pseudonyms only"))
    status = models.CharField(_("status"), max_length=8, choices=ExportStatus.choices, default=ExportStatus.RUNNING)
    started_at = models.DateTimeField(_("started at"))
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    watermarks = models.JSONField(_("watermarks"), default=dict, blank=True)
    rows = models.JSONField(_("rows written"), default=dict, blank=True)
    files = models.JSONField(_("files written"), default=list, blank=True)
    error = models.TextField(_("error"), blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    via = models.CharField(_("via"), max_length=20, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        verbose_name = _("warehouse export")
        verbose_name_plural = _("warehouse exports")
        indexes = [models.Index(fields=["target", "status", "-id"], name="warehouse_run_target")]
        constraints = [
            # One running export per directory: a second one (the schedule and a manager at once) is refused.
            models.UniqueConstraint(fields=["target"], condition=models.Q(status="running"), name="warehouse_one_running_per_target"),
        ]

    def __str__(self) -> str:
        return f"export #{self.pk} to {self.target}"
