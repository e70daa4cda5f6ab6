"""Writes of the privacy app: consent evidence, data-subject requests, erasure, processing suspension and the reasons
given for access. Every write validates first, runs in a transaction and leaves an audit record."""
from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from dangol.core.permissions import Action, may
from dangol.core import audit
from dangol.core.audit import Actor
from dangol.core.models import AuditEvent, BusinessUnit, User
from dangol.customers import services as customer_services
from dangol.customers.models import (
    Channel,
    Consent,
    ConsentKind,
    ConsentSource,
    Customer,
    NoticeVersion,
    Purpose,
)
from dangol.customers.services import CustomerInput, DateParts

from .erasure import ErasureResult, erase_customers
from .models import (
    OPEN_STATUSES,
    AccessReason,
    AccessReasonCode,
    DataSubjectRequest,
    ReceivedVia,
    RequestKind,
    RequestStatus,
)

# ---------------------------------------------------------------- permissions (one place for the privacy app)


def may_handle_requests(user: User) -> bool:
    """Managers and admins answer requests, export and correct; staff at the counter only register them."""
    return user.may_see_full_contacts


def may_erase(user: User) -> bool:
    """Erasure cannot be undone: admins only (the role table of ``core.permissions``)."""
    return may(user, Action.ERASE)


def may_review_access_log(user: User) -> bool:
    return may(user, Action.VIEW_ACCESS_LOG)


# ---------------------------------------------------------------- consents


def consent_state(customer: Customer) -> dict[tuple[str, str, str], Consent]:
    """The latest record per (kind, channel, purpose): granted or withdrawn, with its evidence."""
    latest: dict[tuple[str, str, str], Consent] = {}
    for consent in customer.consents.select_related("notice", "unit", "recorded_by").order_by("at", "-granted", "id"):
        latest[(consent.kind, consent.channel, consent.purpose)] = consent
    return latest


def consents_in_force(customer: Customer) -> list[Consent]:
    """The consents the customer has given and not withdrawn, required first, then optional, then by channel."""
    order = {ConsentKind.REQUIRED: 0, ConsentKind.OPTIONAL: 1, ConsentKind.MARKETING: 2}
    granted = [c for c in consent_state(customer).values() if c.granted]
    return sorted(granted, key=lambda c: (order.get(c.kind, 9), c.channel, c.purpose))


def _check_consent_target(kind: str, channel: str, purpose: str) -> tuple[str, str]:
    if kind not in ConsentKind.values:
        raise ValidationError({"kind": [_("Unknown kind of consent.")]})
    if kind == ConsentKind.MARKETING:
        if channel not in Channel.values:
            raise ValidationError({"channel": [_("Choose a channel from the list.")]})
        if (purpose or Purpose.MARKETING) not in Purpose.values:
            raise ValidationError({"purpose": [_("Choose a purpose from the list.")]})
        return channel, purpose or Purpose.MARKETING
    if channel or purpose not in ("", kind):
        raise ValidationError({"channel": [_("Required and optional consents have no channel.")]})
    return "", kind


@transaction.atomic
def record_consent(*, actor: Actor, customer: Customer, kind: str, granted: bool, source: str,
                   channel: str = "", purpose: str = "", unit: BusinessUnit | None = None, method: str = "",
                   notice: NoticeVersion | None = None) -> Consent:
    """Record a consent given or withdrawn, with the notice shown (the one in force unless named)."""
    channel, purpose = _check_consent_target(kind, channel, purpose)
    if source not in ConsentSource.values:
        raise ValidationError({"source": [_("Unknown consent source.")]})
    if len(method) > 60:
        raise ValidationError({"method": [_("At most 60 characters.")]})
    if customer.erased_at:
        raise ValidationError({"customer": [_("This customer was erased.")]})
    if notice is not None and notice.kind != kind:
        raise ValidationError({"notice": [_("That notice belongs to another kind of consent.")]})
    notice = notice or NoticeVersion.current(kind)
    if granted and notice is None:
        raise ValidationError({"notice": [_("No notice is in force for this kind of consent: publish one first.")]})
    if kind == ConsentKind.MARKETING:
        # The customers service owns the marketing rules (the night-time consent follows the advertising one).
        record = customer_services.set_consent(actor=actor, customer=customer, channel=channel, purpose=purpose,
                                               granted=granted, unit=unit, source=source, method=method)
        if notice is not None and record.notice_id != notice.pk:
            Consent.objects.filter(pk=record.pk).update(notice=notice)
            record.notice = notice
        return record
    record = Consent.objects.create(
        customer=customer, kind=kind, channel="", purpose=kind, granted=granted, at=timezone.now(), source=source,
        unit=unit, method=method, notice=notice, recorded_by=actor.user,
    )
    audit.record(actor=actor, action="consent.grant" if granted else "consent.withdraw", obj=customer,
                 fields=[f"consent.{kind}"])
    return record


def withdraw_consent(*, actor: Actor, customer: Customer, kind: str, channel: str = "", purpose: str = "",
                     source: str = ConsentSource.STORE, unit: BusinessUnit | None = None) -> Consent:
    """One click: withdraw a consent in force, as simply as it was given."""
    channel, purpose = _check_consent_target(kind, channel, purpose)
    current = consent_state(customer).get((kind, channel, purpose))
    if current is None or not current.granted:
        raise ValidationError({"consent": [_("This consent is not in force.")]})
    return record_consent(actor=actor, customer=customer, kind=kind, channel=channel, purpose=purpose, granted=False,
                          source=source, unit=unit, notice=current.notice)


@transaction.atomic
def publish_notice(*, actor: Actor, kind: str, version: str, title: str, purpose: str, items: str, retention: str,
                   text: str, effective_from: dt.datetime | None = None) -> NoticeVersion:
    values = {"version": version, "title": title, "purpose": purpose, "items": items, "retention": retention, "text": text}
    errors = {key: [_("This field is required.")] for key, value in values.items() if not (value or "").strip()}
    if kind not in ConsentKind.values:
        errors["kind"] = [_("Unknown kind of consent.")]
    if NoticeVersion.objects.filter(kind=kind, version=version).exists():
        errors["version"] = [_("This version exists already: a published notice is never changed.")]
    if errors:
        raise ValidationError(errors)
    notice = NoticeVersion.objects.create(kind=kind, effective_from=effective_from or timezone.now(), created_by=actor.user,
                                          **{k: v.strip() for k, v in values.items()})
    audit.record(actor=actor, action="privacy.notice_publish", obj=notice, fields=["text"])
    return notice


# ---------------------------------------------------------------- data-subject requests


def due_date(received_at: dt.datetime) -> dt.datetime:
    """Ten days from receipt (시행령 §41 ④, §43 ③, §44 ②), at the end of that day in Seoul."""
    local = timezone.localtime(received_at)
    last_day = local.date() + dt.timedelta(days=settings.DANGOL_DSR_DUE_DAYS)
    end = dt.datetime.combine(last_day, dt.time(23, 59, 59), tzinfo=local.tzinfo)
    return end.astimezone(dt.timezone.utc)


@transaction.atomic
def open_request(*, actor: Actor, customer: Customer, kind: str, received_via: str = ReceivedVia.STORE,
                 details: str = "", received_at: dt.datetime | None = None, unit: BusinessUnit | None = None) -> DataSubjectRequest:
    now = timezone.now()
    received_at = received_at or now
    errors = {}
    if kind not in RequestKind.values:
        errors["kind"] = [_("Choose the kind of request.")]
    if received_via not in ReceivedVia.values:
        errors["received_via"] = [_("Choose how the request was received.")]
    details = (details or "").strip()
    if len(details) > 2000:
        errors["details"] = [_("At most 2,000 characters.")]
    if timezone.is_naive(received_at):
        errors["received_at"] = [_("Give the time with its time zone.")]
    elif received_at > now + dt.timedelta(minutes=5):
        errors["received_at"] = [_("A request cannot be received in the future.")]
    elif received_at < now - dt.timedelta(days=365):
        errors["received_at"] = [_("A request received more than a year ago cannot be registered now.")]
    if not errors and DataSubjectRequest.objects.filter(customer=customer, kind=kind, status__in=OPEN_STATUSES).exists():
        errors["kind"] = [_("A request of this kind is already open for this customer.")]
    if customer.erased_at and kind != RequestKind.ACCESS:
        errors["customer"] = [_("This customer was erased.")]
    if errors:
        raise ValidationError(errors)
    request = DataSubjectRequest.objects.create(
        customer=customer, kind=kind, received_at=received_at, due_at=due_date(received_at), received_via=received_via,
        details=details, unit=unit, created_by=actor.user,
    )
    audit.record(actor=actor, action=f"privacy.request_{kind}", obj=customer, fields=["privacy_requests"])
    return request


def _lock_open(request: DataSubjectRequest) -> DataSubjectRequest:
    locked = DataSubjectRequest.objects.select_for_update().select_related("customer").get(pk=request.pk)
    if not locked.is_open:
        raise ValidationError({"status": [_("This request is already closed.")]})
    return locked


@transaction.atomic
def complete_request(*, actor: Actor, request: DataSubjectRequest, outcome: str = "") -> DataSubjectRequest:
    """Close a request as answered, doing what it asks: erase (deletion) or suspend processing (suspension)."""
    request = _lock_open(request)
    outcome = (outcome or "").strip()[:500]
    customer = request.customer
    if request.kind == RequestKind.DELETION:
        if customer.erased_at is None:  # erased meanwhile (retention, the erase page): the request is answered all the same
            erase_customer(actor=actor, customer=customer)
        outcome = outcome or _("Erased: the profile was anonymised; orders are kept without identity.")
    elif request.kind == RequestKind.SUSPENSION:
        set_processing_suspended(actor=actor, customer=customer, suspended=True)
        outcome = outcome or _("Processing suspended: no marketing, left out of segments.")
    request.status, request.completed_at, request.handled_by, request.outcome = (
        RequestStatus.DONE, timezone.now(), actor.user, outcome)
    request.save(update_fields=["status", "completed_at", "handled_by", "outcome"])
    audit.record(actor=actor, action=f"privacy.request_{request.kind}_done", obj=customer, fields=["privacy_requests"])
    return request


@transaction.atomic
def refuse_request(*, actor: Actor, request: DataSubjectRequest, outcome: str) -> DataSubjectRequest:
    """Refuse with the reason the customer is told (시행령 §41 ⑤, §43 ②: the refusal and its grounds are notified)."""
    outcome = (outcome or "").strip()
    if not outcome:
        raise ValidationError({"outcome": [_("Give the reason the customer will be told.")]})
    if len(outcome) > 500:
        raise ValidationError({"outcome": [_("At most 500 characters.")]})
    request = _lock_open(request)
    request.status, request.completed_at, request.handled_by, request.outcome = (
        RequestStatus.REFUSED, timezone.now(), actor.user, outcome)
    request.save(update_fields=["status", "completed_at", "handled_by", "outcome"])
    audit.record(actor=actor, action=f"privacy.request_{request.kind}_refused", obj=request.customer, fields=["privacy_requests"])
    return request


@transaction.atomic
def start_request(*, actor: Actor, request: DataSubjectRequest) -> DataSubjectRequest:
    request = _lock_open(request)
    if request.status == RequestStatus.RECEIVED:
        request.status, request.handled_by = RequestStatus.IN_PROGRESS, actor.user
        request.save(update_fields=["status", "handled_by"])
    return request


def _current_input(customer: Customer) -> CustomerInput:
    state = customer_services.snapshot(customer)
    sido, sigungu, line, postal_code = state["address"]

    def parts(values):
        if values is None:
            return None
        year, month, day, is_lunar, is_leap_month = values
        return DateParts(year=year, month=month, day=day, is_lunar=is_lunar, is_leap_month=is_leap_month)

    return CustomerInput(name=state["name"], phone=state["phone"], email=state["email"], gender=state["gender"],
                         stage=state["stage"], sido=sido, sigungu=sigungu, address_line=line, postal_code=postal_code,
                         birthday=parts(state["birthday"]), wedding=parts(state["wedding"]), tags=list(state["tags"]))


@transaction.atomic
def apply_correction(*, actor: Actor, request: DataSubjectRequest, name: str | None = None, phone: str | None = None,
                     email: str | None = None, outcome: str = "") -> DataSubjectRequest:
    """Correct what the customer asked (the profile service validates and audits), then close the request."""
    request = _lock_open(request)
    if request.kind != RequestKind.CORRECTION:
        raise ValidationError({"kind": [_("Only a correction request corrects the profile.")]})
    data = _current_input(request.customer)
    changed = False
    for key, value in (("name", name), ("phone", phone), ("email", email)):
        if value is not None and value.strip():
            setattr(data, key, value)
            changed = True
    if not changed:
        raise ValidationError({"name": [_("Give at least one corrected value.")]})
    customer_services.update_customer(actor=actor, customer=request.customer, data=data)
    return complete_request(actor=actor, request=request, outcome=outcome or _("Corrected as asked."))


@transaction.atomic
def set_processing_suspended(*, actor: Actor, customer: Customer, suspended: bool) -> Customer:
    """A suspended customer gets no marketing and is left out of segments (the messaging and campaign apps read the flag)."""
    changed = Customer.objects.filter(pk=customer.pk).exclude(processing_suspended=suspended).update(
        processing_suspended=suspended, updated_at=timezone.now())
    customer.processing_suspended = suspended
    if changed:
        audit.record(actor=actor, action="privacy.suspend" if suspended else "privacy.resume", obj=customer,
                     fields=["processing_suspended"])
    return customer


def erase_customer(*, actor: Actor, customer: Customer) -> ErasureResult:
    if customer.erased_at:
        raise ValidationError({"customer": [_("This customer was erased already.")]})
    return erase_customers(ids=[customer.pk], actor=actor)


# ---------------------------------------------------------------- access with a reason


def check_reason(code: str, detail: str) -> tuple[str, str]:
    detail = " ".join((detail or "").split())
    if code not in AccessReasonCode.values:
        raise ValidationError({"reason": [_("Choose why you need this download.")]})
    if code == AccessReasonCode.OTHER and not detail:
        raise ValidationError({"reason_detail": [_("Explain the reason.")]})
    if len(detail) > 200:
        raise ValidationError({"reason_detail": [_("At most 200 characters.")]})
    return code, detail


@transaction.atomic
def record_access(*, actor: Actor, obj, action: str, reason: str, reason_detail: str = "",
                  fields: list[str] | tuple = ()) -> AuditEvent:
    """An audit event (account, time, IP, whose data, action) with the reason given for it."""
    code, detail = check_reason(reason, reason_detail)
    event = audit.record(actor=actor, action=action, obj=obj, fields=fields)
    AccessReason.objects.create(audit_event=event, code=code, detail=detail)
    return event



def mark_access_log_reviewed(*, actor: Actor, month: dt.date, note: str = "") -> AuditEvent:
    """The admin's monthly review of the access log, kept in the log itself (reason: internal audit)."""
    return record_access(actor=actor, obj=actor.user, action="privacy.access_log_review", reason=AccessReasonCode.AUDIT,
                         reason_detail=note, fields=[f"month.{month:%Y-%m}"])


# ---------------------------------------------------------------- merges (ingest's events)


def on_customers_merged(*, survivor, merged, merge, moved: dict) -> None:
    """``customers_merged``: the merged record's requests follow the person to the survivor (the board shows live
    customers only), their ids kept in ``moved`` for the undo."""
    ids = list(DataSubjectRequest.objects.filter(customer_id=merged.pk).values_list("pk", flat=True))
    if ids:
        DataSubjectRequest.objects.filter(pk__in=ids).update(customer_id=survivor.pk)
    moved["privacy_requests"] = ids


def on_customers_unmerged(*, survivor, merged, merge, moved: dict) -> None:
    ids = moved.get("privacy_requests") or []
    if ids:
        DataSubjectRequest.objects.filter(pk__in=ids, customer_id=survivor.pk).update(customer_id=merged.pk)
