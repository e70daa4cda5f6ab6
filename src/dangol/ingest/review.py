"""A manager's decisions on the cleansing review queues: merge a duplicate pair or mark it "not the same person",
accept a flagged order into analytics or keep it out. Each decision is taken once, audited, and all-or-nothing."""
from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from dangol.core import audit
from dangol.core.audit import Actor
from dangol.customers.models import Customer
from dangol.sales.models import Order

from .merge import merge_customers
from .models import CandidateStatus, DuplicateCandidate, FlagStatus, Merge, OrderFlag
from .selectors import may_review


def _check_reviewer(actor: Actor) -> None:
    # Background jobs act as the system; a person must be a manager or an admin (the views check too).
    if actor.user is not None and not may_review(actor.user):
        raise PermissionDenied(_("Only managers and admins review duplicates and flagged orders."))


def _refuse_decided_candidate(candidate: DuplicateCandidate) -> None:
    if candidate.status != CandidateStatus.OPEN:
        raise ValidationError(
            _("This pair was already decided (%(decision)s); nothing was changed.") % {"decision": candidate.get_status_display()},
            code="already_decided",
        )


def _refuse_decided_flag(flag: OrderFlag) -> None:
    if flag.status != FlagStatus.OPEN:
        raise ValidationError(
            _("This flag was already decided (%(decision)s); nothing was changed.") % {"decision": flag.get_status_display()},
            code="already_decided",
        )


@transaction.atomic
def mark_not_same(*, actor: Actor, candidate: DuplicateCandidate) -> DuplicateCandidate:
    """The two records are different people: the pair leaves the queue and the next dedupe run does not ask again."""
    _check_reviewer(actor)
    candidate = DuplicateCandidate.objects.select_for_update().get(pk=candidate.pk)
    _refuse_decided_candidate(candidate)
    candidate.status = CandidateStatus.NOT_SAME
    candidate.decided_by = actor.user
    candidate.decided_at = timezone.now()
    candidate.save(update_fields=["status", "decided_by", "decided_at"])
    audit.record(actor=actor, action="duplicate.not_same", obj=candidate, fields=["status"])
    return candidate


@transaction.atomic
def merge_candidate(*, actor: Actor, candidate: DuplicateCandidate, survivor_id: int) -> Merge:
    """Merge the pair into the record ``survivor_id`` (one of the two); the other one is kept, hidden, so that the
    merge can be undone."""
    _check_reviewer(actor)
    candidate = DuplicateCandidate.objects.select_for_update().get(pk=candidate.pk)
    _refuse_decided_candidate(candidate)
    if type(survivor_id) is not int or survivor_id not in (candidate.left_id, candidate.right_id):
        raise ValidationError({"survivor_id": [_("Choose one of the two records of this pair to keep.")]})
    merged_id = candidate.right_id if survivor_id == candidate.left_id else candidate.left_id
    records = Customer.objects.in_bulk([survivor_id, merged_id])
    survivor, merged = records[survivor_id], records[merged_id]
    if survivor.merged_into_id or merged.merged_into_id:
        raise ValidationError(_("One of the two records has meanwhile been merged into another customer; "
                                "review that customer instead."), code="already_merged")
    merge = merge_customers(actor=actor, survivor=survivor, merged=merged, automatic=False,
                            match_probability=candidate.match_probability)
    # merge_customers marked the pair merged, with the reviewer and the time; the audit names the decision.
    audit.record(actor=actor, action="duplicate.merge", obj=candidate, fields=["status"])
    return merge


def _lock_flag_and_order(flag: OrderFlag) -> tuple[OrderFlag, Order]:
    # The order first, always: two managers deciding two flags of one order at once then take turns, and the
    # second one sees the first one's decision when it works out whether the order may join analytics.
    order_id = OrderFlag.objects.values_list("order_id", flat=True).get(pk=flag.pk)
    order = Order.objects.select_for_update().get(pk=order_id)
    return OrderFlag.objects.select_for_update().get(pk=flag.pk), order


@transaction.atomic
def accept_flag(*, actor: Actor, flag: OrderFlag) -> OrderFlag:
    """The suspicious value is real: the flag is accepted, and the order joins analytics once no flag of it is open
    or rejected."""
    _check_reviewer(actor)
    flag, order = _lock_flag_and_order(flag)
    _refuse_decided_flag(flag)
    flag.status = FlagStatus.ACCEPTED
    flag.reviewed_by = actor.user
    flag.reviewed_at = timezone.now()
    flag.save(update_fields=["status", "reviewed_by", "reviewed_at"])
    fields = ["status"]
    still_held = OrderFlag.objects.filter(order=order, status__in=[FlagStatus.OPEN, FlagStatus.REJECTED]).exists()
    if not still_held and order.needs_review:
        order.needs_review = False
        order.save(update_fields=["needs_review"])
        fields.append("order.needs_review")
    audit.record(actor=actor, action="order_flag.accept", obj=flag, fields=fields)
    return flag


@transaction.atomic
def reject_flag(*, actor: Actor, flag: OrderFlag) -> OrderFlag:
    """The value is wrong: the order stays recorded but out of analytics."""
    _check_reviewer(actor)
    flag, order = _lock_flag_and_order(flag)
    _refuse_decided_flag(flag)
    flag.status = FlagStatus.REJECTED
    flag.reviewed_by = actor.user
    flag.reviewed_at = timezone.now()
    flag.save(update_fields=["status", "reviewed_by", "reviewed_at"])
    fields = ["status"]
    if not order.needs_review:
        order.needs_review = True
        order.save(update_fields=["needs_review"])
        fields.append("order.needs_review")
    audit.record(actor=actor, action="order_flag.reject", obj=flag, fields=fields)
    return flag
