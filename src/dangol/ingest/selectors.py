"""Reads of the cleansing review queues (duplicate pairs, merges, flagged orders), scoped by the user's units.

Who reviews: admins review everything; a manager reviews what lies inside their business units (a pair only when
both records are theirs, since merging moves one unit's history onto another's record); staff review nothing.
"""
from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet, Sum

from dangol.core.models import Role, User
from dangol.core.selectors import units_for
from dangol.customers.models import ContactPoint, Membership
from dangol.customers.selectors import customers_for
from dangol.sales.models import OrderKind
from dangol.sales.selectors import orders_for

from .models import CandidateStatus, DuplicateCandidate, FlagStatus, ImportJob, Merge, OrderFlag


def may_review(user: User) -> bool:
    """Managers and admins decide duplicates and flagged orders; staff at the counter do not."""
    return bool(user.is_authenticated and (user.sees_all_units or user.role == Role.MANAGER))


def _known_in_units(field: str, units) -> Q:
    """The customer in ``field`` is a member of one of the units, or was merged into one who is (a merged
    record's memberships may have moved to its survivor)."""
    return Q(Exists(Membership.objects.filter(customer=OuterRef(field), unit__in=units))) | Q(
        Exists(Membership.objects.filter(customer=OuterRef(f"{field}__merged_into"), unit__in=units)))


def _with_sides(qs: QuerySet[DuplicateCandidate]) -> QuerySet[DuplicateCandidate]:
    """What a queue row shows of both records (masked name, primary phone, units) in a fixed number of queries."""
    lookups = []
    for side in ("left", "right"):
        lookups += [
            Prefetch(f"{side}__contacts", queryset=ContactPoint.objects.filter(is_primary=True), to_attr="primary_contacts"),
            Prefetch(f"{side}__memberships", queryset=Membership.objects.select_related("unit").order_by("unit__name")),
        ]
    return qs.select_related("left__home_unit", "right__home_unit").prefetch_related(*lookups)


# --- duplicate pairs ------------------------------------------------------------------------------------------------

def open_candidates_for(user: User) -> QuerySet[DuplicateCandidate]:
    """The pairs waiting for this user's decision, most probable first. Pairs where either record has meanwhile
    been merged into someone else are left out: that record is no longer a customer of its own."""
    if not may_review(user):
        return DuplicateCandidate.objects.none()
    qs = DuplicateCandidate.objects.filter(status=CandidateStatus.OPEN, left__merged_into__isnull=True,
                                           right__merged_into__isnull=True)
    if not user.sees_all_units:
        visible = customers_for(user).values("pk")
        qs = qs.filter(left__in=visible, right__in=visible)
    return qs.order_by("-match_probability", "id")


def duplicate_queue(user: User) -> QuerySet[DuplicateCandidate]:
    """open_candidates_for with what the list shows."""
    return _with_sides(open_candidates_for(user))


def candidates_in_scope(user: User) -> QuerySet[DuplicateCandidate]:
    """Every pair, open or decided, that the user may look at: a decided pair stays reachable so that a second
    decision gets a clear answer instead of a missing page."""
    if not may_review(user):
        return DuplicateCandidate.objects.none()
    qs = DuplicateCandidate.objects.all()
    if not user.sees_all_units:
        units = units_for(user)
        qs = qs.filter(_known_in_units("left", units), _known_in_units("right", units))
    return qs


def get_candidate_for(*, user: User, candidate_id: int) -> DuplicateCandidate:
    """The pair with both records ready for the side-by-side page, or DuplicateCandidate.DoesNotExist."""
    lookups = []
    for side in ("left", "right"):
        lookups += [f"{side}__contacts", f"{side}__addresses", f"{side}__anniversaries",
                    Prefetch(f"{side}__memberships", queryset=Membership.objects.select_related("unit").order_by("unit__name"))]
    return candidates_in_scope(user).select_related(
        "left__home_unit", "left__merged_into", "right__home_unit", "right__merged_into", "decided_by",
    ).prefetch_related(*lookups).get(pk=candidate_id)


@dataclass
class OrderStats:
    count: int = 0
    total: int = 0


def order_stats(*, user: User, customer_ids: list[int]) -> dict[int, OrderStats]:
    """Number of sales and net total (refunds subtracted) per customer, over the orders of the user's units."""
    rows = (orders_for(user).filter(customer_id__in=customer_ids).order_by().values("customer_id")
            .annotate(n=Count("id", filter=Q(kind=OrderKind.SALE)), total=Sum("total")))
    stats = {customer_id: OrderStats() for customer_id in customer_ids}
    for row in rows:
        stats[row["customer_id"]] = OrderStats(count=row["n"], total=row["total"] or 0)
    return stats


# How a field compared, whatever words the linkage used for it (ingest.dedupe says exact / close / different /
# missing): agree, close, differ, or missing (a side had none).
AGREE, CLOSE, DIFFER, MISSING = "agree", "close", "differ", "missing"
_LEVEL_WORDS = [
    (MISSING, ("null", "missing", "unknown", "absent", "empty", "none")),
    (AGREE, ("exact", "agree", "same", "match", "equal")),
    (CLOSE, ("close", "similar", "fuzzy", "partial", "distance", "jaro", "levenshtein", "within", "near", "transpos")),
    (DIFFER, ("differ", "disagree", "mismatch", "other", "no match", "not")),
]
# The side-by-side rows and the keys the linkage may give each of them.
FIELD_ALIASES = {
    "name": ("name", "full_name", "name_romanized", "name_roman"),
    "phone": ("phone", "phones", "mobile", "phone_e164", "phone_last4"),
    "email": ("email", "emails"),
    "birth_date": ("birth_date", "birthday", "birth", "dob", "date_of_birth", "birth_year"),
    "address": ("address", "region", "sido", "sigungu", "postal_code", "address_line"),
}


def agreement_level(value) -> str:
    """One comparison result as agree / close / differ / missing."""
    if isinstance(value, dict):
        for key in ("level", "status", "result", "label", "value"):
            if key in value:
                return agreement_level(value[key])
        return MISSING
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return AGREE if value else DIFFER
    if isinstance(value, (int, float)):
        if value < 0:
            return MISSING
        if value >= 1:
            return AGREE
        return CLOSE if value > 0 else DIFFER
    text = str(value).strip().lower().replace("_", " ").replace("-", " ")
    if not text:
        return MISSING
    if any(word in text for word in _LEVEL_WORDS[0][1]):
        return MISSING
    # "not the same" and "no match" say differ although they contain "same" and "match": check them first.
    if text.startswith(("not ", "no ", "dis", "mis", "all other")):
        return DIFFER
    for level, words in _LEVEL_WORDS[1:]:
        if any(word in text for word in words):
            return level
    return DIFFER


def compared_fields(candidate: DuplicateCandidate) -> dict[str, str]:
    """The side-by-side row → how it compared; rows the linkage did not compare are absent. Keys of the linkage
    that fit no row come back under their own name."""
    agreements = candidate.agreements if isinstance(candidate.agreements, dict) else {}
    result: dict[str, str] = {}
    used = set()
    rank = {AGREE: 0, CLOSE: 1, DIFFER: 2, MISSING: 3}
    for row, aliases in FIELD_ALIASES.items():
        levels = [agreement_level(agreements[key]) for key in aliases if key in agreements]
        used.update(key for key in aliases if key in agreements)
        if levels:
            result[row] = min(levels, key=rank.__getitem__)  # the best evidence of the row's keys
    for key, value in agreements.items():
        if key not in used:
            result[str(key)] = agreement_level(value)
    return result


# --- merges ---------------------------------------------------------------------------------------------------------

def merges_for(user: User) -> QuerySet[Merge]:
    """Merges, newest first, undone ones included: a manager's when either record belongs to their units."""
    if not may_review(user):
        return Merge.objects.none()
    qs = Merge.objects.all()
    if not user.sees_all_units:
        units = units_for(user)
        qs = qs.filter(_known_in_units("survivor", units) | _known_in_units("merged", units))
    return qs.order_by("-at", "-id")


def merge_list(user: User) -> QuerySet[Merge]:
    return merges_for(user).select_related("survivor", "merged", "by", "undone_by")


# --- flagged orders -------------------------------------------------------------------------------------------------

def flags_for(user: User, status: str | None = FlagStatus.OPEN) -> QuerySet[OrderFlag]:
    """Outlier flags on orders of the user's units, with what the review list shows; all statuses when None."""
    if not may_review(user):
        return OrderFlag.objects.none()
    qs = OrderFlag.objects.all()
    if not user.sees_all_units:
        qs = qs.filter(order__unit__in=units_for(user))
    if status is not None:
        qs = qs.filter(status=status)
    return qs.select_related("order__unit", "order__customer", "reviewed_by").order_by("-order__ordered_at", "-id")


def flag_counts(user: User) -> dict[str, int]:
    """How many flags of the user's units are in each status (the tabs of the review page)."""
    counts = dict(flags_for(user, status=None).order_by().values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    return {status: counts.get(status, 0) for status in FlagStatus.values}


def import_jobs_for(user: User) -> QuerySet[ImportJob]:
    """Import jobs of the user's units, newest first (managers and admins; staff import nothing)."""
    if not may_review(user):
        return ImportJob.objects.none()
    jobs = ImportJob.objects.all()
    if not user.sees_all_units:
        jobs = jobs.filter(unit__in=units_for(user))
    return jobs.order_by("-created_at", "-id")
