"""Dashboard figures of the playbook: the share of revenue from members (customers holding a member number) against
non-members (walk-ins without a customer record, and customers who never became members) per business unit and
month — the hotel's "40 % of sales from card holders" — and the stamp cards' figures.

One aggregate query each, in the database (GROUP BY unit and Seoul month), whatever the number of orders."""
from __future__ import annotations

from dataclasses import dataclass, field

from django.core.cache import cache
from django.db import connection
from django.utils import translation

from dangol.core.models import BusinessUnit

from .dashboard import DashboardFilter, cache_seconds


@dataclass
class ShareRow:
    unit: BusinessUnit
    month: str  # YYYY-MM in Asia/Seoul
    member_revenue: int
    revenue: int
    member_orders: int
    orders: int

    @property
    def non_member_revenue(self) -> int:
        return self.revenue - self.member_revenue

    @property
    def share(self) -> float | None:
        return self.member_revenue / self.revenue if self.revenue > 0 else None


@dataclass
class MembershipShare:
    rows: list[ShareRow] = field(default_factory=list)  # unit, then month
    by_unit: list[ShareRow] = field(default_factory=list)  # the whole period per unit (month "")
    total: ShareRow | None = None


def _month(column: str) -> str:
    if connection.vendor == "postgresql":
        return f"to_char({column} AT TIME ZONE 'Asia/Seoul', 'YYYY-MM')"
    return f"strftime('%%Y-%%m', {column}, '+9 hours')"  # Korea keeps no daylight saving time


def membership_share(f: DashboardFilter) -> MembershipShare:
    """Net revenue (sales less refunds; orders waiting for review left out) of the filter's period, per unit and
    month, split by whether the order's customer holds a member number."""
    params: list = [connection.ops.adapt_datetimefield_value(f.start_at), connection.ops.adapt_datetimefield_value(f.end_at),
                    False]
    units = ""
    if f.unit_ids is not None:
        if not f.unit_ids:
            return MembershipShare()
        units = f" AND o.unit_id IN ({', '.join(['%s'] * len(f.unit_ids))})"
        params += list(f.unit_ids)
    sql = f"""
        SELECT o.unit_id, {_month('o.ordered_at')} AS month,
               SUM(CASE WHEN a.customer_id IS NOT NULL THEN o.total ELSE 0 END), SUM(o.total),
               SUM(CASE WHEN a.customer_id IS NOT NULL AND o.kind = 'sale' THEN 1 ELSE 0 END),
               SUM(CASE WHEN o.kind = 'sale' THEN 1 ELSE 0 END)
        FROM sales_order o LEFT JOIN loyalty_account a ON a.customer_id = o.customer_id
        WHERE o.ordered_at >= %s AND o.ordered_at < %s AND o.needs_review = %s{units}
        GROUP BY o.unit_id, month ORDER BY o.unit_id, month"""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchall()
    names = BusinessUnit.objects.in_bulk({row[0] for row in found})
    result = MembershipShare()
    totals: dict[int, ShareRow] = {}
    for unit_id, month, member, revenue, member_orders, orders in found:
        row = ShareRow(names[unit_id], month, int(member or 0), int(revenue or 0), int(member_orders or 0), int(orders or 0))
        result.rows.append(row)
        total = totals.setdefault(unit_id, ShareRow(names[unit_id], "", 0, 0, 0, 0))
        total.member_revenue += row.member_revenue
        total.revenue += row.revenue
        total.member_orders += row.member_orders
        total.orders += row.orders
    result.rows.sort(key=lambda r: (r.unit.name, r.month))
    result.by_unit = sorted(totals.values(), key=lambda r: r.unit.name)
    if result.by_unit:
        result.total = ShareRow(None, "", sum(r.member_revenue for r in result.by_unit), sum(r.revenue for r in result.by_unit),
                                sum(r.member_orders for r in result.by_unit), sum(r.orders for r in result.by_unit))
    return result


def stamp_figures(f: DashboardFilter) -> list[dict]:
    """Per stamp card of the filter's units: stamps given, customers stamping, rewards issued and used, stamps expired."""
    from dangol.loyalty.stamps import stamp_kpis

    return stamp_kpis(unit_ids=f.unit_ids, start=f.start_at, end=f.end_at)


def cached(f: DashboardFilter) -> tuple[MembershipShare, list[dict]]:
    """Both, kept as long as the dashboard's other figures (``DANGOL_DASHBOARD_CACHE_SECONDS``)."""
    seconds = cache_seconds()
    key = f"dangol:membership-share:v1:{f.unit_ids}:{f.start}:{f.end}:{translation.get_language()}"
    if seconds > 0:
        hit = cache.get(key)
        if hit is not None:
            return hit
    value = (membership_share(f), stamp_figures(f))
    if seconds > 0:
        cache.set(key, value, seconds)
    return value
