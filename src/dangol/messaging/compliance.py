"""The compliance engine: ONE decision function that every message goes through, and its set-based twin.

``decide(facts, channel=, kind=, subtype=, now=)`` is the rule book, in plain Python over the ``Facts`` of one
customer. ``annotate_decisions(customers, ...)`` computes the very same verdict in SQL for a whole queryset (send_bulk,
preview and the dispatcher's last check before sending use it), and ``facts_for`` gathers the facts of a few customers
for ``decide``. tests/messaging/test_compliance_properties.py proves both agree on random data.

The rules, in the order they apply (the first that matches decides):
 1. AlimTalk never carries an ad (blocked: ``alimtalk_ad``).
 2. Erased customers (``erased``), merged records (``merged``) and customers without an address on the channel
    (``no_address``) get nothing; nor does anything on the global suppression list (``suppressed``).
 3. Information (order, points, case updates, consent notices) goes out from here on (``info``).
 4. Ads: never to a customer whose processing is suspended (``processing_suspended``); the latest consent record of the
    channel decides — a refusal or withdrawal always wins (``refused``); without any record, only the transaction
    exception (settings flag, last order within 6 months) allows it (``transaction_exception``), else ``no_consent``.
 5. Frequency caps per customer and channel (``capped``).
 6. Night: SMS/LMS/MMS, KakaoTalk and calls between 21:00 and 08:00 Asia/Seoul (Kakao brand messages from 20:50) are
    held until 08:00 (``night``) unless the customer gave the separate night-time consent. Email and post are exempt.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Iterable
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import BooleanField, CharField, Count, Exists, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.db.models import Case, When

from dangol.customers.models import Address, Consent, ContactKind, ContactPoint, Customer, Purpose
from dangol.sales.models import Order

from .models import Channel, FrequencyCap, Kind, Message, Status, Subtype, Suppression

SEOUL = ZoneInfo("Asia/Seoul")
NIGHT_CHANNELS = {Channel.SMS, Channel.KAKAO, Channel.PHONE}
MORNING = dt.time(8, 0)
NIGHT_FROM = dt.time(21, 0)
BRAND_NIGHT_FROM = dt.time(20, 50)
# Messages that count against a frequency cap: everything on its way or gone, not what was blocked or failed.
CAP_STATUSES = [Status.QUEUED, Status.HELD, Status.CLAIMED, Status.SENT, Status.DELIVERED, Status.UNCERTAIN]

SEND, HOLD, BLOCK = "send", "hold", "block"


@dataclass(frozen=True)
class Facts:
    """What the rules need to know about one customer on one channel."""

    customer_id: int | None
    erased: bool = False
    merged: bool = False
    processing_suspended: bool = False
    has_address: bool = True
    suppressed: bool = False
    marketing: bool | None = None  # latest consent record of the channel: True, False (refused/withdrawn), None (never)
    night: bool | None = None
    last_order_at: dt.datetime | None = None
    capped: bool = False


@dataclass(frozen=True)
class Verdict:
    outcome: str  # send | hold | block
    reason: str
    release_at: dt.datetime | None = None


def is_night(now: dt.datetime, subtype: str = "") -> bool:
    local = now.astimezone(SEOUL).time()
    start = BRAND_NIGHT_FROM if subtype == Subtype.BRAND else NIGHT_FROM
    return local >= start or local < MORNING


def next_morning(now: dt.datetime) -> dt.datetime:
    """08:00 Asia/Seoul after ``now`` (today's if before 08:00), in UTC."""
    local = now.astimezone(SEOUL)
    morning = local.replace(hour=8, minute=0, second=0, microsecond=0)
    if local >= morning:
        morning += dt.timedelta(days=1)
    return morning.astimezone(dt.timezone.utc)


def months_before(now: dt.datetime, months: int) -> dt.datetime:
    year, month = now.year, now.month - months
    while month <= 0:
        month += 12
        year -= 1
    day = min(now.day, [31, 29 if year % 4 == 0 and (year % 100 or year % 400 == 0) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1])
    return now.replace(year=year, month=month, day=day)


def exception_cutoff(now: dt.datetime) -> dt.datetime | None:
    if not settings.MESSAGING_TRANSACTION_EXCEPTION:
        return None
    return months_before(now, settings.MESSAGING_TRANSACTION_EXCEPTION_MONTHS)


def decide(facts: Facts, *, channel: str, kind: str, subtype: str, now: dt.datetime) -> Verdict:
    """The rule book (see the module docstring). Pure: same facts, same clock, same verdict."""
    if channel == Channel.KAKAO and kind == Kind.AD and subtype == Subtype.ALIMTALK:
        return Verdict(BLOCK, "alimtalk_ad")
    if facts.erased:
        return Verdict(BLOCK, "erased")
    if facts.merged:
        return Verdict(BLOCK, "merged")
    if not facts.has_address:
        return Verdict(BLOCK, "no_address")
    if facts.suppressed:
        return Verdict(BLOCK, "suppressed")
    if kind == Kind.INFO:
        return Verdict(SEND, "info")
    if facts.processing_suspended:
        return Verdict(BLOCK, "processing_suspended")
    if facts.marketing is False:
        return Verdict(BLOCK, "refused")
    basis = "consent"
    if facts.marketing is None:
        cutoff = exception_cutoff(now)
        if cutoff is None or facts.last_order_at is None or facts.last_order_at < cutoff:
            return Verdict(BLOCK, "no_consent")
        basis = "transaction_exception"
    if facts.capped:
        return Verdict(BLOCK, "capped")
    if channel in NIGHT_CHANNELS and is_night(now, subtype) and facts.night is not True:
        return Verdict(HOLD, "night", next_morning(now))
    return Verdict(SEND, basis)


# --- where the facts come from ---------------------------------------------------------------------------------

def _cap(channel: str) -> FrequencyCap | None:
    return FrequencyCap.objects.filter(channel=channel).first()


def _address_kind(channel: str) -> str | None:
    if channel in (Channel.SMS, Channel.KAKAO, Channel.PHONE):
        return ContactKind.PHONE
    if channel == Channel.EMAIL:
        return ContactKind.EMAIL
    return None


def addresses_for(customer_ids: Iterable[int], channel: str) -> dict[int, str]:
    """The primary address of each customer on the channel (phone E.164, email, or the postal address line)."""
    ids = list(customer_ids)
    kind = _address_kind(channel)
    if kind:
        rows = ContactPoint.objects.filter(customer_id__in=ids, kind=kind, is_primary=True).values_list("customer_id", "value")
        return dict(rows)
    rows = Address.objects.filter(customer_id__in=ids, is_primary=True).exclude(line="").values_list(
        "customer_id", "postal_code", "sido", "sigungu", "line")
    return {cid: " ".join(p for p in (pc, sido, sgg, line) if p) for cid, pc, sido, sgg, line in rows}


def facts_for(customer_ids: Iterable[int], *, channel: str, now: dt.datetime) -> dict[int, Facts]:
    """The facts of a few customers, in a handful of queries (send() uses it for one customer)."""
    ids = list(customer_ids)
    addresses = addresses_for(ids, channel)
    customers = {c["id"]: c for c in Customer.objects.filter(pk__in=ids).values("id", "erased_at", "merged_into_id", "processing_suspended")}
    latest: dict[tuple[int, str], bool] = {}
    for cid, purpose, granted in (Consent.objects.filter(customer_id__in=ids, channel=channel)
                                  .order_by("-at", "granted", "-id").values_list("customer_id", "purpose", "granted")):
        latest.setdefault((cid, purpose), granted)
    suppressed = set(Suppression.objects.filter(Q(channel="") | Q(channel=channel), customer_id__in=ids).values_list("customer_id", flat=True))
    by_address = set(Suppression.objects.filter(Q(channel="") | Q(channel=channel), address__in=[a for a in addresses.values() if a])
                     .values_list("address", flat=True))
    last_orders = {}
    for cid, at in Order.objects.filter(customer_id__in=ids, kind="sale").values_list("customer_id", "ordered_at"):
        if cid not in last_orders or at > last_orders[cid]:
            last_orders[cid] = at
    cap = _cap(channel)
    recent: dict[int, int] = {}
    if cap:
        since = now - dt.timedelta(days=cap.period_days)
        for cid in Message.objects.filter(customer_id__in=ids, channel=channel, kind=Kind.AD, status__in=CAP_STATUSES,
                                          created_at__gte=since).values_list("customer_id", flat=True):
            recent[cid] = recent.get(cid, 0) + 1
    result = {}
    for cid in ids:
        row = customers.get(cid)
        if row is None:
            continue
        address = addresses.get(cid, "")
        result[cid] = Facts(
            customer_id=cid, erased=row["erased_at"] is not None, merged=row["merged_into_id"] is not None,
            processing_suspended=row["processing_suspended"], has_address=bool(address),
            suppressed=cid in suppressed or (_address_kind(channel) is not None and address in by_address),
            marketing=latest.get((cid, Purpose.MARKETING)), night=latest.get((cid, Purpose.NIGHT_MARKETING)),
            last_order_at=last_orders.get(cid), capped=bool(cap) and recent.get(cid, 0) >= cap.max_messages,
        )
    return result


# --- the same rules in SQL ----------------------------------------------------------------------------------------

def _address_subquery(channel: str):
    kind = _address_kind(channel)
    if kind:
        return Subquery(ContactPoint.objects.filter(customer=OuterRef("pk"), kind=kind, is_primary=True).values("value")[:1])
    return Subquery(Address.objects.filter(customer=OuterRef("pk"), is_primary=True).exclude(line="").values("line")[:1])


def annotate_decisions(customers: QuerySet, *, channel: str, kind: str, subtype: str, now: dt.datetime) -> QuerySet:
    """``customers`` annotated with ``m_outcome`` and ``m_reason`` — ``decide`` in one SQL statement (and ``m_to``,
    the address for phone and email channels). Parity with ``decide`` is tested property-based."""

    def latest(purpose):
        return Subquery(Consent.objects.filter(customer=OuterRef("pk"), channel=channel, purpose=purpose)
                        .order_by("-at", "granted", "-id").values("granted")[:1], output_field=BooleanField())

    address = _address_subquery(channel)
    channel_q = Q(channel="") | Q(channel=channel)
    qs = customers.annotate(
        m_to=Coalesce(address, Value(""), output_field=CharField()),
        m_mk=latest(Purpose.MARKETING),
        m_night=latest(Purpose.NIGHT_MARKETING),
        m_supp_c=Exists(Suppression.objects.filter(channel_q, customer=OuterRef("pk"))),
    )
    kind_of_address = _address_kind(channel)
    if kind_of_address:
        qs = qs.annotate(m_supp_a=Exists(Suppression.objects.filter(channel_q, address=OuterRef("m_to")).exclude(address="")))
    else:
        qs = qs.annotate(m_supp_a=Value(False, output_field=BooleanField()))
    cutoff = exception_cutoff(now)
    if cutoff is not None:
        qs = qs.annotate(m_recent_order=Exists(Order.objects.filter(customer=OuterRef("pk"), kind="sale", ordered_at__gte=cutoff)))
    cap = _cap(channel)
    if cap:
        since = now - dt.timedelta(days=cap.period_days)
        qs = qs.annotate(m_recent_ads=Coalesce(Subquery(
            Message.objects.filter(customer=OuterRef("pk"), channel=channel, kind=Kind.AD, status__in=CAP_STATUSES, created_at__gte=since)
            .order_by().values("customer").annotate(n=Count("id")).values("n")[:1]), Value(0)))

    whens = []
    if channel == Channel.KAKAO and kind == Kind.AD and subtype == Subtype.ALIMTALK:
        whens.append((Q(pk__isnull=False), BLOCK, "alimtalk_ad"))
    whens += [
        (Q(erased_at__isnull=False), BLOCK, "erased"),
        (Q(merged_into__isnull=False), BLOCK, "merged"),
        (Q(m_to=""), BLOCK, "no_address"),
        (Q(m_supp_c=True) | Q(m_supp_a=True), BLOCK, "suppressed"),
    ]
    if kind == Kind.INFO:
        whens.append((Q(pk__isnull=False), SEND, "info"))
    else:
        whens += [(Q(processing_suspended=True), BLOCK, "processing_suspended"), (Q(m_mk=False), BLOCK, "refused")]
        if cutoff is None:
            whens.append((Q(m_mk__isnull=True), BLOCK, "no_consent"))
        else:
            whens.append((Q(m_mk__isnull=True, m_recent_order=False), BLOCK, "no_consent"))
        if cap:
            whens.append((Q(m_recent_ads__gte=cap.max_messages), BLOCK, "capped"))
        if channel in NIGHT_CHANNELS and is_night(now, subtype):
            whens.append((Q(m_night__isnull=True) | Q(m_night=False), HOLD, "night"))
        whens.append((Q(m_mk__isnull=True), SEND, "transaction_exception"))
        whens.append((Q(pk__isnull=False), SEND, "consent"))
    return qs.annotate(
        m_outcome=Case(*[When(q, then=Value(o)) for q, o, _ in whens], default=Value(SEND), output_field=CharField()),
        m_reason=Case(*[When(q, then=Value(r)) for q, _, r in whens], default=Value("consent"), output_field=CharField()),
    )
