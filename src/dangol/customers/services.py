"""Writes of the integrated customer profile. Every change of personal data is audited."""
from __future__ import annotations

import datetime as dt
import unicodedata
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from dangol.core import audit, events
from dangol.core.audit import Actor
from dangol.core.models import BusinessUnit
from dangol.core.phones import last_four, normalize_phone
from dangol.core.regions import normalize_sido

from .anniversaries import validate_date_parts
from .models import (
    Address,
    Anniversary,
    AnniversaryKind,
    Channel,
    Consent,
    ConsentKind,
    ConsentSource,
    ContactKind,
    ContactPoint,
    Customer,
    Gender,
    Interaction,
    InteractionKind,
    Membership,
    NoticeVersion,
    Preference,
    Purpose,
    Stage,
    Tag,
)

PROFILE_FIELDS = ["name", "gender", "stage"]
SENSITIVE_NOTE_MARK = "🔒"  # what the timeline shows of a sensitive note: that it exists, in no language


@dataclass
class DateParts:
    month: int
    day: int
    year: int | None = None
    is_lunar: bool = False
    is_leap_month: bool = False


@dataclass
class CustomerInput:
    """What a form, the API or an import gives for a customer; validated and normalised by ``clean_customer_input``."""

    name: str
    phone: str = ""
    email: str = ""
    gender: str = ""
    stage: str = Stage.PROSPECT
    sido: str = ""
    sigungu: str = ""
    address_line: str = ""
    postal_code: str = ""
    birthday: DateParts | None = None
    wedding: DateParts | None = None
    tags: list[str] = field(default_factory=list)


@dataclass
class ConsentInput:
    channel: str
    purpose: str
    granted: bool


def normalize_name(raw: str) -> str:
    return " ".join(unicodedata.normalize("NFC", raw or "").split())


def clean_customer_input(data: CustomerInput) -> CustomerInput:
    """Normalise in place and raise one ValidationError with a message per bad field."""
    errors: dict[str, list[str]] = {}
    data.name = normalize_name(data.name)
    if not data.name:
        errors["name"] = [_("Enter the customer's name.")]
    elif len(data.name) > 100:
        errors["name"] = [_("A name has at most 100 characters.")]
    if data.phone.strip():
        try:
            data.phone = normalize_phone(data.phone)
        except ValidationError as exc:
            errors["phone"] = exc.messages
    else:
        data.phone = ""
    data.email = (data.email or "").strip().lower()
    if data.email:
        try:
            validate_email(data.email)
        except ValidationError:
            errors["email"] = [_("Enter a valid email address.")]
    if data.gender not in Gender.values:
        errors["gender"] = [_("Choose a gender from the list.")]
    if data.stage not in Stage.values:
        errors["stage"] = [_("Choose a relationship stage from the list.")]
    sido = normalize_sido(data.sido)
    if sido is None:
        errors["sido"] = [_("“%(value)s” is not a Korean province (시/도).") % {"value": data.sido}]
    else:
        data.sido = sido
    data.sigungu = normalize_name(data.sigungu)[:30]
    data.address_line = normalize_name(data.address_line)[:200]
    data.postal_code = (data.postal_code or "").strip()
    if data.postal_code and not (len(data.postal_code) == 5 and data.postal_code.isdigit()):
        errors["postal_code"] = [_("A postal code has five digits.")]
    for key in ("birthday", "wedding"):
        parts: DateParts | None = getattr(data, key)
        if parts is not None:
            bad = validate_date_parts(year=parts.year, month=parts.month, day=parts.day, is_lunar=parts.is_lunar)
            if bad:
                errors[key] = [_("That date does not exist.")]
            elif parts.is_leap_month and not parts.is_lunar:
                errors[key] = [_("Only a lunar date can be in a leap month.")]
    tags = []
    for tag in data.tags:
        tag = normalize_name(tag)
        if tag and tag not in tags:
            if len(tag) > 40:
                errors["tags"] = [_("A tag has at most 40 characters.")]
            tags.append(tag)
    data.tags = tags
    if errors:
        raise ValidationError(errors)
    return data


def clean_consents(consents: list[ConsentInput], current: dict[tuple[str, str], bool] | None = None) -> list[ConsentInput]:
    """Check the consents and return them with the night-time rule applied.

    Advertising at night (21:00–08:00) needs its own consent on top of the advertising consent of the same channel
    (정보통신망법 §50): a night grant without the advertising consent is refused, and withdrawing the advertising
    consent withdraws the night-time one with it."""
    for consent in consents:
        if consent.channel not in Channel.values or consent.purpose not in Purpose.values:
            raise ValidationError({"consents": [_("Unknown consent channel or purpose.")]})
    state = dict(current or {})
    state.update({(c.channel, c.purpose): c.granted for c in consents})
    result = list(consents)
    for channel in Channel.values:
        marketing = state.get((channel, Purpose.MARKETING), False)
        night = state.get((channel, Purpose.NIGHT_MARKETING), False)
        if night and not marketing:
            asked = next((c for c in consents if (c.channel, c.purpose) == (channel, Purpose.NIGHT_MARKETING)), None)
            if asked is not None and asked.granted:
                raise ValidationError({"consents": [_("Night-time advertising needs the advertising consent of the same channel.")]})
            result = [c for c in result if (c.channel, c.purpose) != (channel, Purpose.NIGHT_MARKETING)]
            result.append(ConsentInput(channel, Purpose.NIGHT_MARKETING, False))
    return result


@transaction.atomic
def create_customer(*, actor: Actor, unit: BusinessUnit, data: CustomerInput, consents: list[ConsentInput] = (),
                    consent_source: str = ConsentSource.STORE, consent_method: str = "", consent_evidence: str = "",
                    joined_at: dt.datetime | None = None) -> Customer:
    clean_customer_input(data)
    consents = clean_consents(list(consents))
    now = timezone.now()
    customer = Customer.objects.create(
        name=data.name, gender=data.gender, stage=data.stage, home_unit=unit, joined_at=joined_at or now, created_by=actor.user,
        stage_set_by_staff=data.stage != Stage.PROSPECT,
    )
    Membership.objects.create(customer=customer, unit=unit, joined_at=customer.joined_at, source="registered")
    _apply_profile(customer, data)
    for consent in consents:
        if consent.granted:  # a consent never given needs no record; a withdrawal does
            _write_consent(customer, consent, actor=actor, unit=unit, source=consent_source, method=consent_method,
                           evidence=consent_evidence, at=now)
    audit.record(actor=actor, action="customer.create", obj=customer, fields=_filled_fields(data))
    return customer


@transaction.atomic
def update_customer(*, actor: Actor, customer: Customer, data: CustomerInput, consents: list[ConsentInput] | None = None,
                    unit: BusinessUnit | None = None, consent_source: str = ConsentSource.STORE, consent_method: str = "",
                    consent_evidence: str = "") -> Customer:
    clean_customer_input(data)
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    if consents is not None:
        consents = clean_consents(consents, current_consents(customer))
    before = snapshot(customer)
    if data.stage != customer.stage:
        customer.stage_set_by_staff = True  # a stage chosen by hand wins over the analysis rules from now on
    customer.name, customer.gender, customer.stage = data.name, data.gender, data.stage
    customer.save(update_fields=["name", "gender", "stage", "stage_set_by_staff", "updated_at"])
    _apply_profile(customer, data)
    changed = [key for key, value in snapshot(customer).items() if before.get(key) != value]
    if consents is not None:
        current = current_consents(customer)
        now = timezone.now()
        for consent in consents:
            if current.get((consent.channel, consent.purpose), False) != consent.granted:
                _write_consent(customer, consent, actor=actor, unit=unit, source=consent_source, method=consent_method,
                               evidence=consent_evidence, at=now)
                changed.append(f"consent.{consent.channel}.{consent.purpose}")
    if changed:
        audit.record(actor=actor, action="customer.update", obj=customer, fields=changed)
    return customer


def snapshot(customer: Customer) -> dict:
    """The comparable state of a profile, to know which fields an update changed (names only go to the audit)."""
    phone = customer.contacts.filter(kind=ContactKind.PHONE, is_primary=True).values_list("value", flat=True).first()
    email = customer.contacts.filter(kind=ContactKind.EMAIL, is_primary=True).values_list("value", flat=True).first()
    address = customer.addresses.filter(is_primary=True).values("sido", "sigungu", "line", "postal_code").first() or {}
    anniversaries = {
        a.kind: (a.year, a.month, a.day, a.is_lunar, a.is_leap_month) for a in customer.anniversaries.exclude(kind=AnniversaryKind.OTHER)
    }
    return {
        "name": customer.name, "gender": customer.gender, "stage": customer.stage,
        "phone": phone or "", "email": email or "",
        "address": tuple(address.get(k, "") for k in ("sido", "sigungu", "line", "postal_code")),
        "birthday": anniversaries.get(AnniversaryKind.BIRTHDAY), "wedding": anniversaries.get(AnniversaryKind.WEDDING),
        "tags": sorted(customer.tags.values_list("name", flat=True)),
    }


def profile_version(customer: Customer) -> str:
    """A fingerprint of the profile and its consents: a form posted with an older one was filled in on stale data."""
    import hashlib

    state = {**snapshot(customer), "consents": sorted(current_consents(customer).items())}
    return hashlib.sha256(repr(sorted(state.items())).encode()).hexdigest()[:16]


def _filled_fields(data: CustomerInput) -> list[str]:
    names = ["name"]
    for key in ("phone", "email", "gender", "sido", "sigungu", "address_line", "postal_code", "birthday", "wedding", "tags"):
        if getattr(data, key):
            names.append(key)
    return names


def _apply_profile(customer: Customer, data: CustomerInput) -> None:
    _set_primary_contact(customer, ContactKind.PHONE, data.phone)
    _set_primary_contact(customer, ContactKind.EMAIL, data.email)
    if data.sido or data.sigungu or data.address_line or data.postal_code:
        Address.objects.update_or_create(
            customer=customer, is_primary=True,
            defaults={"sido": data.sido, "sigungu": data.sigungu, "line": data.address_line, "postal_code": data.postal_code},
        )
    else:
        customer.addresses.filter(is_primary=True).delete()
    for kind, parts in ((AnniversaryKind.BIRTHDAY, data.birthday), (AnniversaryKind.WEDDING, data.wedding)):
        if parts is None:
            customer.anniversaries.filter(kind=kind).delete()
        else:
            Anniversary.objects.update_or_create(
                customer=customer, kind=kind,
                defaults={"year": parts.year, "month": parts.month, "day": parts.day, "is_lunar": parts.is_lunar,
                          "is_leap_month": parts.is_leap_month},
            )
    tags = [Tag.objects.get_or_create(name=name)[0] for name in data.tags]
    customer.tags.set(tags)


def _set_primary_contact(customer: Customer, kind: str, value: str) -> None:
    current = customer.contacts.filter(kind=kind, is_primary=True).first()
    if current and current.value == value:
        return
    if current:
        # The old number stays on file as a secondary contact: staff may still be asked about it.
        current.is_primary = False
        current.save(update_fields=["is_primary"])
    if not value:
        return
    existing = customer.contacts.filter(kind=kind, value=value).first()
    if existing:
        existing.is_primary = True
        existing.save(update_fields=["is_primary"])
    else:
        ContactPoint.objects.create(
            customer=customer, kind=kind, value=value, is_primary=True,
            last4=last_four(value) if kind == ContactKind.PHONE else "", label="mobile" if kind == ContactKind.PHONE else "",
        )


def _write_consent(customer, consent: ConsentInput, *, actor: Actor, unit, source, method, evidence, at) -> Consent:
    # The record names the marketing notice in force (privacy: each consent is complete evidence on its own).
    record = Consent.objects.create(
        customer=customer, kind=ConsentKind.MARKETING, notice=NoticeVersion.current(ConsentKind.MARKETING, at),
        channel=consent.channel, purpose=consent.purpose, granted=consent.granted, at=at,
        source=source, unit=unit, method=method[:60], evidence=evidence, recorded_by=actor.user,
    )
    # Messaging stops queued ads at once on a refusal and confirms every change within 14 days.
    events.emit("consent_changed", consent=record)
    return record


def current_consents(customer: Customer) -> dict[tuple[str, str], bool]:
    state: dict[tuple[str, str], bool] = {}
    for consent in customer.consents.order_by("at", "-granted", "id"):
        state[(consent.channel, consent.purpose)] = consent.granted
    return state


@transaction.atomic
def set_consent(*, actor: Actor, customer: Customer, channel: str, purpose: str, granted: bool, unit: BusinessUnit | None,
                source: str, method: str = "", evidence: str = "") -> Consent:
    current = current_consents(customer)
    changes = clean_consents([ConsentInput(channel, purpose, granted)], current)
    if source not in ConsentSource.values:
        raise ValidationError({"source": [_("Unknown consent source.")]})
    now = timezone.now()
    written = None
    for change in changes:
        if current.get((change.channel, change.purpose), False) == change.granted and (change.channel, change.purpose) != (channel, purpose):
            continue  # the night-time consent was not granted: nothing to withdraw
        record = _write_consent(customer, change, actor=actor, unit=unit, source=source, method=method, evidence=evidence, at=now)
        if (change.channel, change.purpose) == (channel, purpose):
            written = record
        audit.record(actor=actor, action="consent.grant" if change.granted else "consent.withdraw", obj=customer,
                     fields=[f"consent.{change.channel}.{change.purpose}"])
    return written


@transaction.atomic
def add_note(*, actor: Actor, customer: Customer, unit: BusinessUnit | None, text: str, kind: str = InteractionKind.NOTE,
             at: dt.datetime | None = None, sensitive: bool = False) -> Interaction:
    text = (text or "").strip()
    if not text:
        raise ValidationError({"text": [_("Write something first.")]})
    if len(text) > 5000:
        raise ValidationError({"text": [_("A note has at most 5,000 characters.")]})
    if kind not in (InteractionKind.NOTE, InteractionKind.VISIT):
        raise ValidationError({"kind": [_("Only notes and visits are written by hand.")]})
    if sensitive:  # the text only encrypted (privacy); the timeline shows that a sensitive note exists
        entry = Interaction.objects.create(customer=customer, kind=kind, occurred_at=at or timezone.now(), unit=unit,
                                           summary=SENSITIVE_NOTE_MARK, sensitive=True, sensitive_text=text, created_by=actor.user)
    else:
        entry = Interaction.objects.create(
            customer=customer, kind=kind, occurred_at=at or timezone.now(), unit=unit, summary=text[:300], body=text,
            created_by=actor.user,
        )
    audit.record(actor=actor, action=f"customer.{kind}", obj=customer, fields=["timeline"])
    return entry


@transaction.atomic
def add_preference(*, actor: Actor, customer: Customer, unit: BusinessUnit | None, topic: str, value: str) -> Preference:
    topic, value = normalize_name(topic), normalize_name(value)
    errors = {}
    if not topic:
        errors["topic"] = [_("Name the topic, e.g. room or bread.")]
    if not value:
        errors["value"] = [_("Write the preference.")]
    if errors:
        raise ValidationError(errors)
    pref = Preference.objects.create(customer=customer, topic=topic[:60], value=value[:200], unit=unit,
                                     recorded_by=actor.user, recorded_at=timezone.now())
    audit.record(actor=actor, action="customer.preference", obj=customer, fields=["preferences"])
    return pref


def ensure_membership(*, customer_id: int, unit_id: int, at: dt.datetime, source: str) -> None:
    Membership.objects.get_or_create(customer_id=customer_id, unit_id=unit_id, defaults={"joined_at": at, "source": source})


@transaction.atomic
def link_to_unit(*, actor: Actor, customer: Customer, unit: BusinessUnit) -> None:
    """A customer of another unit registers at this one too (the counter found them by full phone number)."""
    ensure_membership(customer_id=customer.pk, unit_id=unit.pk, at=timezone.now(), source="linked")
    audit.record(actor=actor, action="customer.link_unit", obj=customer, fields=["memberships"])


def on_order_recorded(*, order, actor: Actor | None = None) -> None:
    """Reaction to ``order_recorded``: the purchase joins the timeline and the customer becomes known to the unit."""
    if order.customer_id is None:
        return
    is_refund = order.kind == "refund"
    count = order.lines.count() if not hasattr(order, "_line_count") else order._line_count
    Interaction.objects.create(
        customer_id=order.customer_id, kind=InteractionKind.REFUND if is_refund else InteractionKind.PURCHASE,
        occurred_at=order.ordered_at, unit_id=order.unit_id, channel=order.channel, amount=order.total,
        summary=order.timeline_summary if hasattr(order, "timeline_summary") else f"{count} lines",
        ref_type="sales.order", ref_id=order.pk, created_by=order.created_by,
    )
    ensure_membership(customer_id=order.customer_id, unit_id=order.unit_id, at=order.ordered_at, source="purchase")
    if not is_refund:
        # First purchase turns a prospect into a customer; later stages are set by analysis rules or staff.
        Customer.objects.filter(pk=order.customer_id, stage=Stage.PROSPECT).update(stage=Stage.CUSTOMER)


def apply_rule_stages(*, table: str, customer_column: str = "customer_id", stage_column: str = "suggested_stage") -> int:
    """Set the stage the analysis rules suggest (a column of ``table``, one row per customer) on every live customer
    whose stage staff did not choose by hand; partner is staff's call and is never changed. One set-based UPDATE;
    returns the number of customers whose stage changed."""
    from django.db import connection

    quote = connection.ops.quote_name
    customers = quote(Customer._meta.db_table)
    source, key, stage = quote(table), quote(customer_column), quote(stage_column)
    suggestion = f"SELECT s.{stage} FROM {source} s WHERE s.{key} = {customers}.id"
    allowed = [value for value in Stage.values if value != Stage.PARTNER]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {customers} SET stage = ({suggestion}) "
            f"WHERE NOT stage_set_by_staff AND merged_into_id IS NULL AND stage <> %s "
            f"AND EXISTS (SELECT 1 FROM {source} s WHERE s.{key} = {customers}.id "
            f"AND s.{stage} IN ({', '.join(['%s'] * len(allowed))}) AND s.{stage} <> {customers}.stage)",
            [Stage.PARTNER.value, *allowed])
        return cursor.rowcount
