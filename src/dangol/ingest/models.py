"""Imports, their row-level errors, saved column mappings, source ids, outlier flags, duplicates and merges."""
from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ImportKind(models.TextChoices):
    CUSTOMERS = "customers", _("Customers")
    ORDERS = "orders", _("Order lines")


class MappingProfile(models.Model):
    """A saved column mapping for one source (e.g. "hotel PMS export"), reused by the next import of that source."""

    unit = models.ForeignKey("core.BusinessUnit", on_delete=models.CASCADE, related_name="+", verbose_name=_("business unit"))
    kind = models.CharField(_("kind"), max_length=10, choices=ImportKind.choices)
    name = models.CharField(_("source name"), max_length=60)
    mapping = models.JSONField(_("column mapping"), default=dict, help_text=_("file column → Dangol field"))
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["unit", "kind", "name"], name="mapping_unique_name")]
        verbose_name = _("column mapping")
        verbose_name_plural = _("column mappings")

    def __str__(self) -> str:
        return self.name


class JobStatus(models.TextChoices):
    DRAFT = "draft", _("Waiting for the column mapping")
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Could not run")


class ImportJob(models.Model):
    """One import of one file: all of its good rows are written in one transaction, or none (dry run, or failure)."""

    kind = models.CharField(_("kind"), max_length=10, choices=ImportKind.choices)
    unit = models.ForeignKey("core.BusinessUnit", on_delete=models.PROTECT, related_name="+", verbose_name=_("business unit"))
    status = models.CharField(_("status"), max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    dry_run = models.BooleanField(_("dry run"), default=False)
    path = models.CharField(_("file"), max_length=500, help_text=_("where the uploaded or given file is kept"))
    original_name = models.CharField(_("file name"), max_length=200)
    encoding = models.CharField(_("encoding"), max_length=20, blank=True)
    mapping = models.JSONField(_("column mapping"), default=dict)
    profile = models.ForeignKey(MappingProfile, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    rows_read = models.PositiveIntegerField(_("read"), default=0)
    created = models.PositiveIntegerField(_("created"), default=0)
    updated = models.PositiveIntegerField(_("updated"), default=0)
    unchanged = models.PositiveIntegerField(_("unchanged"), default=0)
    rejected = models.PositiveIntegerField(_("rejected"), default=0)
    flagged = models.PositiveIntegerField(_("flagged"), default=0)
    error = models.TextField(_("why it could not run"), blank=True)
    seconds = models.FloatField(_("seconds"), null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("import")
        verbose_name_plural = _("imports")

    def __str__(self) -> str:
        return f"{self._meta.verbose_name} #{self.pk}"

    @property
    def counts_line(self) -> str:
        return (f"read: {self.rows_read}, created: {self.created}, updated: {self.updated}, "
                f"unchanged: {self.unchanged}, rejected: {self.rejected}")


class RowError(models.Model):
    """Why one row (or one value of it) was rejected; the downloadable error report is made of these."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="row_errors")
    row = models.PositiveIntegerField(_("row"), help_text=_("line number in the file, the header being line 1"))
    column = models.CharField(_("column"), max_length=100, blank=True)
    value = models.CharField(_("value"), max_length=200, blank=True)
    code = models.CharField(_("code"), max_length=40)
    message_en = models.CharField(max_length=300)
    message_ko = models.CharField(max_length=300)

    class Meta:
        ordering = ["row", "id"]
        indexes = [models.Index(fields=["job", "row"])]
        verbose_name = _("rejected row")
        verbose_name_plural = _("rejected rows")


class SourceRecord(models.Model):
    """A business unit's own id for a customer (its member number). Imports match on it first; a merge keeps the
    merged record's ids pointing at the surviving customer, so the next import of that unit still matches."""

    unit = models.ForeignKey("core.BusinessUnit", on_delete=models.CASCADE, related_name="+", db_index=False)  # unique (unit, source_id)
    source_id = models.CharField(_("source id"), max_length=60)
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="source_records")
    original_customer = models.ForeignKey("customers.Customer", null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                                          db_index=False, help_text=_("the record the id was first given to, before any merge"))
    job = models.ForeignKey(ImportJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False)
    row_hash = models.CharField(max_length=32, blank=True, help_text=_("digest of the last imported row: the same row again changes nothing"))

    class Meta:
        constraints = [models.UniqueConstraint(fields=["unit", "source_id"], name="source_record_unique")]
        verbose_name = _("source id")
        verbose_name_plural = _("source ids")


class FlagReason(models.TextChoices):
    NEGATIVE_QUANTITY = "negative_quantity", _("Negative quantity on a sale")
    ZERO_PRICE = "zero_price", _("Zero price")
    EXTREME_PRICE = "extreme_price", _("Price far from the product's list price")
    FUTURE = "future", _("Dated in the future")
    BEFORE_OPENING = "before_opening", _("Dated before the business unit opened")
    MANY_ORDERS = "many_orders", _("Too many orders by one customer in one day")


class FlagStatus(models.TextChoices):
    OPEN = "open", _("To review")
    ACCEPTED = "accepted", _("Accepted")
    REJECTED = "rejected", _("Kept out of analytics")


class OrderFlag(models.Model):
    """A suspicious imported order: kept, but out of analytics (``Order.needs_review``) until a manager accepts it."""

    order = models.ForeignKey("sales.Order", on_delete=models.CASCADE, related_name="flags")
    reason = models.CharField(_("reason"), max_length=20, choices=FlagReason.choices)
    detail = models.CharField(_("detail"), max_length=200, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=FlagStatus.choices, default=FlagStatus.OPEN, db_index=True)
    job = models.ForeignKey(ImportJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="flags")
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["order", "reason"], name="order_flag_once_per_reason")]
        verbose_name = _("order flag")
        verbose_name_plural = _("order flags")


class CandidateStatus(models.TextChoices):
    OPEN = "open", _("To review")
    MERGED = "merged", _("Merged")
    NOT_SAME = "not_same", _("Not the same person")


class DuplicateCandidate(models.Model):
    """A pair that record linkage scored as probably the same person (``left_id < right_id``). Pairs in the grey
    zone wait here for a manager; a "not the same" decision is kept so the next run does not ask again."""

    left = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    right = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    match_probability = models.FloatField(_("match probability"))
    match_weight = models.FloatField(_("match weight"))
    agreements = models.JSONField(_("fields compared"), default=dict, help_text=_("field → how it compared"))
    status = models.CharField(_("status"), max_length=10, choices=CandidateStatus.choices, default=CandidateStatus.OPEN, db_index=True)
    found_at = models.DateTimeField(_("found at"), auto_now_add=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-match_probability", "id"]
        constraints = [
            models.UniqueConstraint(fields=["left", "right"], name="candidate_unique_pair"),
            models.CheckConstraint(condition=models.Q(left__lt=models.F("right")), name="candidate_ordered_pair"),
        ]
        verbose_name = _("duplicate candidate")
        verbose_name_plural = _("duplicate candidates")


class Merge(models.Model):
    """One merge of ``merged`` into ``survivor``: what moved and what the survivor looked like before, so that
    ``unmerge`` restores both."""

    survivor = models.ForeignKey("customers.Customer", on_delete=models.PROTECT, related_name="+")
    merged = models.ForeignKey("customers.Customer", on_delete=models.PROTECT, related_name="+")
    automatic = models.BooleanField(_("automatic"), default=False)
    match_probability = models.FloatField(_("match probability"), null=True, blank=True)
    before = models.JSONField(default=dict, help_text=_("the survivor's profile fields before the merge"))
    moved = models.JSONField(default=dict, help_text=_("table → ids of the rows moved from the merged record"))
    at = models.DateTimeField(_("merged at"))
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    undone_at = models.DateTimeField(_("undone at"), null=True, blank=True)
    undone_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("merge")
        verbose_name_plural = _("merges")
