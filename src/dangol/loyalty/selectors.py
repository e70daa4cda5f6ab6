"""Reads of the loyalty program. Points are group-wide (earned anywhere, spent anywhere); lists of entries follow the
timeline's rule: staff see the entries of their own units and those tied to no unit."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import BigIntegerField, Count, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from dangol.core.models import User
from dangol.core.selectors import units_for
from dangol.customers.models import Customer

from . import db, rules
from .models import Account, Coupon, CouponStatus, LedgerEntry, Lot, Program, Referral, ReferralStatus, Tier, TierChange
from .tiers import qualifying_values


@dataclass
class PointsSummary:
    member_number: str
    referral_code: str
    balance: int  # what can be spent now
    owed: int
    expiring_points: int  # within the program's notice window
    first_expiry: dt.datetime | None
    tier: Tier | None
    tier_since: dt.datetime | None
    downgrade_at: dt.datetime | None
    next_tier: Tier | None = None
    to_next_tier: int = 0  # KRW or points still missing
    tier_basis: str = "spend"
    point_value_krw: int = 1
    expiring_days: int = 30
    min_redeem_points: int = 1

    @property
    def member_number_display(self) -> str:
        return rules.display_member_number(self.member_number)


def balance_of(customer_id: int, now: dt.datetime | None = None) -> int:
    """The ledger's sum, less what is past its expiry date and not yet closed by the expiry job (it cannot be spent)."""
    return _numbers(customer_id, now or timezone.now(), 0)[0]


def balance_expression(now: dt.datetime, customer: str = "pk"):
    """``balance_of`` as an SQL expression for the customers of an outer query (``OuterRef(customer)``): segments
    and message placeholders show the balance the counter shows, also before the hourly expiry job has run."""
    total = LedgerEntry.objects.filter(customer_id=OuterRef(customer)).values("customer_id") \
        .annotate(points_sum=Sum("points")).values("points_sum")
    overdue = Lot.objects.filter(customer_id=OuterRef(customer), remaining__gt=0, expires_at__lte=now) \
        .values("customer_id").annotate(remaining_sum=Sum("remaining")).values("remaining_sum")
    zero = Value(0, output_field=BigIntegerField())
    return (Coalesce(Subquery(total, output_field=BigIntegerField()), zero, output_field=BigIntegerField())
            - Coalesce(Subquery(overdue, output_field=BigIntegerField()), zero, output_field=BigIntegerField()))


def _numbers(customer_id: int, now: dt.datetime, soon_days: int) -> tuple[int, int, dt.datetime | None]:
    """(balance, points expiring within ``soon_days``, the first of those expiries) in one query."""
    entries, lots = LedgerEntry._meta.db_table, Lot._meta.db_table
    until = now + dt.timedelta(days=soon_days)
    total, overdue, soon, first = db.fetch(f"""
        SELECT (SELECT COALESCE(SUM(points), 0) FROM {entries} WHERE customer_id = %s),
               (SELECT COALESCE(SUM(remaining), 0) FROM {lots} WHERE customer_id = %s AND remaining > 0 AND expires_at <= %s),
               (SELECT COALESCE(SUM(remaining), 0) FROM {lots} WHERE customer_id = %s AND remaining > 0 AND expires_at > %s
                  AND expires_at <= %s),
               (SELECT MIN({db.epoch('expires_at')}) FROM {lots} WHERE customer_id = %s AND remaining > 0 AND expires_at > %s
                  AND expires_at <= %s)""",
        [customer_id, customer_id, db.sql_time(now), customer_id, db.sql_time(now), db.sql_time(until),
         customer_id, db.sql_time(now), db.sql_time(until)])[0]
    first_expiry = dt.datetime.fromtimestamp(int(first), dt.timezone.utc) if first is not None else None
    return int(total) - int(overdue), int(soon), first_expiry


def points_summary(account: Account, *, now: dt.datetime | None = None, with_progress: bool = True,
                   program: Program | None = None) -> PointsSummary:
    now = now or timezone.now()
    program = program or Program.current()
    customer_id = account.pk
    balance, soon, first = _numbers(customer_id, now, program.expiring_soon_days)
    tiers = list(Tier.objects.filter(Q(is_active=True) | Q(pk=account.tier_id)).order_by("rank"))
    tier = next((t for t in tiers if t.pk == account.tier_id), None)
    summary = PointsSummary(
        member_number=account.member_number, referral_code=account.referral_code, balance=balance,
        owed=account.points_owed, expiring_points=soon, first_expiry=first, tier=tier,
        tier_since=account.tier_since, downgrade_at=account.downgrade_at, tier_basis=program.tier_basis,
        point_value_krw=program.point_value_krw, expiring_days=program.expiring_soon_days,
        min_redeem_points=program.min_redeem_points,
    )
    if with_progress:
        higher = next((t for t in tiers if t.is_active and t.rank > (tier.rank if tier else -1)), None)
        if higher is not None:
            since = now - dt.timedelta(days=program.tier_period_days)
            value = qualifying_values([customer_id], since=since, until=now, basis=program.tier_basis).get(customer_id, 0)
            summary.next_tier, summary.to_next_tier = higher, max(0, higher.threshold - int(value))
    return summary


def entries_for(user: User | None, customer_id: int) -> QuerySet[LedgerEntry]:
    qs = LedgerEntry.objects.filter(customer_id=customer_id).select_related("unit", "created_by", "order")
    if user is not None and not user.sees_all_units:
        qs = qs.filter(Q(unit__isnull=True) | Q(unit__in=units_for(user)))
    return qs.order_by("-at", "-id")


def wallet(customer_id: int, *, now: dt.datetime | None = None) -> list[Coupon]:
    """The coupons the customer can use now, first to expire first."""
    now = now or timezone.now()
    return list(Coupon.objects.filter(customer_id=customer_id, status=CouponStatus.ACTIVE, expires_at__gt=now)
                .select_related("template").prefetch_related("template__units").order_by("expires_at", "pk"))


def tier_history(customer_id: int, limit: int = 10) -> list[TierChange]:
    return list(TierChange.objects.filter(customer_id=customer_id).select_related("from_tier", "to_tier")[:limit])


@dataclass
class ReferralOverview:
    code: str
    rewarded: int = 0
    pending: int = 0
    joined_with: Referral | None = None
    may_link: bool = False
    refused: list[Referral] = field(default_factory=list)


def referral_overview(account: Account, customer: Customer, *, now: dt.datetime | None = None,
                      program: Program | None = None) -> ReferralOverview:
    now = now or timezone.now()
    program = program or Program.current()
    made = dict(Referral.objects.filter(referrer_id=customer.pk).order_by().values("status").annotate(n=Count("id"))
                .values_list("status", "n"))
    joined = Referral.objects.filter(referred_id=customer.pk).exclude(status=ReferralStatus.REFUSED).first()
    may_link = joined is None and customer.joined_at >= now - dt.timedelta(days=program.referral_join_days)
    return ReferralOverview(code=account.referral_code, rewarded=int(made.get(ReferralStatus.REWARDED, 0)),
                            pending=int(made.get(ReferralStatus.PENDING, 0)), joined_with=joined, may_link=may_link)


def find_member(raw_number: str) -> Customer | None:
    """The customer (their surviving record, when merged) holding this member number, in any business unit."""
    number = rules.normalize_member_number(raw_number)
    if not number:
        return None
    account = Account.objects.filter(member_number=number).select_related("customer").first()
    if account is None:
        return None
    customer = account.customer
    for _step in range(50):
        if customer.merged_into_id is None:
            return customer
        customer = Customer.objects.get(pk=customer.merged_into_id)
    return None


@dataclass
class CardData:
    customer: Customer
    account: Account
    summary: PointsSummary
    coupons: list[Coupon]
    program: Program


def member_card(member_number: str, *, now: dt.datetime | None = None) -> CardData | None:
    """What the member card page shows; None when the number belongs to nobody."""
    customer = find_member(member_number)
    if customer is None:
        return None
    account = Account.objects.filter(pk=customer.pk).first()
    if account is None:
        return None
    return CardData(customer=customer, account=account, summary=points_summary(account, now=now, with_progress=True),
                    coupons=wallet(customer.pk, now=now), program=Program.current())


@dataclass
class CounterScope:
    """What a counter request may touch, read in one query: the customer (None: not visible to the user) and the
    unit named by its code (None: no such unit; ``unit_allowed`` False: a unit outside the user's scope)."""

    customer: Customer | None
    unit: object | None
    unit_allowed: bool


def counter_scope(user: User, customer_id: int, unit_code: str) -> CounterScope:
    """The scope rules of ``customers.selectors.customers_for`` and ``core.selectors.units_for``, hand-written for the
    redemption endpoint (the ORM's query building cost more than the database did)."""
    from dangol.core.models import BusinessUnit

    if user.sees_all_units:
        visible, allowed, params = "TRUE", "u.is_active", []
    else:
        visible = ("EXISTS (SELECT 1 FROM customers_membership m JOIN core_user_units uu ON uu.businessunit_id = m.unit_id "
                   "JOIN core_businessunit b ON b.id = m.unit_id WHERE m.customer_id = c.id AND uu.user_id = %s AND b.is_active)")
        allowed = "u.is_active AND EXISTS (SELECT 1 FROM core_user_units uu WHERE uu.user_id = %s AND uu.businessunit_id = u.id)"
        params = [user.pk, user.pk]
    rows = db.fetch(f"""
        SELECT c.id, CASE WHEN c.id IS NULL THEN FALSE ELSE {visible} END,
               u.id, u.code, u.name, u.kind, u.is_active, CASE WHEN u.id IS NULL THEN FALSE ELSE {allowed} END
        FROM (SELECT 1 AS one) x
        LEFT JOIN customers_customer c ON c.id = %s AND c.merged_into_id IS NULL
        LEFT JOIN core_businessunit u ON u.code = %s""", [*params, customer_id, unit_code])
    customer_pk, is_visible, unit_pk, code, name, kind, active, unit_ok = rows[0]
    customer = None
    if customer_pk is not None and is_visible:
        customer = Customer(id=customer_pk, merged_into_id=None)
        customer._state.adding, customer._state.db = False, "default"
    unit = None
    if unit_pk is not None:
        unit = BusinessUnit(id=unit_pk, code=code, name=name, kind=kind, is_active=bool(active))
        unit._state.adding, unit._state.db = False, "default"
    return CounterScope(customer=customer, unit=unit, unit_allowed=bool(unit_ok))
