"""Reads of customers, always through the user's business-unit scope.

The scope rule: admins see every customer of the group. Managers and staff see a customer when the customer
is a member of one of their units (registered there or bought there); everything else stays invisible to them,
including in search and duplicate warnings, which then only say that a match exists elsewhere in the group.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet, Subquery

from dangol.core.models import User
from dangol.core.phones import looks_like_phone_query, try_normalize_phone
from dangol.core.selectors import units_for

from .models import Address, Channel, ContactKind, ContactPoint, Customer, Interaction, Membership, Preference, Purpose, Stage, Tag


def customers_for(user: User) -> QuerySet[Customer]:
    """The customers the user may see; records merged into another never show (their survivor does)."""
    live = Customer.objects.filter(merged_into__isnull=True)
    if user.sees_all_units:
        return live
    return live.filter(
        Exists(Membership.objects.filter(customer=OuterRef("pk"), unit__in=units_for(user)))
    )


def with_list_data(qs: QuerySet[Customer]) -> QuerySet[Customer]:
    """What a list row shows: the primary phone (to mask) and the primary address, in two extra queries."""
    return qs.select_related("home_unit").prefetch_related(
        Prefetch("contacts", queryset=ContactPoint.objects.filter(is_primary=True), to_attr="primary_contacts"),
        "addresses",
    )


def with_list_columns(qs: QuerySet[Customer]) -> QuerySet[Customer]:
    """What a list row shows, as columns of one query (primary phone and email, region): the API's lists, where
    a lookup at the counter must stay cheap. Tags still come in a prefetch."""
    def primary(kind):
        return Subquery(ContactPoint.objects.filter(customer=OuterRef("pk"), kind=kind, is_primary=True).values("value")[:1])

    def address(field):
        return Subquery(Address.objects.filter(customer=OuterRef("pk"), is_primary=True).values(field)[:1])

    return qs.select_related("home_unit").annotate(
        primary_phone=primary(ContactKind.PHONE), primary_email=primary(ContactKind.EMAIL),
        region_sido=address("sido"), region_sigungu=address("sigungu"),
    )


def phone_lookup(*, user: User, phone_e164: str = "", last4: str = "", limit: int = 50) -> list[Customer]:
    """The counter's lookup in one hand-written query (the hot path of the API: the ORM's query building cost more
    than the database did). Rows carry primary_phone, primary_email, region_sido, region_sigungu, home_unit_code
    and tag_names; newest first, scoped like customers_for."""
    if bool(phone_e164) == bool(last4):
        raise ValueError("give a phone number or its last four digits")
    match = "cp.value = %s" if phone_e164 else "cp.last4 = %s"
    scope, scope_params = "", []
    if not user.sees_all_units:
        scope_params = list(units_for(user).values_list("id", flat=True)) or [0]
        scope = ("AND EXISTS (SELECT 1 FROM customers_membership m WHERE m.customer_id = c.id AND m.unit_id IN (%s))"
                 % ", ".join(["%s"] * len(scope_params)))
    sql = f"""
        SELECT c.id, c.name, c.stage, c.joined_at, c.home_unit_id, u.code AS home_unit_code,
               (SELECT p.value FROM customers_contactpoint p WHERE p.customer_id = c.id AND p.kind = 'phone'
                  AND p.is_primary = %s LIMIT 1) AS primary_phone,
               (SELECT e.value FROM customers_contactpoint e WHERE e.customer_id = c.id AND e.kind = 'email'
                  AND e.is_primary = %s LIMIT 1) AS primary_email,
               a.sido AS region_sido, a.sigungu AS region_sigungu
        FROM customers_customer c
        LEFT JOIN core_businessunit u ON u.id = c.home_unit_id
        LEFT JOIN customers_address a ON a.customer_id = c.id AND a.is_primary = %s
        WHERE c.id IN (SELECT cp.customer_id FROM customers_contactpoint cp WHERE cp.kind = 'phone' AND {match})
        AND c.merged_into_id IS NULL
        {scope}
        ORDER BY c.joined_at DESC, c.id DESC
        LIMIT %s"""
    ordered = [True, True, True, phone_e164 or last4, *scope_params, limit]  # in the order of the placeholders
    rows = list(Customer.objects.raw(sql, ordered))
    if rows:
        tags: dict[int, list[str]] = {}
        for customer_id, name in Tag.objects.filter(customers__in=[r.pk for r in rows]).values_list("customers__id", "name").order_by("name"):
            tags.setdefault(customer_id, []).append(name)
        for row in rows:
            row.tag_names = tags.get(row.pk, [])
    return rows


def search_customers(*, user: User, query: str, limit: int | None = None) -> QuerySet[Customer]:
    """Find by name (part of it), by a full phone number in any format, or by the last four digits of a phone."""
    query = (query or "").strip()
    limit = limit or settings.SEARCH_RESULT_LIMIT
    scope = customers_for(user)
    if not query:
        return Customer.objects.none()
    if looks_like_phone_query(query):
        digits = "".join(ch for ch in query if ch.isdigit())
        if len(digits) == 4:
            contacts = ContactPoint.objects.filter(kind=ContactKind.PHONE, last4=digits)
        else:
            e164 = try_normalize_phone(query)
            if not e164:
                return Customer.objects.none()
            contacts = ContactPoint.objects.filter(kind=ContactKind.PHONE, value=e164)
        qs = scope.filter(Exists(contacts.filter(customer=OuterRef("pk"))))
    elif "@" in query:
        qs = scope.filter(Exists(ContactPoint.objects.filter(customer=OuterRef("pk"), kind=ContactKind.EMAIL, value=query.lower())))
    else:
        qs = scope.filter(name__icontains=" ".join(query.split()))
    return with_list_data(qs.order_by("name", "id"))[:limit]


@dataclass
class PhoneMatches:
    visible: list[Customer]
    elsewhere: int  # matches in units the user cannot see


def customers_with_phone(*, user: User, phone_e164: str, exclude_id: int | None = None) -> PhoneMatches:
    """Who already has this phone number: the duplicate warning before a save."""
    all_matches = Customer.objects.filter(contacts__kind=ContactKind.PHONE, contacts__value=phone_e164,
                                          merged_into__isnull=True).distinct()
    if exclude_id:
        all_matches = all_matches.exclude(pk=exclude_id)
    visible_qs = customers_for(user).filter(pk__in=all_matches.values("pk"))
    visible = list(with_list_data(visible_qs).order_by("id")[:10])
    elsewhere = 0 if user.sees_all_units else all_matches.count() - visible_qs.count()
    return PhoneMatches(visible=visible, elsewhere=elsewhere)


def get_customer_for(*, user: User, customer_id: int) -> Customer:
    """The 360° page's customer, or Customer.DoesNotExist when outside the user's scope."""
    return customers_for(user).select_related("home_unit").prefetch_related(
        "contacts", "addresses", "anniversaries", "tags", "memberships__unit",
        Prefetch("preferences", queryset=Preference.objects.select_related("unit", "recorded_by")),
    ).get(pk=customer_id)


def acting_unit(*, user: User, customer: Customer):
    """The business unit a staff action on this customer is recorded at (consent evidence, notes): the customer's
    home unit when the user works there, else the first unit the two share; None for admins outside them."""
    shared = units_for(user).filter(memberships__customer=customer).order_by("name")
    if customer.home_unit_id and shared.filter(pk=customer.home_unit_id).exists():
        return customer.home_unit
    return shared.first()


def consent_overview(customer: Customer) -> list[dict]:
    """The consent in force per channel and purpose, with when, where and how it was given or withdrawn."""
    latest = {}
    for consent in customer.consents.select_related("unit", "recorded_by").order_by("at", "-granted", "id"):
        latest[(consent.channel, consent.purpose)] = consent
    return [{"channel": channel, "channel_label": channel_label, "purpose": purpose, "purpose_label": purpose_label,
             "record": latest.get((channel, purpose))}
            for channel, channel_label in Channel.choices for purpose, purpose_label in Purpose.choices]


def consent_grid(customer: Customer) -> list[dict]:
    """consent_overview grouped by channel: one row per channel, one cell per purpose."""
    rows: dict[str, dict] = {}
    for item in consent_overview(customer):
        row = rows.setdefault(item["channel"], {"channel": item["channel"], "channel_label": item["channel_label"], "purposes": []})
        row["purposes"].append(item)
    return list(rows.values())


@dataclass
class TimelinePage:
    entries: list[Interaction]
    next_cursor: str | None  # pass as ``before`` for the older entries; None on the last page

    def __iter__(self):
        return iter(self.entries)

    @property
    def has_next(self) -> bool:
        return self.next_cursor is not None


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def _parse_cursor(cursor: str | None):
    """'<microseconds since the epoch>_<id>' → (datetime, id); anything malformed is the first page."""
    try:
        micros, entry_id = (int(part) for part in (cursor or "").split("_", 1))
        return _EPOCH + dt.timedelta(microseconds=micros), entry_id
    except (ValueError, OverflowError):
        return None


def timeline_page(*, user: User, customer: Customer, before: str | None = None) -> TimelinePage:
    """Newest first, a page at a time, continuing strictly after the last entry shown (a cursor, not a page number:
    an entry added meanwhile neither repeats nor hides one). Staff see entries of their own units and entries tied
    to no unit."""
    qs = Interaction.objects.filter(customer=customer).select_related("unit", "created_by")
    if not user.sees_all_units:
        qs = qs.filter(Q(unit__isnull=True) | Q(unit__in=units_for(user)))
    position = _parse_cursor(before)
    if position:
        at, entry_id = position
        qs = qs.filter(Q(occurred_at__lt=at) | Q(occurred_at=at, id__lt=entry_id))
    size = settings.TIMELINE_PAGE_SIZE
    entries = list(qs.order_by("-occurred_at", "-id")[: size + 1])
    next_cursor = None
    if len(entries) > size:
        entries = entries[:size]
        last = entries[-1]
        micros = (last.occurred_at - _EPOCH) // dt.timedelta(microseconds=1)  # exact: no float rounding
        next_cursor = f"{micros}_{last.pk}"
    return TimelinePage(entries=entries, next_cursor=next_cursor)


def stage_counts(user: User) -> dict[str, int]:
    from django.db.models import Count

    counts = dict(customers_for(user).values_list("stage").annotate(n=Count("id")).values_list("stage", "n"))
    return {value: counts.get(value, 0) for value in Stage.values}
