"""Service: cases (complaints, after-sales, inquiries, requests) with their SLA, the goodwill given to recover a
complaint, what staff learned about a customer (traits), and satisfaction surveys.

Every write goes through ``services.py``; the rows here keep only the invariants of one row."""
from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class CaseType(models.TextChoices):
    COMPLAINT = "complaint", _("Complaint")
    AFTER_SALES = "as", _("After-sales (A/S)")
    INQUIRY = "inquiry", _("Inquiry")
    REQUEST = "request", _("Request")


class CaseChannel(models.TextChoices):
    COUNTER = "counter", _("Counter")
    PHONE = "phone", _("Phone")
    WEB = "web", _("Web form")
    MESSAGE = "message", _("Message")


class Priority(models.TextChoices):
    LOW = "low", _("Low")
    NORMAL = "normal", _("Normal")
    HIGH = "high", _("High")
    URGENT = "urgent", _("Urgent")


class CaseStatus(models.TextChoices):
    NEW = "new", _("New")
    IN_PROGRESS = "in_progress", _("In progress")
    WAITING = "waiting", _("Waiting for customer")
    RESOLVED = "resolved", _("Resolved")
    CLOSED = "closed", _("Closed")


OPEN_STATUSES = (CaseStatus.NEW, CaseStatus.IN_PROGRESS, CaseStatus.WAITING)


class SlaRule(models.Model):
    """How long a case of a type and priority may stay open before it is overdue (wall-clock hours; the clock stops
    while the case waits for the customer). A missing rule falls back to ``services.DEFAULT_SLA_HOURS``."""

    case_type = models.CharField(_("case type"), max_length=10, choices=CaseType.choices)
    priority = models.CharField(_("priority"), max_length=8, choices=Priority.choices)
    resolve_hours = models.PositiveIntegerField(_("resolve within (hours)"))

    class Meta:
        ordering = ["case_type", "priority"]
        constraints = [
            models.UniqueConstraint(fields=["case_type", "priority"], name="slarule_unique_type_priority"),
            models.CheckConstraint(condition=models.Q(resolve_hours__gte=1), name="slarule_positive_hours"),
        ]
        verbose_name = _("SLA rule")
        verbose_name_plural = _("SLA rules")

    def __str__(self) -> str:
        return f"{self.get_case_type_display()} · {self.get_priority_display()}: {self.resolve_hours} h"


class Case(models.Model):
    customer = models.ForeignKey("customers.Customer", on_delete=models.PROTECT, related_name="cases", verbose_name=_("customer"))
    unit = models.ForeignKey("core.BusinessUnit", on_delete=models.PROTECT, related_name="cases", verbose_name=_("business unit"))
    case_type = models.CharField(_("type"), max_length=10, choices=CaseType.choices)
    channel = models.CharField(_("channel"), max_length=8, choices=CaseChannel.choices)
    priority = models.CharField(_("priority"), max_length=8, choices=Priority.choices, default=Priority.NORMAL)
    status = models.CharField(_("status"), max_length=12, choices=CaseStatus.choices, default=CaseStatus.NEW)
    subject = models.CharField(_("subject"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    order = models.ForeignKey("sales.Order", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                              verbose_name=_("order"), db_index=False)
    product = models.ForeignKey("sales.Product", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                verbose_name=_("product"), db_index=False)
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="assigned_cases", verbose_name=_("assigned to"))
    opened_at = models.DateTimeField(_("opened at"))
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                  db_index=False)
    due_at = models.DateTimeField(_("due at"))
    waiting_since = models.DateTimeField(null=True, blank=True)
    first_response_at = models.DateTimeField(_("first response at"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    resolution = models.TextField(_("resolution"), blank=True)
    escalated_at = models.DateTimeField(_("escalated at"), null=True, blank=True)
    escalated_to = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="escalated_cases", verbose_name=_("escalated to"))
    reopen_count = models.PositiveSmallIntegerField(_("reopened"), default=0)
    follow_up_of = models.ForeignKey("SurveyResponse", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                     verbose_name=_("follow-up of survey answer"), db_index=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["due_at", "id"]
        indexes = [
            models.Index(fields=["unit", "status", "due_at"]),
            models.Index(fields=["status", "due_at"]),
            models.Index(fields=["customer", "-opened_at"]),
        ]
        verbose_name = _("case")
        verbose_name_plural = _("cases")

    def __str__(self) -> str:
        return f"{self._meta.verbose_name} #{self.pk}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class EntryKind(models.TextChoices):
    NOTE = "note", _("Internal note")
    REPLY = "reply", _("Reply to the customer")
    CUSTOMER = "customer", _("From the customer")
    STATUS = "status", _("Status change")
    ASSIGN = "assign", _("Assignment")
    ESCALATE = "escalate", _("Escalation")
    GOODWILL = "goodwill", _("Goodwill")


class CaseEntry(models.Model):
    """The case's history: notes (staff only), replies (sent to the customer), status changes, escalations."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="entries")
    kind = models.CharField(_("kind"), max_length=10, choices=EntryKind.choices)
    body = models.TextField(_("text"), blank=True)
    from_status = models.CharField(max_length=12, blank=True)
    to_status = models.CharField(max_length=12, blank=True)
    at = models.DateTimeField(_("at"))
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                               db_index=False)
    message_id = models.BigIntegerField(null=True, blank=True, help_text="the messaging.Message of a reply")

    class Meta:
        ordering = ["at", "id"]
        verbose_name = _("case entry")
        verbose_name_plural = _("case entries")

    @property
    def visible_to_customer(self) -> bool:
        return self.kind in (EntryKind.REPLY, EntryKind.CUSTOMER)


class GoodwillKind(models.TextChoices):
    COUPON = "coupon", _("Coupon")
    POINTS = "points", _("Points")


class Goodwill(models.Model):
    """A coupon or points given through loyalty to recover a complaint, with the reason."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="goodwill")
    kind = models.CharField(_("kind"), max_length=8, choices=GoodwillKind.choices)
    coupon_id = models.BigIntegerField(null=True, blank=True)
    coupon_name = models.CharField(_("coupon"), max_length=120, blank=True)
    ledger_entry_id = models.BigIntegerField(null=True, blank=True)
    points = models.BigIntegerField(_("points"), default=0)
    reason = models.CharField(_("reason"), max_length=300)
    at = models.DateTimeField(_("at"))
    given_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                 db_index=False)

    class Meta:
        ordering = ["at", "id"]
        verbose_name = _("goodwill")
        verbose_name_plural = _("goodwill")


class TraitCategory(models.TextChoices):
    ALLERGY = "allergy", _("Allergy / dietary")
    ROOM = "room", _("Room preference")
    SIZE = "size", _("Size (frame, clothing…)")
    FAVOURITE = "favourite", _("Favourite product")
    PREFERENCE = "preference", _("Preference")
    TRAIT = "trait", _("Trait / how to serve")
    OTHER = "other", _("Other")


class TraitSource(models.TextChoices):
    COUNTER = "counter", _("Said at the counter")
    PHONE = "phone", _("On the phone")
    OBSERVED = "observed", _("Observed by staff")
    CASE = "case", _("From a case")
    SURVEY = "survey", _("From a survey")
    WEB = "web", _("Web form")


class Trait(models.Model):
    """Something staff learned about the customer, with where it came from and when: shown first on the 360° page,
    usable in segments (``selectors.customer_ids_with_trait``) and messages (``selectors.trait_variables``)."""

    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="traits", db_index=False)
    category = models.CharField(_("category"), max_length=12, choices=TraitCategory.choices)
    value = models.CharField(_("what"), max_length=200)
    source = models.CharField(_("source"), max_length=10, choices=TraitSource.choices)
    unit = models.ForeignKey("core.BusinessUnit", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                    db_index=False)
    recorded_at = models.DateTimeField(_("recorded at"))
    removed_at = models.DateTimeField(_("removed at"), null=True, blank=True)

    class Meta:
        ordering = ["category", "-recorded_at", "-id"]
        indexes = [models.Index(fields=["customer", "category"]), models.Index(fields=["category", "value"])]
        verbose_name = _("trait")
        verbose_name_plural = _("traits")


class SurveyTrigger(models.TextChoices):
    AFTER_CASE = "after_case", _("After a closed case")
    AFTER_PURCHASE = "after_purchase", _("After a purchase")
    MANUAL = "manual", _("Sent by hand")


class ScoreKind(models.TextChoices):
    CSAT = "csat", _("Satisfaction (CSAT, 1–5)")
    NPS = "nps", _("Recommendation (NPS, 0–10)")


class Survey(models.Model):
    name = models.CharField(_("name"), max_length=120)
    score_kind = models.CharField(_("main question"), max_length=4, choices=ScoreKind.choices)
    question = models.CharField(_("question"), max_length=200, blank=True,
                                help_text=_("empty: the standard question of the kind, in the customer's language"))
    trigger = models.CharField(_("sent"), max_length=16, choices=SurveyTrigger.choices)
    unit = models.ForeignKey("core.BusinessUnit", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                             verbose_name=_("business unit"), help_text=_("empty: every business unit"))
    is_active = models.BooleanField(_("active"), default=True)
    valid_days = models.PositiveSmallIntegerField(_("link valid for (days)"), default=14)

    class Meta:
        ordering = ["name"]
        verbose_name = _("survey")
        verbose_name_plural = _("surveys")

    def __str__(self) -> str:
        return self.name


class QuestionKind(models.TextChoices):
    TEXT = "text", _("Free text")
    YES_NO = "yesno", _("Yes / no")
    CHOICE = "choice", _("One of a list")


class SurveyQuestion(models.Model):
    """A simple extra question after the score."""

    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="questions")
    position = models.PositiveSmallIntegerField(_("position"), default=1)
    text = models.CharField(_("question"), max_length=200)
    kind = models.CharField(_("kind"), max_length=8, choices=QuestionKind.choices, default=QuestionKind.TEXT)
    choices = models.CharField(_("choices"), max_length=300, blank=True, help_text=_("for a list: the choices, separated by |"))
    required = models.BooleanField(_("required"), default=False)

    class Meta:
        ordering = ["position", "id"]
        verbose_name = _("survey question")
        verbose_name_plural = _("survey questions")

    def choice_list(self) -> list[str]:
        return [c.strip() for c in self.choices.split("|") if c.strip()]


class SurveyInvitation(models.Model):
    """One survey sent to one customer about one case or purchase; answered at most once through its signed link."""

    survey = models.ForeignKey(Survey, on_delete=models.PROTECT, related_name="invitations")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="survey_invitations", db_index=False)
    unit = models.ForeignKey("core.BusinessUnit", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    staff = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                              db_index=False, help_text="who served: the case's assignee or the order's clerk")
    case = models.ForeignKey(Case, null=True, blank=True, on_delete=models.SET_NULL, related_name="invitations")
    order = models.ForeignKey("sales.Order", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False)
    about = models.CharField(max_length=40, help_text="case:ID, order:ID or manual:…; unique per survey and customer")
    sent_at = models.DateTimeField(_("sent at"))
    expires_at = models.DateTimeField(_("expires at"))
    message_id = models.BigIntegerField(null=True, blank=True)
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["survey", "customer", "about"], name="surveyinvitation_once")]
        indexes = [models.Index(fields=["customer"]), models.Index(fields=["sent_at"])]
        verbose_name = _("survey invitation")
        verbose_name_plural = _("survey invitations")


class SurveyResponse(models.Model):
    invitation = models.OneToOneField(SurveyInvitation, on_delete=models.CASCADE, related_name="response")
    # Copied from the invitation so that results group without joins.
    survey = models.ForeignKey(Survey, on_delete=models.PROTECT, related_name="responses", db_index=False)
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+", db_index=False)
    unit = models.ForeignKey("core.BusinessUnit", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False)
    staff = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                              db_index=False)
    score_kind = models.CharField(max_length=4, choices=ScoreKind.choices)
    score = models.PositiveSmallIntegerField(_("score"))
    comment = models.TextField(_("comment"), blank=True)
    answers = models.JSONField(_("answers"), default=dict, blank=True)
    answered_at = models.DateTimeField(_("answered at"))

    class Meta:
        ordering = ["-answered_at", "-id"]
        indexes = [models.Index(fields=["unit", "answered_at"]), models.Index(fields=["customer", "answered_at"]),
                   models.Index(fields=["score_kind", "answered_at"])]
        constraints = [models.CheckConstraint(condition=models.Q(score__lte=10), name="surveyresponse_score_range")]
        verbose_name = _("survey answer")
        verbose_name_plural = _("survey answers")

    @property
    def is_detractor(self) -> bool:
        return self.score <= 6 if self.score_kind == ScoreKind.NPS else self.score <= 2

    @property
    def is_promoter(self) -> bool:
        return self.score >= 9 if self.score_kind == ScoreKind.NPS else self.score >= 5
