"""Data of the manager dashboard. Every panel is computed in the database (aggregates, window functions, joins of
distinct rows) and returns a few dozen numbers at most, whatever the number of customers.

The filter is a business unit (one of the user's; admins may also look at the whole group) and a period of days
in Asia/Seoul. Sales figures (revenue, active customers, repeat rate, the Pareto share, cohorts, unit overlap,
product pairs) come from the orders of the period in the chosen units; orders flagged for review — and refunds of
them — are left out, refunds count against revenue on the day of the refund, and a refunded sale is not a purchase.
Customer figures (CLV, churn risk, RFM) come from the analytics snapshot (``CustomerMetrics``), which describes each
customer across the whole group as of its day; the unit filter selects the customers known to the unit.

KPIs are compared with the previous period of the same length, right before the chosen one. The snapshot keeps no
history, so its KPIs (average CLV, churn-risk count) have no previous value.

Cost: at a million customers (5 M orders) a panel takes 1–20 s on two cores, the KPIs (a per-customer aggregate
of two years ranked by a window function) the longest. ``panels`` keeps each panel for
``DANGOL_DASHBOARD_CACHE_SECONDS`` per filter and analytics run, and above ``DANGOL_DASHBOARD_LAZY_ABOVE_ORDERS``
orders the page fetches the panels one request each. A customer × unit × month rollup kept by the nightly refresh
would bring them under a second.
"""
from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import (Avg, Case, Count, Exists, F, IntegerField, Max, Min, OuterRef, Q, QuerySet, Sum,
                              Value, When)
from django.db.models.functions import TruncDate, TruncMonth
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from dangol.core.models import BusinessUnit, User
from dangol.core.selectors import units_for
from dangol.customers.models import Customer, Membership
from dangol.sales.models import Order, OrderKind, Product

from .models import CustomerMetrics, RfmSegment
from .recommendations import BASKET_ORDER, Pair, basket_counts, counted_sales
from .rfm import DESCRIPTIONS, SEGMENT_GRID

SEOUL = ZoneInfo("Asia/Seoul")
PERIODS = {
    "30d": gettext_lazy("Last 30 days"),
    "90d": gettext_lazy("Last 90 days"),
    "12m": gettext_lazy("Last 12 months"),
    "ytd": gettext_lazy("This year"),
    "custom": gettext_lazy("Custom dates"),
}
PERIOD_DAYS = {"30d": 30, "90d": 90, "12m": 365}
DEFAULT_PERIOD = "12m"
MAX_PERIOD_DAYS = 5 * 366
CHURN_RISK_HIGH = 0.5  # a churn risk from this value on counts as "at risk of churning"
PARETO_SHARE = 0.2
COHORT_MONTHS = 12
WORK_MEM = "128MB"
DEFAULT_CACHE_SECONDS = 600
# CLV histogram bins, KRW: [edge_i, edge_i+1); the last bin is open.
CLV_EDGES = (0, 50_000, 100_000, 200_000, 500_000, 1_000_000, 2_000_000, 5_000_000, 10_000_000)


# --- the filter -----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DashboardFilter:
    unit: BusinessUnit | None  # the chosen unit; None: every unit the user sees
    unit_ids: tuple[int, ...] | None  # the units of the figures; None: the whole group (admins)
    scope_unit_ids: tuple[int, ...]  # every unit the user sees (the unit overlap compares these)
    start: dt.date  # first day
    end: dt.date  # last day, included
    period: str = DEFAULT_PERIOD

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def start_at(self) -> dt.datetime:
        return dt.datetime.combine(self.start, dt.time.min, tzinfo=SEOUL)

    @property
    def end_at(self) -> dt.datetime:
        """The first moment after the period."""
        return dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time.min, tzinfo=SEOUL)

    @property
    def previous_start(self) -> dt.date:
        return self.start - dt.timedelta(days=self.days)

    @property
    def previous_start_at(self) -> dt.datetime:
        return dt.datetime.combine(self.previous_start, dt.time.min, tzinfo=SEOUL)

    def params(self) -> dict[str, str]:
        """The filter as query parameters (links from the charts, CSV downloads)."""
        out = {"period": self.period}
        if self.unit is not None:
            out["unit"] = self.unit.code
        if self.period == "custom":
            out.update({"start": self.start.isoformat(), "end": self.end.isoformat()})
        return out


def make_filter(*, user: User, unit: str = "", period: str = "", start: dt.date | str | None = None,
                end: dt.date | str | None = None, today: dt.date | None = None) -> DashboardFilter:
    """Validate the dashboard filter of a user; raises ValidationError keyed by field."""
    today = today or timezone.localdate()
    scope = list(units_for(user).order_by("name"))
    errors: dict[str, list] = {}
    chosen = None
    if unit:
        chosen = next((u for u in scope if u.code == unit), None)
        if chosen is None:
            errors["unit"] = [_("Choose one of your business units.")]
    period = period or DEFAULT_PERIOD
    if period not in PERIODS:
        errors["period"] = [_("Choose a period from the list.")]
        period = DEFAULT_PERIOD
    if period == "custom":
        first, last = _date(start, "start", errors), _date(end, "end", errors)
        if first and last:
            if first > last:
                errors["end"] = [_("The period ends before it starts.")]
            elif last > today:
                errors["end"] = [_("The period cannot end in the future.")]
            elif (last - first).days + 1 > MAX_PERIOD_DAYS:
                errors["start"] = [_("A period is at most five years long.")]
    elif period == "ytd":
        first, last = today.replace(month=1, day=1), today
    else:
        first, last = today - dt.timedelta(days=PERIOD_DAYS[period] - 1), today
    if errors:
        raise ValidationError(errors)
    scope_ids = tuple(u.pk for u in scope)
    if chosen is not None:
        unit_ids = (chosen.pk,)
    else:
        unit_ids = None if user.sees_all_units else scope_ids
    return DashboardFilter(unit=chosen, unit_ids=unit_ids, scope_unit_ids=scope_ids, start=first, end=last,
                           period=period)


def _date(value, name: str, errors: dict) -> dt.date | None:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value or "").strip())
    except ValueError:
        errors[name] = [_("Enter a date as YYYY-MM-DD.")]
        return None


# --- scoped querysets -----------------------------------------------------------------------------------------------

def customers_in(f: DashboardFilter) -> QuerySet[Customer]:
    """Live customers known to the filter's units (the whole group: all live customers)."""
    qs = Customer.objects.filter(merged_into__isnull=True)
    if f.unit_ids is not None:
        qs = qs.filter(Exists(Membership.objects.filter(customer=OuterRef("pk"), unit_id__in=f.unit_ids)))
    return qs


def metrics_in(f: DashboardFilter) -> QuerySet[CustomerMetrics]:
    qs = CustomerMetrics.objects.filter(customer__merged_into__isnull=True)
    if f.unit_ids is not None:
        qs = qs.filter(Exists(Membership.objects.filter(customer=OuterRef("customer_id"), unit_id__in=f.unit_ids)))
    return qs


def orders_in(f: DashboardFilter, start: dt.datetime | None, end: dt.datetime | None) -> QuerySet[Order]:
    """Sales and refunds that count, of the filter's units, in [start, end)."""
    # Refunds of flagged sales are left out with their sale; the flagged sales are few (an index on needs_review).
    qs = Order.objects.filter(needs_review=False).exclude(refund_of__in=Order.objects.filter(needs_review=True).values("pk"))
    if f.unit_ids is not None:
        qs = qs.filter(unit_id__in=f.unit_ids)
    if start is not None:
        qs = qs.filter(ordered_at__gte=start)
    if end is not None:
        qs = qs.filter(ordered_at__lt=end)
    return qs.order_by()


@contextmanager
def analysis_session():
    """A transaction for a batch of dashboard queries; on PostgreSQL without JIT (it compiles for longer than these
    queries run) and with enough memory for their sorts and hashes not to spill to disk — one query, this
    transaction only."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('jit', 'off', true), set_config('work_mem', %s, true)", [WORK_MEM])
        yield


def _execute(sql: str, params) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


# --- KPIs -----------------------------------------------------------------------------------------------------------

@dataclass
class Kpi:
    key: str
    label: str
    value: float | int | None
    previous: float | int | None
    kind: str  # count, won, share
    help: str
    higher_is_better: bool = True

    @property
    def change(self):
        if self.value is None or self.previous is None:
            return None
        return self.value - self.previous

    @property
    def change_ratio(self) -> float | None:
        """Relative change for counts and amounts; shares change in percentage points (see ``change``)."""
        if self.change is None or self.kind == "share" or not self.previous:
            return None
        return self.change / abs(self.previous)

    @property
    def trend(self) -> str:
        """up, down or flat — and whether that is good is ``higher_is_better``."""
        change = self.change
        if change is None or abs(change) < 1e-9:
            return "flat"
        return "up" if change > 0 else "down"

    @property
    def good(self) -> bool | None:
        if self.trend == "flat":
            return None
        return (self.trend == "up") == self.higher_is_better


@dataclass
class SeriesPoint:
    start: dt.date
    revenue: int
    active: int


@dataclass
class Kpis:
    items: list[Kpi]
    series: list[SeriesPoint]
    grain: str  # month or day
    as_of: dt.date | None  # of the snapshot figures

    def get(self, key: str) -> Kpi:
        return next(k for k in self.items if k.key == key)


def _customer_counts(f: DashboardFilter) -> tuple[int, int]:
    """Customers known by the end of the period and of the previous one (first membership in the units)."""
    if f.unit_ids is None:
        counts = Customer.objects.filter(merged_into__isnull=True).aggregate(
            now=Count("pk", filter=Q(joined_at__lt=f.end_at)), before=Count("pk", filter=Q(joined_at__lt=f.start_at)))
    else:
        counts = (Membership.objects.filter(unit_id__in=f.unit_ids, customer__merged_into__isnull=True).order_by()
                  .values("customer_id").annotate(known=Min("joined_at"))
                  .aggregate(now=Count("customer_id", filter=Q(known__lt=f.end_at)),
                             before=Count("customer_id", filter=Q(known__lt=f.start_at))))
    return counts["now"] or 0, counts["before"] or 0


def _buyer_figures(f: DashboardFilter) -> dict[int, dict]:
    """Per period (1 = chosen, 0 = previous): buyers, repeat buyers (two sales or more), customer revenue and the
    revenue of the top 20 % of buyers by revenue — per-customer sums ranked by a window function."""
    per_customer = (orders_in(f, f.previous_start_at, f.end_at).filter(customer__isnull=False)
                    .annotate(p=Case(When(ordered_at__gte=f.start_at, then=Value(1)), default=Value(0),
                                     output_field=IntegerField()))
                    .values("p", "customer_id")
                    .annotate(revenue=Sum("total"), sales=Count("pk", filter=Q(kind=OrderKind.SALE, refunds__isnull=True))))
    inner, params = per_customer.query.sql_with_params()
    # ceil(n / 5) in integer arithmetic on both databases: (n + 4) / 5.
    top_n = "(n + %d) / %d" % (round(1 / PARETO_SHARE) - 1, round(1 / PARETO_SHARE))
    rows = _execute(f"""
        SELECT p, COUNT(*), SUM(CASE WHEN sales >= 2 THEN 1 ELSE 0 END), SUM(revenue),
               SUM(CASE WHEN rn <= {top_n} THEN revenue ELSE 0 END)
        FROM (SELECT p, sales, revenue,
                     ROW_NUMBER() OVER (PARTITION BY p ORDER BY revenue DESC, customer_id) AS rn,
                     COUNT(*) OVER (PARTITION BY p) AS n
              FROM ({inner}) per_customer WHERE sales >= 1) ranked
        GROUP BY p""", params)
    out = {p: {"buyers": 0, "repeaters": 0, "revenue": 0, "top": 0} for p in (0, 1)}
    for p, buyers, repeaters, revenue, top in rows:
        out[int(p)] = {"buyers": int(buyers), "repeaters": int(repeaters or 0), "revenue": int(revenue or 0),
                       "top": int(top or 0)}
    return out


def _share(part, whole) -> float | None:
    return part / whole if whole else None


def kpis(f: DashboardFilter) -> Kpis:
    customers_now, customers_before = _customer_counts(f)
    revenue = orders_in(f, f.previous_start_at, f.end_at).aggregate(
        now=Sum("total", filter=Q(ordered_at__gte=f.start_at)), before=Sum("total", filter=Q(ordered_at__lt=f.start_at)))
    buyers = _buyer_figures(f)
    snapshot = metrics_in(f).filter(orders__gte=1).aggregate(
        avg_clv=Avg("clv_12m"), at_risk=Count("pk", filter=Q(churn_risk__gte=CHURN_RISK_HIGH)), as_of=Max("as_of"))
    now, before = buyers[1], buyers[0]
    items = [
        Kpi("customers", _("Customers"), customers_now, customers_before, "count",
            _("Customers known to the business units by the end of the period (registered or bought there).")),
        Kpi("active", _("Active customers"), now["buyers"], before["buyers"], "count",
            _("Customers with at least one purchase in the period.")),
        Kpi("repeat_rate", _("Repeat rate"), _share(now["repeaters"], now["buyers"]),
            _share(before["repeaters"], before["buyers"]), "share",
            _("Share of the period's customers who bought twice or more in it.")),
        Kpi("revenue", _("Revenue"), int(revenue["now"] or 0), int(revenue["before"] or 0), "won",
            _("Sales minus refunds in the period, walk-in sales without a customer included.")),
        Kpi("top20_share", _("Revenue share of the top 20 %"), _share(now["top"], now["revenue"]),
            _share(before["top"], before["revenue"]), "share",
            _("The Pareto check: how much of the customers' revenue the best-paying fifth of them brought. "
              "Around 80 percent is the classic 80/20; the higher, the more the business depends on a few customers."),
            higher_is_better=False),
        Kpi("avg_clv", _("Average CLV (12 months)"), int(round(snapshot["avg_clv"])) if snapshot["avg_clv"] is not None else None,
            None, "won",
            _("Expected value of a customer over the next 12 months (BG/NBD and Gamma-Gamma), averaged over customers "
              "with a purchase. From the analytics snapshot, not the period.")),
        Kpi("churn_risk", _("At risk of churning"), snapshot["at_risk"] if snapshot["as_of"] else None, None, "count",
            _("Customers whose churn risk is %(pct)d %% or more (the churn model of the analytics snapshot).")
            % {"pct": round(CHURN_RISK_HIGH * 100)}, higher_is_better=False),
    ]
    grain = "month" if f.days > 62 else "day"
    return Kpis(items=items, series=series(f, grain), grain=grain, as_of=snapshot["as_of"])


def series(f: DashboardFilter, grain: str) -> list[SeriesPoint]:
    """Revenue and active customers per month (or day) of the period, every step present (zero when empty)."""
    trunc = TruncMonth("ordered_at", tzinfo=SEOUL) if grain == "month" else TruncDate("ordered_at", tzinfo=SEOUL)
    rows = (orders_in(f, f.start_at, f.end_at).annotate(step=trunc).values("step")
            .annotate(revenue=Sum("total"),
                      active=Count("customer_id", distinct=True, filter=Q(kind=OrderKind.SALE, customer__isnull=False))))
    found = {_as_date(r["step"]): r for r in rows}
    out = []
    for step in _steps(f.start, f.end, grain):
        row = found.get(step, {})
        out.append(SeriesPoint(start=step, revenue=int(row.get("revenue") or 0), active=int(row.get("active") or 0)))
    return out


def _as_date(value) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.astimezone(SEOUL).date() if timezone.is_aware(value) else value.date()
    return value


def _steps(start: dt.date, end: dt.date, grain: str) -> list[dt.date]:
    if grain == "day":
        return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    out, step = [], start.replace(day=1)
    while step <= end:
        out.append(step)
        step = (step.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return out


# --- RFM grid -------------------------------------------------------------------------------------------------------

@dataclass
class RfmCell:
    r: int
    f: int
    segment: str
    segment_label: str
    customers: int
    revenue: int  # of the period, in the filter's units


@dataclass
class SegmentRow:
    segment: str
    label: str
    description: str
    customers: int
    revenue: int


@dataclass
class RfmGrid:
    cells: list[RfmCell]  # R from 5 down to 1, F from 1 to 5
    segments: list[SegmentRow]
    customers: int
    revenue: int
    as_of: dt.date | None

    @property
    def rows(self) -> list[list[RfmCell]]:
        return [self.cells[i:i + 5] for i in range(0, 25, 5)]

    @property
    def max_customers(self) -> int:
        return max((c.customers for c in self.cells), default=0)


def rfm_grid(f: DashboardFilter) -> RfmGrid:
    """Customers (snapshot scores, customers of the units) and the period's revenue per R × F cell."""
    counts = {(r["r_score"], r["f_score"]): r for r in metrics_in(f).filter(r_score__isnull=False, f_score__isnull=False)
              .values("r_score", "f_score").annotate(n=Count("pk"), as_of=Max("as_of"))}
    revenue = {(r["r"], r["f"]): r["revenue"] for r in orders_in(f, f.start_at, f.end_at)
               .filter(customer__metrics__r_score__isnull=False)
               .values(r=F("customer__metrics__r_score"), f=F("customer__metrics__f_score")).annotate(revenue=Sum("total"))}
    cells = []
    for r in range(5, 0, -1):
        for fs in range(1, 6):
            segment = SEGMENT_GRID[r - 1][fs - 1]
            cells.append(RfmCell(r=r, f=fs, segment=segment.value, segment_label=str(segment.label),
                                 customers=int(counts.get((r, fs), {}).get("n", 0)), revenue=int(revenue.get((r, fs)) or 0)))
    segments = []
    for segment in RfmSegment:
        mine = [c for c in cells if c.segment == segment.value]
        segments.append(SegmentRow(segment=segment.value, label=str(segment.label), description=str(DESCRIPTIONS[segment]),
                                   customers=sum(c.customers for c in mine), revenue=sum(c.revenue for c in mine)))
    as_of = max((row["as_of"] for row in counts.values()), default=None)
    return RfmGrid(cells=cells, segments=segments, customers=sum(c.customers for c in cells),
                   revenue=sum(c.revenue for c in cells), as_of=as_of)


def segment_customers(f: DashboardFilter, *, r: int | None = None, f_score: int | None = None,
                      segment: str = "") -> QuerySet[Customer]:
    """The customers of an RFM cell (R and F scores) or of a named segment, in the filter's units, highest spend
    first; each row carries its metrics."""
    errors = {}
    if segment and segment not in RfmSegment.values:
        errors["segment"] = [_("Unknown RFM segment.")]
    for name, value in (("r", r), ("f", f_score)):
        if value is not None and not (type(value) is int and 1 <= value <= 5):
            errors[name] = [_("A score is a whole number from 1 to 5.")]
    if not segment and (r is None or f_score is None):
        errors.setdefault("segment", [_("Choose a cell of the grid or a segment.")])
    if errors:
        raise ValidationError(errors)
    qs = customers_in(f).filter(metrics__isnull=False)
    if segment:
        qs = qs.filter(metrics__rfm_segment=segment)
    if r is not None and f_score is not None:
        qs = qs.filter(metrics__r_score=r, metrics__f_score=f_score)
    return qs.select_related("metrics", "home_unit").order_by(F("metrics__monetary_total").desc(), "pk")


# --- cohort retention -----------------------------------------------------------------------------------------------

@dataclass
class CohortRow:
    month: dt.date
    size: int
    retained: list[int | None]  # customers buying again k months after their first month; None: not yet known

    @property
    def rates(self) -> list[float | None]:
        return [None if n is None else (n / self.size if self.size else 0.0) for n in self.retained]


@dataclass
class Cohorts:
    rows: list[CohortRow]
    offsets: int


def _month_number(value) -> int:
    """year × 12 + month − 1 of what a month truncation returned through a raw cursor (a datetime on PostgreSQL,
    text on SQLite)."""
    if isinstance(value, str):
        value = dt.date.fromisoformat(value[:10])
    return value.year * 12 + value.month - 1


def cohort_retention(f: DashboardFilter, months: int = COHORT_MONTHS) -> Cohorts:
    """Customers by the month of their first purchase in the units (over the whole history), for the last
    ``months`` months of the period; cell k = share of the cohort buying again k months later.

    Two aggregates joined on the customer: the first purchase of every customer (kept when it falls in the
    window), and the distinct months with a purchase inside the window only — months as truncated timestamps,
    which group much faster than computed month numbers."""
    last = f.end.year * 12 + f.end.month - 1
    first = max(f.start.year * 12 + f.start.month - 1, last - months + 1)
    window = dt.datetime(first // 12, first % 12 + 1, 1, tzinfo=SEOUL)
    sales = counted_sales(unit_ids=f.unit_ids, end=f.end_at).filter(customer__isnull=False).order_by()
    firsts = (sales.values("customer_id").annotate(first_at=Min("ordered_at")).filter(first_at__gte=window)
              .annotate(c=TruncMonth("first_at", tzinfo=SEOUL)).values("customer_id", "c"))
    activity = (sales.filter(ordered_at__gte=window).annotate(m=TruncMonth("ordered_at", tzinfo=SEOUL))
                .values("customer_id", "m").distinct())
    firsts_sql, firsts_params = firsts.query.sql_with_params()
    activity_sql, activity_params = activity.query.sql_with_params()
    rows = _execute(f"""
        SELECT fs.c, a.m, COUNT(*) FROM ({activity_sql}) a JOIN ({firsts_sql}) fs ON fs.customer_id = a.customer_id
        GROUP BY fs.c, a.m""", [*activity_params, *firsts_params])
    found: dict[tuple[int, int], int] = {}
    for c, m, n in rows:
        cohort = _month_number(c)
        key = (cohort, _month_number(m) - cohort)
        found[key] = found.get(key, 0) + int(n)
    out = []
    for c in range(first, last + 1):
        size = found.get((c, 0), 0)
        retained = [found.get((c, k), 0) if c + k <= last else None for k in range(months)]
        out.append(CohortRow(month=dt.date(c // 12, c % 12 + 1, 1), size=size, retained=retained))
    return Cohorts(rows=out, offsets=months)


# --- CLV distribution -----------------------------------------------------------------------------------------------

@dataclass
class Bin:
    low: int
    high: int | None  # None: open-ended
    customers: int
    clv_total: int


@dataclass
class Histogram:
    bins: list[Bin]
    customers: int
    as_of: dt.date | None

    @property
    def max_customers(self) -> int:
        return max((b.customers for b in self.bins), default=0)


def clv_histogram(f: DashboardFilter) -> Histogram:
    """Customers with a purchase by 12-month CLV bin, with the CLV they add up to, in one query."""
    edges = list(CLV_EDGES) + [None]
    aggregates = {"as_of": Max("as_of")}
    for i, (low, high) in enumerate(zip(edges, edges[1:])):
        inside = Q(clv_12m__gte=low) if high is None else Q(clv_12m__gte=low, clv_12m__lt=high)
        aggregates[f"n{i}"] = Count("pk", filter=inside)
        aggregates[f"s{i}"] = Sum("clv_12m", filter=inside)
    row = metrics_in(f).filter(orders__gte=1, clv_12m__isnull=False).aggregate(**aggregates)
    bins = [Bin(low=low, high=high, customers=int(row[f"n{i}"] or 0), clv_total=int(row[f"s{i}"] or 0))
            for i, (low, high) in enumerate(zip(edges, edges[1:]))]
    return Histogram(bins=bins, customers=sum(b.customers for b in bins), as_of=row["as_of"])


# --- unit overlap ---------------------------------------------------------------------------------------------------

@dataclass
class Overlap:
    units: list[BusinessUnit]
    matrix: list[list[int]]  # [i][j]: customers who bought at unit i and at unit j in the period; [i][i]: at unit i
    multi_unit: int  # customers who bought at two units or more
    customers: int  # customers who bought at any of the units

    @property
    def max_shared(self) -> int:
        return max((n for i, row in enumerate(self.matrix) for j, n in enumerate(row) if i != j), default=0)

    def rows(self):
        return [(unit, row) for unit, row in zip(self.units, self.matrix)]


def unit_overlap(f: DashboardFilter) -> Overlap:
    """Customers shared between the user's units in the period: distinct (customer, unit) pairs joined on the
    customer, plus how many customers bought at two units or more."""
    units = list(BusinessUnit.objects.filter(pk__in=f.scope_unit_ids).order_by("name"))
    pairs = (counted_sales(unit_ids=f.scope_unit_ids, start=f.start_at, end=f.end_at).filter(customer__isnull=False)
             .values("customer_id", "unit_id").distinct().order_by())
    inner, params = pairs.query.sql_with_params()
    rows = _execute(f"""
        WITH cu AS ({inner})
        SELECT a.unit_id, b.unit_id, COUNT(*) FROM cu a JOIN cu b ON a.customer_id = b.customer_id
        GROUP BY a.unit_id, b.unit_id
        UNION ALL
        SELECT -1, n, COUNT(*) FROM (SELECT customer_id, COUNT(*) AS n FROM cu GROUP BY customer_id) per_customer
        GROUP BY n""", params)
    index = {u.pk: i for i, u in enumerate(units)}
    matrix = [[0] * len(units) for _u in units]
    multi = total = 0
    for a, b, n in rows:
        if a == -1:
            total += int(n)
            multi += int(n) if b >= 2 else 0
        elif a in index and b in index:
            matrix[index[a]][index[b]] = int(n)
    return Overlap(units=units, matrix=matrix, multi_unit=multi, customers=total)


# --- cross-sell pairs -----------------------------------------------------------------------------------------------

@dataclass
class PairRow:
    first: Product
    second: Product
    pair: Pair


@dataclass
class TopPairs:
    rows: list[PairRow]
    baskets: int
    total_baskets: int

    @property
    def sampled(self) -> bool:
        return self.baskets < self.total_baskets

    @property
    def max_lift(self) -> float:
        return max((r.pair.lift for r in self.rows), default=0.0)


def top_pairs(f: DashboardFilter, *, limit: int = 10) -> TopPairs:
    """Products bought in the same order more often than chance, in the period and units, by lift."""
    assoc = basket_counts(basket=BASKET_ORDER, unit_ids=f.unit_ids, start=f.start_at, end=f.end_at, min_pair_count=3)
    best = assoc.top_pairs(limit=limit)
    products = Product.objects.select_related("unit").in_bulk({p.first for p in best} | {p.second for p in best}) if best else {}
    return TopPairs(rows=[PairRow(products[p.first], products[p.second], p) for p in best],
                    baskets=assoc.baskets, total_baskets=assoc.total_baskets)


# --- everything -----------------------------------------------------------------------------------------------------

@dataclass
class Dashboard:
    filter: DashboardFilter
    kpis: Kpis
    rfm: RfmGrid
    cohorts: Cohorts
    clv: Histogram
    overlap: Overlap
    pairs: TopPairs


def dashboard(f: DashboardFilter) -> Dashboard:
    """Every panel, computed now in one session."""
    with analysis_session():
        return Dashboard(filter=f, kpis=kpis(f), rfm=rfm_grid(f), cohorts=cohort_retention(f), clv=clv_histogram(f),
                         overlap=unit_overlap(f), pairs=top_pairs(f))


# --- panels, kept for a while ---------------------------------------------------------------------------------------

PANELS = {"kpis": kpis, "rfm": rfm_grid, "cohorts": cohort_retention, "clv": clv_histogram, "overlap": unit_overlap,
          "pairs": top_pairs}
DEFAULT_LAZY_ABOVE_ORDERS = 300_000


@dataclass
class Computed:
    data: object
    computed_at: dt.datetime


def cache_seconds() -> int:
    """How long computed figures are kept (``DANGOL_DASHBOARD_CACHE_SECONDS``, default 600; 0 turns it off)."""
    return int(getattr(settings, "DANGOL_DASHBOARD_CACHE_SECONDS", DEFAULT_CACHE_SECONDS))


def _cache_key(name: str, f: DashboardFilter, run_id) -> str:
    units = "group" if f.unit_ids is None else "-".join(map(str, f.unit_ids))
    scope = "-".join(map(str, f.scope_unit_ids))
    return f"dangol:dashboard:v2:{name}:{units}:{scope}:{f.start}:{f.end}:{run_id or 0}"


def cached_panels(f: DashboardFilter, *, run_id: int | None, names=tuple(PANELS)) -> dict[str, Computed]:
    """The panels already computed for this filter and analytics run (one cache read)."""
    if cache_seconds() <= 0:
        return {}
    keys = {_cache_key(name, f, run_id): name for name in names}
    return {keys[key]: found for key, found in cache.get_many(list(keys)).items()}


def panels(f: DashboardFilter, *, run_id: int | None, names=tuple(PANELS)) -> dict[str, Computed]:
    """Panels by name, each computed at most once per ``cache_seconds`` and analytics run: at a million customers
    the dashboard's queries take half a minute, and managers open the same few filters. Sales of the last minutes
    show once the figures expire (the page says when they were computed). With several web processes, configure
    a shared cache (Redis, database) so that they share the work."""
    unknown = set(names) - set(PANELS)
    if unknown:
        raise ValueError(f"unknown dashboard panels: {sorted(unknown)}")
    out = cached_panels(f, run_id=run_id, names=names)
    missing = [name for name in names if name not in out]
    if missing:
        with analysis_session():
            fresh = {name: Computed(PANELS[name](f), timezone.now()) for name in missing}
        if cache_seconds() > 0:
            cache.set_many({_cache_key(name, f, run_id): value for name, value in fresh.items()}, cache_seconds())
        out.update(fresh)
    return {name: out[name] for name in names}


def loads_lazily() -> bool:
    """Whether the page should send its panels in separate requests (each one its own, shorter, wait) rather than
    compute them all before answering: with many orders (``DANGOL_DASHBOARD_LAZY_ABOVE_ORDERS``, by the highest
    order id, which costs one index lookup)."""
    limit = int(getattr(settings, "DANGOL_DASHBOARD_LAZY_ABOVE_ORDERS", DEFAULT_LAZY_ABOVE_ORDERS))
    newest = Order.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    return newest > limit
