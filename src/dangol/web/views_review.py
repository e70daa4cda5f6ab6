"""Review pages of data cleansing, for managers and admins: the duplicate queue and its side-by-side page, the
merges with their undo, and the flagged imported orders. Decisions are POST-only; each works as a plain form
(redirect and a message) and through htmx (the changed row comes back in place, or the browser is sent on)."""
from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_GET, require_POST

from dangol.core import audit
from dangol.core.audit import Actor
from dangol.core.phones import display_phone
from dangol.customers.models import AnniversaryKind, ContactKind, Customer
from dangol.ingest import review as review_services
from dangol.ingest import selectors as review_selectors
from dangol.ingest.merge import choose_survivor, unmerge
from dangol.ingest.models import CandidateStatus, DuplicateCandidate, FlagStatus, Merge, OrderFlag

from .templatetags.dangol import won

PAGE_SIZE = 50


def reviewer_required(view):
    """Logged in, and a manager or an admin: staff get a 403 page."""
    @login_required
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not review_selectors.may_review(request.user):
            return render(request, "web/review/forbidden.html", status=403)
        return view(request, *args, **kwargs)

    return wrapped


def _page(request, queryset):
    return Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))


def _tabs(request, active: str, **known_counts) -> dict:
    """The review pages' tabs with the number of items waiting (a count already made by a page is reused)."""
    user = request.user
    duplicates = known_counts.get("duplicates")
    if duplicates is None:
        duplicates = review_selectors.open_candidates_for(user).count()
    orders = known_counts.get("orders")
    if orders is None:
        orders = review_selectors.flags_for(user).count()
    return {"active": active, "duplicates": duplicates, "orders": orders}


def _go(request, url: str):
    """After a decision: a redirect, or for htmx a client-side redirect (so the message shows on the next page)."""
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


def _error_messages(exc: ValidationError | PermissionDenied) -> list[str]:
    if isinstance(exc, PermissionDenied):
        return [str(exc) or _("Your role may not do this.")]
    return [str(message) for message in exc.messages]


# --- duplicate pairs ------------------------------------------------------------------------------------------------

@reviewer_required
@require_GET
def duplicate_queue(request):
    page = _page(request, review_selectors.duplicate_queue(request.user))
    return render(request, "web/review/duplicates.html", {
        "page": page, "tabs": _tabs(request, "duplicates", duplicates=page.paginator.count),
    })


def _candidate_or_404(request, candidate_id: int, *, detailed: bool = False) -> DuplicateCandidate:
    try:
        if detailed:
            return review_selectors.get_candidate_for(user=request.user, candidate_id=candidate_id)
        return review_selectors.candidates_in_scope(request.user).get(pk=candidate_id)
    except DuplicateCandidate.DoesNotExist:
        # A pair with a record outside the user's units looks the same as no pair at all.
        raise Http404


ROW_LABELS = {
    "name": gettext_lazy("Name"), "phone": gettext_lazy("Phones"), "email": gettext_lazy("Emails"),
    "birth_date": gettext_lazy("Birth date"), "address": gettext_lazy("Address"),
    "units": gettext_lazy("Business units"), "orders": gettext_lazy("Orders"), "joined": gettext_lazy("Joined"),
}
OTHER_FIELD_LABELS = {"gender": gettext_lazy("Gender")}  # compared by the linkage, not a row of its own
LEVEL_LABELS = {
    review_selectors.AGREE: gettext_lazy("agree"), review_selectors.CLOSE: gettext_lazy("close"),
    review_selectors.DIFFER: gettext_lazy("differ"), review_selectors.MISSING: gettext_lazy("missing"),
}


def _birth_date(customer: Customer) -> str:
    birthday = next((a for a in customer.anniversaries.all() if a.kind == AnniversaryKind.BIRTHDAY), None)
    if birthday is None:
        return ""
    text = f"{birthday.month:02d}-{birthday.day:02d}"
    if birthday.year:
        text = f"{birthday.year}-{text}"
    if birthday.is_lunar:
        text += " (" + (_("lunar, leap month") if birthday.is_leap_month else _("lunar")) + ")"
    return text


def _address(customer: Customer) -> str:
    address = next((a for a in customer.addresses.all() if a.is_primary), None)
    if address is None:
        return ""
    parts = [address.sido, address.sigungu, address.line, f"({address.postal_code})" if address.postal_code else ""]
    return " ".join(part for part in parts if part)


def _side_values(customer: Customer, stats) -> dict[str, list[str]]:
    contacts = list(customer.contacts.all())
    return {
        "name": [customer.name],
        "phone": [display_phone(c.value) for c in contacts if c.kind == ContactKind.PHONE],
        "email": [c.value for c in contacts if c.kind == ContactKind.EMAIL],
        "birth_date": [value] if (value := _birth_date(customer)) else [],
        "address": [value] if (value := _address(customer)) else [],
        "units": [m.unit.name for m in customer.memberships.all()],
        "orders": [ngettext("%(count)d order · %(total)s", "%(count)d orders · %(total)s", stats.count)
                   % {"count": stats.count, "total": won(stats.total)}],
        "joined": [customer.joined_at.date().isoformat()] if customer.joined_at else [],
    }


@reviewer_required
@require_GET
def candidate_detail(request, candidate_id: int):
    """Both records side by side with how each field compared; seeing them is an audited view of personal data."""
    candidate = _candidate_or_404(request, candidate_id, detailed=True)
    left, right = candidate.left, candidate.right
    stats = review_selectors.order_stats(user=request.user, customer_ids=[left.pk, right.pk])
    levels = review_selectors.compared_fields(candidate)
    left_values, right_values = _side_values(left, stats[left.pk]), _side_values(right, stats[right.pk])
    rows = [{"key": key, "label": label, "left": left_values[key], "right": right_values[key], "level": levels.get(key),
             "level_label": LEVEL_LABELS.get(levels.get(key), "")} for key, label in ROW_LABELS.items()]
    if not request.user.sees_all_units:
        rows[list(ROW_LABELS).index("orders")]["label"] = _("Orders in your business units")
    other_levels = [{"field": OTHER_FIELD_LABELS.get(key, key), "level": level, "level_label": LEVEL_LABELS[level]}
                    for key, level in levels.items() if key not in ROW_LABELS]
    is_open = candidate.status == CandidateStatus.OPEN
    suggested_id = None
    if is_open and not (left.merged_into_id or right.merged_into_id):
        suggested_id = choose_survivor(left, right)[0].pk
    actor = Actor.from_request(request)
    for customer in (left, right):
        audit.record(actor=actor, action="customer.view_contacts", obj=customer, fields=["address", "birthday", "email", "phone"])
    return render(request, "web/review/candidate.html", {
        "candidate": candidate, "left": left, "right": right, "rows": rows, "other_levels": other_levels,
        "is_open": is_open, "suggested_id": suggested_id,
        "tabs": _tabs(request, "duplicates"),
    })


def _parse_id(raw) -> int | None:
    raw = (raw or "").strip()
    return int(raw) if raw.isdigit() and len(raw) < 19 else None


@reviewer_required
@require_POST
def candidate_merge(request, candidate_id: int):
    candidate = _candidate_or_404(request, candidate_id)
    survivor_id = _parse_id(request.POST.get("survivor_id"))
    try:
        if survivor_id is None:
            raise ValidationError(_("Choose one of the two records of this pair to keep."))
        merge = review_services.merge_candidate(actor=Actor.from_request(request), candidate=candidate, survivor_id=survivor_id)
    except (ValidationError, PermissionDenied) as exc:
        for message in _error_messages(exc):
            messages.error(request, message)
        return _go(request, reverse("web:review_candidate", args=[candidate.pk]))
    messages.success(request, _("Merged customer #%(merged)d into #%(survivor)d. You can undo this under Merges.")
                     % {"merged": merge.merged_id, "survivor": merge.survivor_id})
    return _go(request, reverse("web:customer_detail", args=[merge.survivor_id]))


@reviewer_required
@require_POST
def candidate_not_same(request, candidate_id: int):
    candidate = _candidate_or_404(request, candidate_id)
    try:
        review_services.mark_not_same(actor=Actor.from_request(request), candidate=candidate)
    except (ValidationError, PermissionDenied) as exc:
        for message in _error_messages(exc):
            messages.error(request, message)
        return _go(request, reverse("web:review_candidate", args=[candidate.pk]))
    messages.success(request, _("Marked as two different people; this pair will not be suggested again."))
    return _go(request, reverse("web:review_duplicates"))


# --- merges ---------------------------------------------------------------------------------------------------------

@reviewer_required
@require_GET
def merge_list(request):
    page = _page(request, review_selectors.merge_list(request.user))
    return render(request, "web/review/merges.html", {"page": page, "tabs": _tabs(request, "merges")})


@reviewer_required
@require_POST
def merge_undo(request, merge_id: int):
    try:
        merge = review_selectors.merges_for(request.user).get(pk=merge_id)
    except Merge.DoesNotExist:
        raise Http404
    error = notice = None
    try:
        unmerge(actor=Actor.from_request(request), merge=merge)
    except (ValidationError, PermissionDenied) as exc:
        error = " ".join(_error_messages(exc))
    else:
        notice = _("Merge undone: customers #%(survivor)d and #%(merged)d are separate again.") % {
            "survivor": merge.survivor_id, "merged": merge.merged_id}
    if request.htmx:
        row = review_selectors.merge_list(request.user).get(pk=merge_id)
        return render(request, "web/review/partials/merge_row.html", {"m": row, "notice": notice, "error": error})
    if error:
        messages.error(request, error)
    else:
        messages.success(request, notice)
    return redirect("web:review_merges")


# --- flagged orders -------------------------------------------------------------------------------------------------

def _status_param(request) -> str:
    status = request.GET.get("status") or request.POST.get("status") or FlagStatus.OPEN
    return status if status in FlagStatus.values else FlagStatus.OPEN


@reviewer_required
@require_GET
def flagged_orders(request):
    status = _status_param(request)
    page = _page(request, review_selectors.flags_for(request.user, status=status))
    counts = review_selectors.flag_counts(request.user)
    return render(request, "web/review/orders.html", {
        "page": page, "status": status, "statuses": [(value, label, counts[value]) for value, label in FlagStatus.choices],
        "tabs": _tabs(request, "orders", orders=counts[FlagStatus.OPEN]),
    })


def _decide_flag(request, flag_id: int, decide):
    flags = review_selectors.flags_for(request.user, status=None)
    try:
        flag = flags.get(pk=flag_id)
    except OrderFlag.DoesNotExist:
        raise Http404
    error = notice = None
    try:
        decided = decide(actor=Actor.from_request(request), flag=flag)
    except (ValidationError, PermissionDenied) as exc:
        error = " ".join(_error_messages(exc))
    else:
        flag = flags.get(pk=flag_id)  # the order's state after the decision
        if decided.status == FlagStatus.REJECTED:
            notice = _("Kept out: order #%(order)d stays recorded but out of analytics.") % {"order": flag.order_id}
        elif flag.order.needs_review:
            notice = _("Accepted. Order #%(order)d has other flags and stays out of analytics until they are accepted.") % {
                "order": flag.order_id}
        else:
            notice = _("Accepted: order #%(order)d now counts in analytics.") % {"order": flag.order_id}
    if request.htmx:
        return render(request, "web/review/partials/flag_row.html", {"flag": flag, "notice": notice, "error": error})
    if error:
        messages.error(request, error)
    else:
        messages.success(request, notice)
    return redirect(reverse("web:review_orders") + f"?status={_status_param(request)}")


@reviewer_required
@require_POST
def flag_accept(request, flag_id: int):
    return _decide_flag(request, flag_id, review_services.accept_flag)


@reviewer_required
@require_POST
def flag_reject(request, flag_id: int):
    return _decide_flag(request, flag_id, review_services.reject_flag)
