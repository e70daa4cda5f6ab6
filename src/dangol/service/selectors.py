"""Reads of the service app, always through the user's business-unit scope (a case belongs to its unit), and the
selectors other apps use: traits for segments and message personalisation, promoters for the "advocate" stage."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F, Q, QuerySet
from django.db.models.functions import TruncMonth
from django.utils import timezone

from dangol.core.models import BusinessUnit, User
from dangol.core.selectors import units_for

from .models import (
    OPEN_STATUSES,
    Case,
    CaseStatus,
    CaseType,
    ScoreKind,
    SurveyResponse,
    Trait,
    TraitCategory,
)


def cases_for(user: User) -> QuerySet[Case]:
    if user.sees_all_units:
        return Case.objects.all()
    return Case.objects.filter(unit__in=units_for(user))


def with_list_data(qs: QuerySet[Case]) -> QuerySet[Case]:
    return qs.select_related("customer", "unit", "assignee", "escalated_to")


def case_for(*, user: User, case_id: int) -> Case:
    """Case.DoesNotExist outside the user's units, like a case that does not exist."""
    return cases_for(user).select_related("customer", "unit", "assignee", "escalated_to", "opened_by", "order", "product").get(pk=case_id)


def my_queue(user: User) -> QuerySet[Case]:
    """The open cases for this user: assigned to them, escalated to them, and the unassigned ones of their units
    (the unit's queue) — overdue first, then by due time."""
    mine = Q(assignee=user) | Q(escalated_to=user) | Q(assignee__isnull=True)
    return with_list_data(cases_for(user).filter(mine, status__in=OPEN_STATUSES)).order_by("due_at", "id")


def overdue_cases(user: User, *, now: dt.datetime | None = None) -> QuerySet[Case]:
    """Open cases past their due time, except those waiting for the customer (their clock is stopped)."""
    now = now or timezone.now()
    return with_list_data(cases_for(user).filter(status__in=[CaseStatus.NEW, CaseStatus.IN_PROGRESS], due_at__lt=now)).order_by("due_at", "id")


def filtered_cases(user: User, *, status: str = "", case_type: str = "", unit: BusinessUnit | None = None,
                   customer_id: int | None = None) -> QuerySet[Case]:
    qs = cases_for(user)
    if status == "open":
        qs = qs.filter(status__in=OPEN_STATUSES)
    elif status in CaseStatus.values:
        qs = qs.filter(status=status)
    if case_type in CaseType.values:
        qs = qs.filter(case_type=case_type)
    if unit is not None:
        qs = qs.filter(unit=unit)
    if customer_id is not None:
        qs = qs.filter(customer_id=customer_id)
    return with_list_data(qs).order_by("-opened_at", "-id")


def cases_of_customer(user: User, customer_id: int, limit: int = 5) -> list[Case]:
    return list(cases_for(user).filter(customer_id=customer_id).select_related("unit", "assignee").order_by("-opened_at", "-id")[:limit])


def entries_of(case: Case):
    return case.entries.select_related("author").order_by("at", "id")


def assignable_staff(unit: BusinessUnit) -> QuerySet[User]:
    return User.objects.filter(is_active=True).filter(Q(units=unit) | Q(role="admin")).distinct().order_by("username")


# --- knowledge -----------------------------------------------------------------------------------------------------------------

def traits_of(customer_id: int) -> list[Trait]:
    return list(Trait.objects.filter(customer_id=customer_id, removed_at__isnull=True)
                .select_related("unit", "recorded_by").order_by("category", "-recorded_at", "-id"))


def customer_ids_with_trait(*, category: str = "", contains: str = "") -> QuerySet:
    """For segments: the ids of customers with a current trait of ``category`` whose text contains ``contains``
    (either may be empty, not both)."""
    if not category and not contains:
        raise ValueError("give a category or a text")
    qs = Trait.objects.filter(removed_at__isnull=True)
    if category:
        qs = qs.filter(category=category)
    if contains:
        qs = qs.filter(value__icontains=contains.strip())
    return qs.values_list("customer_id", flat=True).distinct()


def trait_variables(customer_ids) -> dict[int, dict[str, str]]:
    """For message personalisation, per customer: ``traits`` (every current trait, "category: value; …"), and one
    variable per category that has values (``allergy``, ``room``, ``size``, ``favourite``…), comma-separated."""
    rows = (Trait.objects.filter(customer_id__in=list(customer_ids), removed_at__isnull=True)
            .order_by("customer_id", "category", "recorded_at", "id").values_list("customer_id", "category", "value"))
    grouped: dict[int, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for customer_id, category, value in rows:
        grouped[customer_id][category].append(value)
    result = {}
    for customer_id, by_category in grouped.items():
        variables = {category: ", ".join(values) for category, values in by_category.items()}
        variables["traits"] = "; ".join(f"{TraitCategory(c).label}: {', '.join(v)}" for c, v in by_category.items())
        result[customer_id] = variables
    return result


# --- surveys -------------------------------------------------------------------------------------------------------------------

PROMOTER = Q(score_kind=ScoreKind.NPS, score__gte=9) | Q(score_kind=ScoreKind.CSAT, score__gte=5)
DETRACTOR = Q(score_kind=ScoreKind.NPS, score__lte=6) | Q(score_kind=ScoreKind.CSAT, score__lte=2)


def promoter_customer_ids(*, since: dt.datetime, until: dt.datetime | None = None) -> QuerySet:
    """Customers who gave a top score (NPS 9–10 or CSAT 5) in [since, until): the "advocate" stage's signal."""
    qs = SurveyResponse.objects.filter(PROMOTER, answered_at__gte=since)
    if until is not None:
        qs = qs.filter(answered_at__lt=until)
    return qs.values_list("customer_id", flat=True).distinct()


def responses_for(user: User) -> QuerySet[SurveyResponse]:
    if user.sees_all_units:
        return SurveyResponse.objects.all()
    return SurveyResponse.objects.filter(unit__in=units_for(user))


@dataclass
class ScoreSummary:
    label: str
    answers: int = 0
    csat_answers: int = 0
    csat_avg: float | None = None
    csat_satisfied_pct: float | None = None  # 4–5 of 5
    nps_answers: int = 0
    nps: float | None = None  # % promoters − % detractors

    @property
    def nps_bar(self) -> float:
        """The NPS (−100…100) as a width from 0 to 100 for the bars."""
        return 0 if self.nps is None else (self.nps + 100) / 2


def _summaries(qs: QuerySet[SurveyResponse], key: str) -> dict:
    rows = qs.values(key).annotate(
        csat_n=Count("id", filter=Q(score_kind=ScoreKind.CSAT)),
        csat_avg=Avg("score", filter=Q(score_kind=ScoreKind.CSAT)),
        csat_ok=Count("id", filter=Q(score_kind=ScoreKind.CSAT, score__gte=4)),
        nps_n=Count("id", filter=Q(score_kind=ScoreKind.NPS)),
        nps_pro=Count("id", filter=Q(score_kind=ScoreKind.NPS, score__gte=9)),
        nps_det=Count("id", filter=Q(score_kind=ScoreKind.NPS, score__lte=6)),
    ).order_by(key)
    result = {}
    for row in rows:
        summary = ScoreSummary(label="", answers=row["csat_n"] + row["nps_n"], csat_answers=row["csat_n"], nps_answers=row["nps_n"])
        if row["csat_n"]:
            summary.csat_avg = round(float(row["csat_avg"]), 2)
            summary.csat_satisfied_pct = round(100 * row["csat_ok"] / row["csat_n"], 1)
        if row["nps_n"]:
            summary.nps = round(100 * (row["nps_pro"] - row["nps_det"]) / row["nps_n"], 1)
        result[row[key]] = summary
    return result


@dataclass
class SurveyResults:
    total: ScoreSummary
    by_month: list[ScoreSummary] = field(default_factory=list)
    by_unit: list[ScoreSummary] = field(default_factory=list)
    by_staff: list[ScoreSummary] = field(default_factory=list)
    comments: list[SurveyResponse] = field(default_factory=list)
    csat_distribution: list[tuple[int, int, float]] = field(default_factory=list)  # score, count, % of the largest
    nps_distribution: list[tuple[int, int, float]] = field(default_factory=list)


def _distribution(qs, kind: str, low: int, high: int) -> list[tuple[int, int, float]]:
    counts = dict(qs.filter(score_kind=kind).values_list("score").annotate(n=Count("id")).order_by())
    top = max(counts.values(), default=0)
    return [(score, counts.get(score, 0), round(100 * counts.get(score, 0) / top, 1) if top else 0) for score in range(low, high + 1)]


def survey_results(user: User, *, since: dt.datetime, until: dt.datetime, unit: BusinessUnit | None = None,
                   comments: int = 30) -> SurveyResults:
    qs = responses_for(user).filter(answered_at__gte=since, answered_at__lt=until)
    if unit is not None:
        qs = qs.filter(unit=unit)
    total = _total(qs)
    months = _summaries(qs.annotate(month=TruncMonth("answered_at", tzinfo=timezone.get_default_timezone())), "month")
    units = _summaries(qs, "unit")
    unit_names = dict(BusinessUnit.objects.filter(pk__in=[k for k in units if k]).values_list("id", "name"))
    staff = _summaries(qs, "staff")
    staff_names = dict(User.objects.filter(pk__in=[k for k in staff if k]).values_list("id", "username"))
    results = SurveyResults(total=total)
    for month, summary in sorted(months.items(), key=lambda item: item[0]):
        summary.label = timezone.localtime(month).strftime("%Y-%m") if timezone.is_aware(month) else month.strftime("%Y-%m")
        results.by_month.append(summary)
    for unit_id, summary in units.items():
        summary.label = unit_names.get(unit_id, "—")
        results.by_unit.append(summary)
    for staff_id, summary in staff.items():
        summary.label = staff_names.get(staff_id, "—")
        results.by_staff.append(summary)
    results.by_unit.sort(key=lambda s: s.label)
    results.by_staff.sort(key=lambda s: s.label)
    results.comments = list(qs.exclude(comment="").select_related("unit", "survey").order_by("-answered_at", "-id")[:comments])
    results.csat_distribution = _distribution(qs, ScoreKind.CSAT, 1, 5)
    results.nps_distribution = _distribution(qs, ScoreKind.NPS, 0, 10)
    return results


def _total(qs) -> ScoreSummary:
    summaries = _summaries(qs, "score_kind")
    total = ScoreSummary(label="")
    for kind, summary in summaries.items():
        total.answers += summary.answers
        if kind == ScoreKind.CSAT:
            total.csat_answers, total.csat_avg, total.csat_satisfied_pct = summary.csat_answers, summary.csat_avg, summary.csat_satisfied_pct
        else:
            total.nps_answers, total.nps = summary.nps_answers, summary.nps
    return total


# --- service KPIs ------------------------------------------------------------------------------------------------------------

@dataclass
class ServiceKpis:
    open_cases: int
    overdue: int
    escalated: int
    waiting: int
    opened_in_period: int
    resolved_in_period: int
    avg_resolution_hours: float | None
    within_sla_pct: float | None
    by_type: list[tuple[str, int, float]]  # label, open cases, % of the largest
    surveys: SurveyResults


def service_kpis(user: User, *, since: dt.datetime, until: dt.datetime, unit: BusinessUnit | None = None,
                 now: dt.datetime | None = None) -> ServiceKpis:
    now = now or timezone.now()
    qs = cases_for(user)
    if unit is not None:
        qs = qs.filter(unit=unit)
    live = qs.aggregate(
        open=Count("id", filter=Q(status__in=OPEN_STATUSES)),
        overdue=Count("id", filter=Q(status__in=[CaseStatus.NEW, CaseStatus.IN_PROGRESS], due_at__lt=now)),
        escalated=Count("id", filter=Q(status__in=OPEN_STATUSES, escalated_at__isnull=False)),
        waiting=Count("id", filter=Q(status=CaseStatus.WAITING)),
        opened=Count("id", filter=Q(opened_at__gte=since, opened_at__lt=until)),
    )
    resolved = qs.filter(resolved_at__gte=since, resolved_at__lt=until)
    took = ExpressionWrapper(F("resolved_at") - F("opened_at"), output_field=DurationField())
    stats = resolved.aggregate(n=Count("id"), avg=Avg(took), in_time=Count("id", filter=Q(resolved_at__lte=F("due_at"))))
    avg = stats["avg"]
    if avg is not None and not isinstance(avg, dt.timedelta):  # SQLite gives microseconds
        avg = dt.timedelta(microseconds=float(avg))
    by_type_counts = dict(qs.filter(status__in=OPEN_STATUSES).values_list("case_type").annotate(n=Count("id")).order_by())
    top = max(by_type_counts.values(), default=0)
    by_type = [(label, by_type_counts.get(value, 0), round(100 * by_type_counts.get(value, 0) / top, 1) if top else 0)
               for value, label in CaseType.choices]
    return ServiceKpis(
        open_cases=live["open"], overdue=live["overdue"], escalated=live["escalated"], waiting=live["waiting"],
        opened_in_period=live["opened"], resolved_in_period=stats["n"],
        avg_resolution_hours=round(avg.total_seconds() / 3600, 1) if avg is not None else None,
        within_sla_pct=round(100 * stats["in_time"] / stats["n"], 1) if stats["n"] else None,
        by_type=by_type, surveys=survey_results(user, since=since, until=until, unit=unit),
    )
