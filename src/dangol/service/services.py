"""Writes of the service app: cases and their workflow, SLA and escalation, goodwill through loyalty, the public
request form, staff knowledge (traits) and surveys.

Every function validates first (django ValidationError keyed by field; PermissionDenied for a unit or a role the
actor may not act for), runs in one transaction and is audited. Messages to customers (case confirmations, replies,
survey invitations) go out only through ``dangol.messaging.services.send`` as kind "info".

Events emitted (``dangol.core.events``), inside the writing transaction:
- ``case_closed(case)`` — a case reached "closed" (the survey invitation has already been sent when one applies).
- ``survey_answered(response)`` — a survey answer was recorded (a detractor's follow-up case already opened).
"""
from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from dangol.core import audit, events
from dangol.core.audit import Actor
from dangol.core.models import BusinessUnit, Role, User
from dangol.core.phones import normalize_phone
from dangol.customers import services as customer_services
from dangol.customers.models import ContactKind, ContactPoint, Customer, Interaction, InteractionKind
from dangol.sales.models import Order, Product

from .models import (
    OPEN_STATUSES,
    Case,
    CaseChannel,
    CaseEntry,
    CaseStatus,
    CaseType,
    EntryKind,
    Goodwill,
    GoodwillKind,
    Priority,
    ScoreKind,
    SlaRule,
    Survey,
    SurveyInvitation,
    SurveyQuestion,
    SurveyResponse,
    SurveyTrigger,
    Trait,
    TraitCategory,
    TraitSource,
)

logger = logging.getLogger("dangol.service")

# Hours to resolve, per type and priority, when no SlaRule row says otherwise (the migration writes these rows).
DEFAULT_SLA_HOURS = {
    (CaseType.COMPLAINT, Priority.URGENT): 4, (CaseType.COMPLAINT, Priority.HIGH): 8,
    (CaseType.COMPLAINT, Priority.NORMAL): 24, (CaseType.COMPLAINT, Priority.LOW): 72,
    (CaseType.AFTER_SALES, Priority.URGENT): 24, (CaseType.AFTER_SALES, Priority.HIGH): 48,
    (CaseType.AFTER_SALES, Priority.NORMAL): 72, (CaseType.AFTER_SALES, Priority.LOW): 120,
    (CaseType.INQUIRY, Priority.URGENT): 4, (CaseType.INQUIRY, Priority.HIGH): 8,
    (CaseType.INQUIRY, Priority.NORMAL): 24, (CaseType.INQUIRY, Priority.LOW): 48,
    (CaseType.REQUEST, Priority.URGENT): 8, (CaseType.REQUEST, Priority.HIGH): 24,
    (CaseType.REQUEST, Priority.NORMAL): 48, (CaseType.REQUEST, Priority.LOW): 96,
}

# The workflow. Leaving "resolved" or "closed" for "in progress" is a reopen.
TRANSITIONS = {
    CaseStatus.NEW: {CaseStatus.IN_PROGRESS, CaseStatus.WAITING, CaseStatus.RESOLVED},
    CaseStatus.IN_PROGRESS: {CaseStatus.WAITING, CaseStatus.RESOLVED},
    CaseStatus.WAITING: {CaseStatus.IN_PROGRESS, CaseStatus.RESOLVED},
    CaseStatus.RESOLVED: {CaseStatus.CLOSED, CaseStatus.IN_PROGRESS},
    CaseStatus.CLOSED: {CaseStatus.IN_PROGRESS},
}

MAX_TEXT = 5000
SURVEY_SALT = "dangol.service.survey"
TIMELINE_REF = "service.case"


# --- helpers ---------------------------------------------------------------------------------------------------------------

def _clean_text(value, *, field: str, max_length: int, required: bool, errors: dict, message: str = "") -> str:
    text = (value or "").strip() if isinstance(value, str) or value is None else str(value).strip()
    if required and not text:
        errors[field] = [message or _("This field is required.")]
    elif len(text) > max_length:
        errors[field] = [_("At most %(count)s characters.") % {"count": f"{max_length:,}"}]
    return text


def _one_line(text: str) -> str:
    return " ".join((text or "").split())


def may_work_at(user: User | None, unit: BusinessUnit) -> bool:
    """Staff and managers work on the cases of their own units; admins everywhere; the system (no user) too."""
    if user is None:
        return True
    return user.sees_all_units or user.units.filter(pk=unit.pk, is_active=True).exists()


def _check_unit(actor: Actor, unit: BusinessUnit) -> None:
    if not may_work_at(actor.user, unit):
        raise PermissionDenied(_("You cannot work with business unit “%(unit)s”.") % {"unit": unit.name})


def is_manager(user: User | None) -> bool:
    return user is not None and (user.sees_all_units or user.role == Role.MANAGER)


def live_customer(customer: Customer) -> Customer:
    fresh = Customer.objects.filter(pk=customer.pk).values("merged_into_id", "erased_at").first()
    if fresh is None or fresh["merged_into_id"] or fresh["erased_at"]:
        raise ValidationError({"customer": [_("This customer record was merged or erased; open the current one.")]})
    return customer


def _timeline(case: Case, summary: str, *, at: dt.datetime, user=None) -> None:
    Interaction.objects.create(customer_id=case.customer_id, kind=InteractionKind.CASE, occurred_at=at, unit_id=case.unit_id,
                               channel=case.channel, summary=summary[:300], ref_type=TIMELINE_REF, ref_id=case.pk,
                               created_by=user)


def _entry(case: Case, kind: str, *, at: dt.datetime, actor: Actor, body: str = "", from_status: str = "",
           to_status: str = "") -> CaseEntry:
    return CaseEntry.objects.create(case=case, kind=kind, body=body, at=at, author=actor.user, from_status=from_status,
                                    to_status=to_status)


def case_label(case: Case) -> str:
    return f"{CaseType(case.case_type).label} #{case.pk}"


# --- messages ----------------------------------------------------------------------------------------------------------------

def _channel_for(customer_id: int) -> str | None:
    kinds = set(ContactPoint.objects.filter(customer_id=customer_id, is_primary=True).values_list("kind", flat=True))
    if ContactKind.PHONE in kinds:
        return settings.DANGOL_SERVICE_MESSAGE_CHANNEL
    if ContactKind.EMAIL in kinds:
        return "email"
    return None


def send_info(*, customer_id: int, body: str, source: str, occurrence: str, unit: BusinessUnit | None, actor: Actor | None,
              subject: str = "", variables: dict | None = None, not_before: dt.datetime | None = None):
    """One informational message through the messaging app (its compliance check, its outbox). None when the
    customer has no contact to reach."""
    from dangol.messaging import services as messaging

    channel = _channel_for(customer_id)
    if channel is None:
        return None
    customer = Customer.objects.get(pk=customer_id)
    return messaging.send(customer=customer, channel=channel, kind="info", source=source, occurrence=occurrence, body=body,
                          subject=subject, unit=unit, variables=variables, actor=actor,
                          not_before=not_before)


def _customer_language():
    return translation.override(settings.LANGUAGE_CODE)


def public_url(path: str) -> str:
    return settings.DANGOL_PUBLIC_URL.rstrip("/") + path


# --- SLA ---------------------------------------------------------------------------------------------------------------------

def sla_hours(case_type: str, priority: str) -> int:
    rule = SlaRule.objects.filter(case_type=case_type, priority=priority).values_list("resolve_hours", flat=True).first()
    return rule or DEFAULT_SLA_HOURS.get((case_type, priority), 48)


def due_time(case_type: str, priority: str, start: dt.datetime) -> dt.datetime:
    return start + dt.timedelta(hours=sla_hours(case_type, priority))


# --- cases -------------------------------------------------------------------------------------------------------------------

def _validate_choices(errors: dict, **values) -> None:
    choices = {"case_type": CaseType, "channel": CaseChannel, "priority": Priority}
    messages = {"case_type": _("Choose the type of case."), "channel": _("Choose how the customer reached us."),
                "priority": _("Choose a priority.")}
    for field, value in values.items():
        if value not in choices[field].values:
            errors[field] = [messages[field]]


def _check_assignee(assignee: User | None, unit: BusinessUnit) -> None:
    if assignee is None:
        return
    if not assignee.is_active or not (assignee.sees_all_units or assignee.units.filter(pk=unit.pk).exists()):
        raise ValidationError({"assignee": [_("%(user)s does not work at %(unit)s.") % {"user": assignee.get_username(), "unit": unit.name}]})


@transaction.atomic
def open_case(*, actor: Actor, customer: Customer, unit: BusinessUnit, case_type: str, channel: str, subject: str = "",
              description: str = "", priority: str = Priority.NORMAL, order: Order | None = None, product: Product | None = None,
              assignee: User | None = None, now: dt.datetime | None = None, follow_up_of: SurveyResponse | None = None,
              confirm: bool = True) -> Case:
    """Log a case for a customer at a unit. Without a subject the first line of the description is used. The due
    time comes from the SLA rule of its type and priority; the customer gets a confirmation message (``confirm``)."""
    errors: dict[str, list[str]] = {}
    _validate_choices(errors, case_type=case_type, channel=channel, priority=priority)
    description = _clean_text(description, field="description", max_length=MAX_TEXT, required=False, errors=errors)
    subject = _one_line(subject) or _one_line(description.splitlines()[0] if description else "")
    if not subject:
        errors["subject"] = [_("Say in a few words what the case is about.")]
    elif len(subject) > 200:
        subject = subject[:199] + "…"
    if order is not None and order.customer_id != customer.pk:
        errors["order"] = [_("This order is not the customer's.")]
    if errors:
        raise ValidationError(errors)
    _check_unit(actor, unit)
    live_customer(customer)
    _check_assignee(assignee, unit)
    now = now or timezone.now()
    case = Case.objects.create(
        customer=customer, unit=unit, case_type=case_type, channel=channel, priority=priority, subject=subject,
        description=description, order=order, product=product, assignee=assignee, opened_at=now, opened_by=actor.user,
        due_at=due_time(case_type, priority, now), follow_up_of=follow_up_of,
    )
    customer_services.ensure_membership(customer_id=customer.pk, unit_id=unit.pk, at=now, source="service")
    if assignee is not None:
        _entry(case, EntryKind.ASSIGN, at=now, actor=actor, body=assignee.get_username())
    _timeline(case, _("%(case)s opened: %(subject)s") % {"case": case_label(case), "subject": subject}, at=now, user=actor.user)
    audit.record(actor=actor, action="service.case_open", obj=customer, fields=["cases"])
    if confirm:
        with _customer_language():
            body = _("%(unit)s: we have received your %(type)s (no. %(number)s) and will answer by %(due)s.") % {
                "unit": unit.name, "type": CaseType(case_type).label.lower(), "number": case.pk,
                "due": timezone.localtime(case.due_at).strftime("%Y-%m-%d %H:%M")}
        send_info(customer_id=customer.pk, body=body, source=f"service:case:{case.pk}", occurrence="opened", unit=unit,
                  actor=actor)
    return case


def _lock(case: Case) -> Case:
    return Case.objects.select_for_update().select_related("unit", "customer").get(pk=case.pk)


@transaction.atomic
def change_status(*, actor: Actor, case: Case, to_status: str, note: str = "", resolution: str = "",
                  now: dt.datetime | None = None) -> Case:
    """Move a case along the workflow; anything else is refused with the moves that are possible.

    Waiting for the customer stops the SLA clock (the due time moves by the time waited). Resolving records the
    resolution; closing sends the satisfaction survey; going back to "in progress" from resolved or closed reopens
    the case with a fresh SLA window."""
    errors: dict[str, list[str]] = {}
    note = _clean_text(note, field="note", max_length=MAX_TEXT, required=False, errors=errors)
    resolution = _clean_text(resolution, field="resolution", max_length=MAX_TEXT, required=False, errors=errors)
    if to_status not in CaseStatus.values:
        errors["status"] = [_("Unknown status.")]
    if errors:
        raise ValidationError(errors)
    case = _lock(case)
    _check_unit(actor, case.unit)
    current = CaseStatus(case.status)
    allowed = TRANSITIONS[current]
    if to_status not in allowed:
        raise ValidationError({"status": [_("A case that is “%(current)s” cannot become “%(target)s”; it can become: %(allowed)s.") % {
            "current": current.label, "target": CaseStatus(to_status).label,
            "allowed": ", ".join(str(CaseStatus(s).label) for s in sorted(allowed))}]}, code="invalid_transition")
    now = now or timezone.now()
    fields = ["status", "updated_at"]
    if case.status == CaseStatus.WAITING and case.waiting_since:
        case.due_at += max(now - case.waiting_since, dt.timedelta(0))  # the clock stood still while we waited
        case.waiting_since = None
        fields += ["due_at", "waiting_since"]
    reopened = current in (CaseStatus.RESOLVED, CaseStatus.CLOSED) and to_status == CaseStatus.IN_PROGRESS
    if to_status == CaseStatus.WAITING:
        case.waiting_since = now
        fields.append("waiting_since")
    if to_status != CaseStatus.NEW and case.first_response_at is None:
        case.first_response_at = now
        fields.append("first_response_at")
    if to_status == CaseStatus.RESOLVED:
        case.resolved_at = now
        if resolution:
            case.resolution = resolution
        fields += ["resolved_at", "resolution"]
    if to_status == CaseStatus.CLOSED:
        case.closed_at = now
        fields.append("closed_at")
    if reopened:
        case.reopen_count += 1
        case.resolved_at = case.closed_at = case.escalated_at = None
        case.due_at = due_time(case.case_type, case.priority, now)
        fields += ["reopen_count", "resolved_at", "closed_at", "escalated_at", "due_at"]
    case.status = to_status
    case.save(update_fields=sorted(set(fields)))
    _entry(case, EntryKind.STATUS, at=now, actor=actor, body=resolution if to_status == CaseStatus.RESOLVED and not note else note,
           from_status=current.value, to_status=to_status)
    if reopened:
        _timeline(case, _("%(case)s reopened") % {"case": case_label(case)}, at=now, user=actor.user)
    elif to_status in (CaseStatus.RESOLVED, CaseStatus.CLOSED):
        _timeline(case, _("%(case)s %(status)s") % {"case": case_label(case), "status": CaseStatus(to_status).label.lower()},
                  at=now, user=actor.user)
    audit.record(actor=actor, action="service.case_status", obj=case, fields=["status"])
    if to_status == CaseStatus.CLOSED:
        if settings.DANGOL_SERVICE_SURVEY_AFTER_CASE:
            invite_after_case(case=case, actor=actor, now=now)
        events.emit("case_closed", case=case)
    return case


def reopen(*, actor: Actor, case: Case, note: str = "", now: dt.datetime | None = None) -> Case:
    return change_status(actor=actor, case=case, to_status=CaseStatus.IN_PROGRESS, note=note, now=now)


@transaction.atomic
def assign(*, actor: Actor, case: Case, assignee: User | None, now: dt.datetime | None = None) -> Case:
    """Give the case to a colleague of its unit, or back to the unit's queue (``assignee=None``)."""
    case = _lock(case)
    _check_unit(actor, case.unit)
    _check_assignee(assignee, case.unit)
    if case.assignee_id == (assignee.pk if assignee else None):
        return case
    now = now or timezone.now()
    case.assignee = assignee
    case.save(update_fields=["assignee", "updated_at"])
    _entry(case, EntryKind.ASSIGN, at=now, actor=actor, body=assignee.get_username() if assignee else "")
    audit.record(actor=actor, action="service.case_assign", obj=case, fields=["assignee"])
    return case


@transaction.atomic
def set_priority(*, actor: Actor, case: Case, priority: str, now: dt.datetime | None = None) -> Case:
    """A new priority recomputes the due time from the case's opening (less any time spent waiting is not tracked
    twice: the current due time moves by the difference between the two SLA windows)."""
    if priority not in Priority.values:
        raise ValidationError({"priority": [_("Choose a priority.")]})
    case = _lock(case)
    _check_unit(actor, case.unit)
    if case.priority == priority:
        return case
    now = now or timezone.now()
    old_hours, new_hours = sla_hours(case.case_type, case.priority), sla_hours(case.case_type, priority)
    case.due_at += dt.timedelta(hours=new_hours - old_hours)
    case.priority = priority
    case.save(update_fields=["priority", "due_at", "updated_at"])
    _entry(case, EntryKind.NOTE, at=now, actor=actor, body=_("Priority: %(priority)s") % {"priority": Priority(priority).label})
    audit.record(actor=actor, action="service.case_priority", obj=case, fields=["priority"])
    return case


@transaction.atomic
def add_entry(*, actor: Actor, case: Case, kind: str, body: str, now: dt.datetime | None = None) -> CaseEntry:
    """An internal note (staff only) or a reply, which is sent to the customer as a message."""
    errors: dict[str, list[str]] = {}
    if kind not in (EntryKind.NOTE, EntryKind.REPLY):
        errors["kind"] = [_("Write an internal note or a reply to the customer.")]
    body = _clean_text(body, field="body", max_length=MAX_TEXT if kind == EntryKind.NOTE else 1000, required=True,
                       errors=errors, message=_("Write something first."))
    if errors:
        raise ValidationError(errors)
    case = _lock(case)
    _check_unit(actor, case.unit)
    if case.status == CaseStatus.CLOSED and kind == EntryKind.REPLY:
        raise ValidationError({"kind": [_("The case is closed: reopen it to reply.")]})
    now = now or timezone.now()
    entry = _entry(case, kind, at=now, actor=actor, body=body)
    if kind == EntryKind.REPLY:
        if case.first_response_at is None:
            case.first_response_at = now
            case.save(update_fields=["first_response_at", "updated_at"])
        message = send_info(customer_id=case.customer_id, body=f"[{case.unit.name}] {body}", source=f"service:case:{case.pk}",
                            occurrence=f"reply:{entry.pk}", unit=case.unit, actor=actor)
        if message is not None:
            entry.message_id = message.pk
            entry.save(update_fields=["message_id"])
    audit.record(actor=actor, action=f"service.case_{kind}", obj=case, fields=["entries"])
    return entry


# --- escalation --------------------------------------------------------------------------------------------------------------

def manager_of(unit: BusinessUnit) -> User | None:
    return (User.objects.filter(is_active=True, role=Role.MANAGER, units=unit).order_by("id").first()
            or User.objects.filter(is_active=True, role=Role.ADMIN).order_by("id").first())


def escalate_overdue(*, now: dt.datetime | None = None) -> int:
    """Hand every overdue open case (not waiting for the customer) to a manager of its unit, once: the claim is a
    conditional UPDATE on ``escalated_at IS NULL``, so two schedulers or a rerun never escalate a case twice."""
    now = now or timezone.now()
    escalated = 0
    candidates = list(Case.objects.filter(status__in=[CaseStatus.NEW, CaseStatus.IN_PROGRESS], due_at__lt=now,
                                          escalated_at__isnull=True).select_related("unit").order_by("due_at")[:1000])
    managers: dict[int, User | None] = {}
    system = Actor.system("schedule")
    for case in candidates:
        if case.unit_id not in managers:
            managers[case.unit_id] = manager_of(case.unit)
        manager = managers[case.unit_id]
        with transaction.atomic():
            claimed = Case.objects.filter(pk=case.pk, escalated_at__isnull=True,
                                          status__in=[CaseStatus.NEW, CaseStatus.IN_PROGRESS]).update(
                escalated_at=now, escalated_to=manager, updated_at=now)
            if not claimed:
                continue
            late = now - case.due_at
            hours = int(late.total_seconds() // 3600)
            _entry(case, EntryKind.ESCALATE, at=now, actor=system,
                   body=_("Overdue by %(hours)s h: escalated to %(manager)s.") % {
                       "hours": hours, "manager": manager.get_username() if manager else "—"})
            audit.record(actor=system, action="service.case_escalate", obj=case, fields=["escalated_to"])
        escalated += 1
    if escalated:
        logger.info("escalated %d overdue cases", escalated)
    return escalated


@transaction.atomic
def escalate(*, actor: Actor, case: Case, now: dt.datetime | None = None) -> Case:
    """Staff hand a case to the unit's manager by hand (before it is overdue)."""
    case = _lock(case)
    _check_unit(actor, case.unit)
    if not case.is_open:
        raise ValidationError({"status": [_("Only an open case can be escalated.")]})
    if case.escalated_at is not None:
        raise ValidationError({"status": [_("This case has already been escalated.")]})
    now = now or timezone.now()
    manager = manager_of(case.unit)
    case.escalated_at, case.escalated_to = now, manager
    case.save(update_fields=["escalated_at", "escalated_to", "updated_at"])
    _entry(case, EntryKind.ESCALATE, at=now, actor=actor,
           body=_("Escalated to %(manager)s.") % {"manager": manager.get_username() if manager else "—"})
    audit.record(actor=actor, action="service.case_escalate", obj=case, fields=["escalated_to"])
    return case


def close_resolved(*, now: dt.datetime | None = None) -> int:
    """Close the cases resolved more than DANGOL_SERVICE_AUTOCLOSE_DAYS ago (the customer did not come back)."""
    now = now or timezone.now()
    days = settings.DANGOL_SERVICE_AUTOCLOSE_DAYS
    if days <= 0:
        return 0
    closed = 0
    system = Actor.system("schedule")
    for case in Case.objects.filter(status=CaseStatus.RESOLVED, resolved_at__lt=now - dt.timedelta(days=days)).order_by("id")[:1000]:
        try:
            change_status(actor=system, case=case, to_status=CaseStatus.CLOSED, note=_("Closed automatically."), now=now)
        except ValidationError:
            continue  # changed meanwhile
        closed += 1
    return closed


# --- goodwill ----------------------------------------------------------------------------------------------------------------

def may_give_coupon(user: User | None, template) -> bool:
    """Managers and admins give any active coupon; staff give amount coupons up to DANGOL_SERVICE_STAFF_GOODWILL_KRW."""
    if is_manager(user):
        return True
    return (user is not None and template.kind == "amount"
            and template.value <= settings.DANGOL_SERVICE_STAFF_GOODWILL_KRW)


def _goodwill_reason(reason: str) -> str:
    reason = _one_line(reason)
    if len(reason) < 3:
        raise ValidationError({"reason": [_("Give the reason for the goodwill gesture.")]})
    if len(reason) > 300:
        raise ValidationError({"reason": [_("A reason has at most 300 characters.")]})
    return reason


@transaction.atomic
def give_goodwill_coupon(*, actor: Actor, case: Case, template, reason: str, now: dt.datetime | None = None) -> Goodwill:
    """A coupon of ``template`` (loyalty's CouponTemplate) into the customer's wallet, recorded on the case."""
    from dangol.loyalty import services as loyalty

    reason = _goodwill_reason(reason)
    case = _lock(case)
    _check_unit(actor, case.unit)
    if template is None or not template.is_active:
        raise ValidationError({"template": [_("Choose an active coupon.")]})
    if not template.usable_at(case.unit):
        raise ValidationError({"template": [_("This coupon is only valid at %(unit)s.") % {"unit": template.units_label}]})
    if not may_give_coupon(actor.user, template):
        raise PermissionDenied(_("Only a manager may give this coupon (staff give amount coupons up to %(limit)s KRW).")
                               % {"limit": f"{settings.DANGOL_SERVICE_STAFF_GOODWILL_KRW:,}"})
    live_customer(case.customer)
    now = now or timezone.now()
    [coupon_id] = loyalty.issue_coupons(template=template, customer_ids=[case.customer_id], source="manual",
                                        source_ref=f"case:{case.pk}", now=now)
    goodwill = Goodwill.objects.create(case=case, kind=GoodwillKind.COUPON, coupon_id=coupon_id, coupon_name=template.name,
                                       reason=reason, at=now, given_by=actor.user)
    _entry(case, EntryKind.GOODWILL, at=now, actor=actor, body=f"{template.name}: {reason}")
    _timeline(case, _("Goodwill coupon (%(case)s): %(name)s") % {"case": case_label(case), "name": template.name},
              at=now, user=actor.user)
    audit.record(actor=actor, action="service.goodwill_coupon", obj=case.customer, fields=["coupons"])
    return goodwill


@transaction.atomic
def give_goodwill_points(*, actor: Actor, case: Case, points, reason: str, now: dt.datetime | None = None) -> Goodwill:
    """Points added through loyalty's adjustment (a manager's or an admin's right, which loyalty enforces)."""
    from dangol.loyalty import services as loyalty

    reason = _goodwill_reason(reason)
    try:
        points = int(points)
    except (TypeError, ValueError):
        raise ValidationError({"points": [_("Give a whole number of points.")]})
    if points <= 0:
        raise ValidationError({"points": [_("Goodwill adds points: give a number above zero.")]})
    if points > settings.DANGOL_SERVICE_GOODWILL_MAX_POINTS:
        raise ValidationError({"points": [_("At most %(max)s points per gesture.") % {"max": f"{settings.DANGOL_SERVICE_GOODWILL_MAX_POINTS:,}"}]})
    case = _lock(case)
    _check_unit(actor, case.unit)
    now = now or timezone.now()
    entry = loyalty.adjust_points(actor=actor, customer=case.customer, points=points,
                                  reason=(_("Goodwill, %(case)s: %(reason)s") % {"case": case_label(case), "reason": reason})[:300],
                                  unit=case.unit, now=now)
    goodwill = Goodwill.objects.create(case=case, kind=GoodwillKind.POINTS, ledger_entry_id=entry.pk, points=points,
                                       reason=reason, at=now, given_by=actor.user)
    _entry(case, EntryKind.GOODWILL, at=now, actor=actor, body=f"+{points:,} P: {reason}")
    audit.record(actor=actor, action="service.goodwill_points", obj=case, fields=["goodwill"])
    return goodwill


# --- the public request form ---------------------------------------------------------------------------------------------

PUBLIC_TYPES = (CaseType.INQUIRY, CaseType.AFTER_SALES)


def match_or_create_customer(*, name: str, phone_e164: str, unit: BusinessUnit, actor: Actor) -> Customer:
    """The live customer with this primary phone (preferring one known at the unit), or a new prospect."""
    ids = list(Customer.objects.filter(merged_into__isnull=True, erased_at__isnull=True, contacts__kind=ContactKind.PHONE,
                                       contacts__value=phone_e164).order_by("-joined_at", "-id").values_list("id", flat=True)[:20])
    if ids:
        at_unit = Customer.objects.filter(pk__in=ids, memberships__unit=unit).order_by("-joined_at", "-id").first()
        return at_unit or Customer.objects.get(pk=ids[0])
    data = customer_services.CustomerInput(name=name, phone=phone_e164)
    return customer_services.create_customer(actor=actor, unit=unit, data=data, consent_source="web")


@transaction.atomic
def submit_public_request(*, unit: BusinessUnit, case_type: str, name: str, phone: str, message: str, product_text: str = "",
                          ip: str | None = None, now: dt.datetime | None = None) -> Case:
    """An inquiry or an A/S request from the public form: the customer is found by phone (or created), the case is
    opened in the unit's queue and confirmed by message. Spam checks (honeypot, fill time, rate) are the caller's:
    see ``public.py``."""
    errors: dict[str, list[str]] = {}
    if case_type not in PUBLIC_TYPES:
        errors["case_type"] = [_("Choose an inquiry or an A/S request.")]
    name = customer_services.normalize_name(name)
    if not name:
        errors["name"] = [_("Enter your name.")]
    elif len(name) > 100:
        errors["name"] = [_("A name has at most 100 characters.")]
    phone_e164 = ""
    if not (phone or "").strip():
        errors["phone"] = [_("Enter your mobile number so that we can answer.")]
    else:
        try:
            phone_e164 = normalize_phone(phone)
        except ValidationError as exc:
            errors["phone"] = exc.messages
    message = _clean_text(message, field="message", max_length=2000, required=True, errors=errors,
                          message=_("Tell us what it is about."))
    product_text = _clean_text(product_text, field="product_text", max_length=120, required=False, errors=errors)
    if unit is None or not unit.is_active:
        errors["unit"] = [_("Choose where you bought or stayed.")]
    if errors:
        raise ValidationError(errors)
    actor = Actor(user=None, ip=ip, via="web-form")
    customer = match_or_create_customer(name=name, phone_e164=phone_e164, unit=unit, actor=actor)
    description = message if not product_text else f"{message}\n\n{_('Product')}: {product_text}"
    if customer.name != name:
        # Anyone can type any number: staff see the name the sender gave when it is not the one on file.
        description += f"\n{_('Name given')}: {name}"
    case = open_case(actor=actor, customer=customer, unit=unit, case_type=case_type, channel=CaseChannel.WEB,
                     subject=message.splitlines()[0], description=description, now=now)
    _entry(case, EntryKind.CUSTOMER, at=case.opened_at, actor=actor, body=description)
    return case


# --- knowledge -----------------------------------------------------------------------------------------------------------------

@transaction.atomic
def add_trait(*, actor: Actor, customer: Customer, category: str, value: str, source: str, unit: BusinessUnit | None,
              now: dt.datetime | None = None) -> Trait:
    errors: dict[str, list[str]] = {}
    if category not in TraitCategory.values:
        errors["category"] = [_("Choose what kind of knowledge this is.")]
    if source not in TraitSource.values:
        errors["source"] = [_("Choose where this comes from.")]
    value = customer_services.normalize_name(value)
    if not value:
        errors["value"] = [_("Write what you learned, e.g. “no nuts” or “high floor”.")]
    elif len(value) > 200:
        errors["value"] = [_("At most %(count)s characters.") % {"count": 200}]
    if errors:
        raise ValidationError(errors)
    live_customer(customer)
    if unit is not None:
        _check_unit(actor, unit)
    now = now or timezone.now()
    existing = Trait.objects.filter(customer=customer, category=category, value=value, removed_at__isnull=True).first()
    if existing:
        return existing  # the same knowledge twice is kept once
    trait = Trait.objects.create(customer=customer, category=category, value=value, source=source, unit=unit,
                                 recorded_by=actor.user, recorded_at=now)
    audit.record(actor=actor, action="service.trait_add", obj=customer, fields=["traits"])
    return trait


@transaction.atomic
def remove_trait(*, actor: Actor, trait: Trait, now: dt.datetime | None = None) -> Trait:
    """Knowledge that is no longer true is kept, marked removed (who knew what, when)."""
    if trait.removed_at is None:
        trait.removed_at = now or timezone.now()
        trait.save(update_fields=["removed_at"])
        audit.record(actor=actor, action="service.trait_remove", obj=trait.customer, fields=["traits"])
    return trait


# --- surveys -------------------------------------------------------------------------------------------------------------------

def survey_token(invitation_id: int) -> str:
    return signing.TimestampSigner(salt=SURVEY_SALT).sign_object({"i": invitation_id})


def survey_path(invitation_id: int) -> str:
    return reverse("web:service_survey_answer", kwargs={"token": survey_token(invitation_id)})


def read_survey_token(token: str) -> int | None:
    if not token or len(token) > 200:
        return None
    try:
        value = signing.TimestampSigner(salt=SURVEY_SALT).unsign_object(token)
    except (signing.BadSignature, ValueError, TypeError, UnicodeDecodeError):
        return None
    number = value.get("i") if isinstance(value, dict) else None
    return number if isinstance(number, int) else None


def survey_for(trigger: str, unit: BusinessUnit | None) -> Survey | None:
    """The active survey of this trigger for the unit: the unit's own first, then one for every unit."""
    qs = Survey.objects.filter(is_active=True, trigger=trigger)
    if unit is not None:
        own = qs.filter(unit=unit).order_by("id").first()
        if own:
            return own
    return qs.filter(unit__isnull=True).order_by("id").first()


@transaction.atomic
def invite(*, survey: Survey, customer: Customer, about: str, unit: BusinessUnit | None = None, staff: User | None = None,
           case: Case | None = None, order: Order | None = None, actor: Actor | None = None, now: dt.datetime | None = None,
           not_before: dt.datetime | None = None) -> SurveyInvitation:
    """One invitation per survey, customer and subject (``about``): asking twice returns the first."""
    now = now or timezone.now()
    existing = SurveyInvitation.objects.filter(survey=survey, customer=customer, about=about).first()
    if existing:
        return existing
    if not survey.is_active:
        raise ValidationError({"survey": [_("This survey is not active.")]})
    try:
        with transaction.atomic():
            invitation = SurveyInvitation.objects.create(
                survey=survey, customer=customer, about=about, unit=unit, staff=staff, case=case, order=order, sent_at=now,
                expires_at=(not_before or now) + dt.timedelta(days=survey.valid_days))
    except IntegrityError:
        return SurveyInvitation.objects.get(survey=survey, customer=customer, about=about)
    with _customer_language():
        body = _("%(unit)s: how did we do? One tap to tell us (valid until %(until)s): %(link)s") % {
            "unit": unit.name if unit else _("Dangol"), "until": timezone.localtime(invitation.expires_at).strftime("%m-%d"),
            "link": public_url(survey_path(invitation.pk))}
    message = send_info(customer_id=customer.pk, body=body, source=f"survey:{survey.pk}", occurrence=about, unit=unit,
                        actor=actor, not_before=not_before)
    if message is not None:
        invitation.message_id = message.pk
        invitation.save(update_fields=["message_id"])
    return invitation


def invite_after_case(*, case: Case, actor: Actor | None = None, now: dt.datetime | None = None) -> SurveyInvitation | None:
    survey = survey_for(SurveyTrigger.AFTER_CASE, case.unit)
    if survey is None:
        return None
    return invite(survey=survey, customer=case.customer, about=f"case:{case.pk}", unit=case.unit,
                  staff=case.assignee or case.opened_by, case=case, actor=actor, now=now)


def invite_after_purchase(*, order: Order, actor: Actor | None = None, now: dt.datetime | None = None,
                          delay: dt.timedelta | None = None) -> SurveyInvitation | None:
    """Callable after a purchase (the automations, or ``on_order_recorded``): the invitation leaves ``delay``
    (DANGOL_SERVICE_SURVEY_PURCHASE_DELAY_HOURS) after the purchase."""
    if order.customer_id is None or order.kind != "sale":
        return None
    survey = survey_for(SurveyTrigger.AFTER_PURCHASE, order.unit)
    if survey is None:
        return None
    delay = delay if delay is not None else dt.timedelta(hours=settings.DANGOL_SERVICE_SURVEY_PURCHASE_DELAY_HOURS)
    return invite(survey=survey, customer=order.customer, about=f"order:{order.pk}", unit=order.unit, staff=order.created_by,
                  order=order, actor=actor, now=now, not_before=order.ordered_at + delay if delay else None)


def on_order_recorded(*, order, actor: Actor | None = None) -> None:
    """Reaction to ``order_recorded``: a purchase survey, when one is active for the unit."""
    if order.kind == "sale" and order.customer_id and Survey.objects.filter(
            is_active=True, trigger=SurveyTrigger.AFTER_PURCHASE).filter(Q(unit__isnull=True) | Q(unit_id=order.unit_id)).exists():
        invite_after_purchase(order=order, actor=actor)


def score_range(score_kind: str) -> tuple[int, int]:
    return (0, 10) if score_kind == ScoreKind.NPS else (1, 5)


def clean_answers(questions: list[SurveyQuestion], raw: dict) -> dict:
    """The answers to the custom questions, by question id (as text), checked against each question's kind."""
    answers, errors = {}, {}
    for question in questions:
        value = _one_line(str(raw.get(str(question.pk), "") or ""))[:500]
        key = f"q{question.pk}"
        if not value:
            if question.required:
                errors[key] = [_("Please answer this question.")]
            continue
        if question.kind == "yesno" and value not in ("yes", "no"):
            errors[key] = [_("Answer yes or no.")]
        elif question.kind == "choice" and value not in question.choice_list():
            errors[key] = [_("Choose one of the answers.")]
        else:
            answers[str(question.pk)] = value
    if errors:
        raise ValidationError(errors)
    return answers


@transaction.atomic
def answer_survey(*, invitation: SurveyInvitation, score, comment: str = "", answers: dict | None = None,
                  now: dt.datetime | None = None, ip: str | None = None) -> SurveyResponse:
    """Record the answer of an invitation, once. A detractor (NPS 0–6, CSAT 1–2) opens a follow-up case in the
    unit's queue at once."""
    now = now or timezone.now()
    invitation = SurveyInvitation.objects.select_for_update(of=("self",)).select_related("survey", "unit", "customer").get(pk=invitation.pk)
    if invitation.answered_at is not None:
        raise ValidationError({"survey": [_("This survey has already been answered. Thank you!")]}, code="answered")
    if invitation.expires_at <= now:
        raise ValidationError({"survey": [_("This survey link has expired.")]}, code="expired")
    if invitation.customer.erased_at is not None:
        raise ValidationError({"survey": [_("This survey link is no longer valid.")]}, code="erased")
    survey = invitation.survey
    low, high = score_range(survey.score_kind)
    errors: dict[str, list[str]] = {}
    try:
        score = int(score)
        if not low <= score <= high:
            raise ValueError
    except (TypeError, ValueError):
        errors["score"] = [_("Choose a score from %(low)s to %(high)s.") % {"low": low, "high": high}]
    comment = _clean_text(comment, field="comment", max_length=2000, required=False, errors=errors)
    try:
        clean = clean_answers(list(survey.questions.all()), answers or {})
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    response = SurveyResponse.objects.create(
        invitation=invitation, survey=survey, customer=invitation.customer, unit=invitation.unit, staff_id=invitation.staff_id,
        score_kind=survey.score_kind, score=score, comment=comment, answers=clean, answered_at=now)
    invitation.answered_at = now
    invitation.save(update_fields=["answered_at"])
    Interaction.objects.create(customer_id=invitation.customer_id, kind=InteractionKind.CASE, occurred_at=now,
                               unit=invitation.unit, channel="web", ref_type="service.survey", ref_id=response.pk,
                               summary=_("Survey answered: %(kind)s %(score)s") % {"kind": survey.get_score_kind_display(), "score": score})
    actor = Actor(user=None, ip=ip, via="survey")
    audit.record(actor=actor, action="service.survey_answer", obj=invitation.customer, fields=["survey"])
    if response.is_detractor and invitation.unit is not None and invitation.customer.erased_at is None \
            and invitation.customer.merged_into_id is None:
        low_score = _("%(kind)s %(score)s of %(high)s") % {"kind": ScoreKind(survey.score_kind).name, "score": score, "high": high}
        subject = _("Unhappy survey answer: %(score)s") % {"score": low_score}
        about = invitation.case and _("about %(case)s") % {"case": case_label(invitation.case)}
        description = "\n".join(part for part in [subject + (f" ({about})" if about else ""), comment] if part)
        open_case(actor=Actor.system("survey"), customer=invitation.customer, unit=invitation.unit,
                  case_type=CaseType.COMPLAINT, channel=CaseChannel.WEB, priority=Priority.HIGH, subject=subject,
                  description=description, assignee=None, now=now, follow_up_of=response, confirm=False)
    events.emit("survey_answered", response=response)
    return response


# --- reactions to other apps ------------------------------------------------------------------------------------------------

def on_customer_erased(*, customer_id: int, **_ignored) -> None:
    """Scrub the personal text this app holds about an erased customer: case subjects and descriptions, entries,
    resolutions, goodwill reasons, traits, survey comments and answers, and the case lines of the timeline."""
    gone = _("(erased)")
    cases = Case.objects.filter(customer_id=customer_id)
    CaseEntry.objects.filter(case__in=cases).update(body="")
    Goodwill.objects.filter(case__in=cases).update(reason=gone)
    cases.update(subject=gone, description="", resolution="")
    Trait.objects.filter(customer_id=customer_id).delete()
    SurveyResponse.objects.filter(customer_id=customer_id).update(comment="", answers={})
    Interaction.objects.filter(customer_id=customer_id, ref_type__in=[TIMELINE_REF, "service.survey"]).update(summary=gone, body="")


_MOVED_KINDS = {"c": ("service_cases", Case), "t": ("service_traits", Trait), "i": ("service_invitations", SurveyInvitation)}


def on_customers_merged(*, survivor, merged, merge, moved: dict) -> None:
    """Move the merged record's cases, traits and survey invitations (with their answers) to the survivor, and
    remember which: one query to find them, updates only when there is something to move."""
    from django.db.models import CharField, Value

    def ids_of(key, model):
        return model.objects.filter(customer_id=merged.pk).annotate(k=Value(key, output_field=CharField())).values_list("k", "pk").order_by()

    rows = list(ids_of("c", Case).union(ids_of("t", Trait), ids_of("i", SurveyInvitation), all=True))
    for key, (name, model) in _MOVED_KINDS.items():
        ids = [pk for k, pk in rows if k == key]
        if ids:
            model.objects.filter(pk__in=ids).update(customer_id=survivor.pk)
            moved[name] = ids
            if model is SurveyInvitation:
                SurveyResponse.objects.filter(invitation_id__in=ids).update(customer_id=survivor.pk)


def on_customers_unmerged(*, survivor, merged, merge, moved: dict) -> None:
    for name, model in _MOVED_KINDS.values():
        ids = (moved or {}).get(name) or []
        if ids:
            model.objects.filter(pk__in=ids, customer_id=survivor.pk).update(customer_id=merged.pk)
            if model is SurveyInvitation:
                SurveyResponse.objects.filter(invitation_id__in=ids, customer_id=survivor.pk).update(customer_id=merged.pk)


def is_open_status(status: str) -> bool:
    return status in OPEN_STATUSES
