"""What a campaign or an automation earned: messages, clicks, coupon redemptions, and revenue of the recipients within
the attribution window against the holdout group.

Uplift is the difference of the mean revenue per customer (treated − holdout) with a 95 % confidence interval from the
normal approximation (Welch's standard error, sqrt(s²ₜ/nₜ + s²ₕ/nₕ)); the incremental revenue is that difference times
the number treated, and ROI sets it against what the campaign cost: the messages (``DANGOL_MESSAGE_COST_KRW`` per
message type — an LMS or MMS costs more than an SMS — else per channel) and the discounts of the coupons used
(recorded at the counter with the purchase amount; a gift's value is unknown and counted apart). Revenue
is net (refunds count against it) and leaves flagged imported orders out, as analytics does.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.db import connection
from django.db.models import Count, Q, Sum
from django.utils import timezone

from dangol.loyalty.models import Coupon, CouponStatus
from dangol.messaging.models import Message
from dangol.sales.models import Order

from .models import Automation, AutomationSend, Campaign, Recipient

Z95 = 1.959964


@dataclass
class Uplift:
    difference: float  # KRW per customer, treated − holdout
    low: float
    high: float
    treated_mean: float
    holdout_mean: float
    conversion_difference: float  # share who bought, treated − holdout

    @property
    def significant(self) -> bool:
        return self.low > 0 or self.high < 0


def uplift(treated: np.ndarray, holdout: np.ndarray, *, z: float = Z95) -> Uplift | None:
    """Difference of means with a normal-approximation confidence interval; None when a group has fewer than 2."""
    treated, holdout = np.asarray(treated, dtype=float), np.asarray(holdout, dtype=float)
    if len(treated) < 2 or len(holdout) < 2:
        return None
    diff = treated.mean() - holdout.mean()
    se = math.sqrt(treated.var(ddof=1) / len(treated) + holdout.var(ddof=1) / len(holdout))
    return Uplift(difference=float(diff), low=float(diff - z * se), high=float(diff + z * se),
                  treated_mean=float(treated.mean()), holdout_mean=float(holdout.mean()),
                  conversion_difference=float((treated > 0).mean() - (holdout > 0).mean()))


@dataclass
class GroupFigures:
    label: str
    customers: int
    buyers: int
    revenue: int
    per_customer: float
    uplift: Uplift | None = None


@dataclass
class Results:
    treated: GroupFigures
    holdout: GroupFigures
    variants: list[GroupFigures] = field(default_factory=list)
    messages: dict = field(default_factory=dict)  # status -> count
    clicks: int = 0
    coupons_issued: int = 0
    coupons_used: int = 0
    discounts: int = 0  # KRW taken off by the used coupons whose discount is known
    coupons_unpriced: int = 0  # used coupons whose discount is unknown (gifts; percentages used without the amount)
    message_cost: int = 0
    incremental_revenue: float = 0.0
    roi: float | None = None
    window_start: dt.datetime | None = None
    window_end: dt.datetime | None = None


def message_cost(channel: str, subtype: str = "") -> int:
    """What one message costs: the price of its type (sms, lms, mms, alimtalk, brand…) when one is set, else its
    channel's."""
    prices = getattr(settings, "DANGOL_MESSAGE_COST_KRW", {})
    return int(prices[subtype] if subtype in prices else prices.get(channel, 0))


def _revenue_rows(sql_recipients: str, params: list, start: dt.datetime, end: dt.datetime) -> np.ndarray:
    """(customer_id, is_holdout, variant code as int, revenue) of every recipient, from one grouped query."""
    orders = Order._meta.db_table
    sql = (f"SELECT r.customer_id, r.is_holdout, r.variant, COALESCE(SUM(o.total), 0) FROM ({sql_recipients}) r "
           f"LEFT JOIN {orders} o ON o.customer_id = r.customer_id AND o.ordered_at >= %s AND o.ordered_at < %s "
           f"AND o.needs_review = %s GROUP BY r.customer_id, r.is_holdout, r.variant")
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, start, end, False])
        rows = cursor.fetchall()
    out = np.zeros((len(rows), 4), dtype=np.int64)
    for i, (cid, hold, variant, revenue) in enumerate(rows):
        out[i] = (cid, 1 if hold else 0, ord(variant) if variant else 0, int(revenue))
    return out


def _figures(label: str, revenue: np.ndarray) -> GroupFigures:
    return GroupFigures(label=label, customers=int(len(revenue)), buyers=int((revenue > 0).sum()),
                        revenue=int(revenue.sum()), per_customer=float(revenue.mean()) if len(revenue) else 0.0)


def _compare(rows: np.ndarray, cost: int) -> Results:
    revenue, holdout = rows[:, 3], rows[:, 1] == 1
    treated = _figures("treated", revenue[~holdout])
    control = _figures("holdout", revenue[holdout])
    treated.uplift = uplift(revenue[~holdout], revenue[holdout])
    variants = []
    codes = sorted(set(rows[~holdout, 2].tolist()))
    for code in codes if len(codes) > 1 else []:  # one variant is the treated group itself
        if code:
            part = revenue[(~holdout) & (rows[:, 2] == code)]
            figures = _figures(chr(code), part)
            figures.uplift = uplift(part, revenue[holdout])
            variants.append(figures)
    result = Results(treated=treated, holdout=control, variants=variants)
    result.message_cost = cost
    if treated.uplift is not None:
        result.incremental_revenue = treated.uplift.difference * treated.customers
    return result


def _coupons(result: Results, coupons) -> None:
    """Issued, used and the discounts the used ones gave (the offer's cost), then the ROI over messages and discounts:
    (incremental revenue − cost) / cost."""
    agg = coupons.aggregate(issued=Count("id"), used=Count("id", filter=Q(status=CouponStatus.USED)),
                            discounts=Sum("discount_krw", filter=Q(status=CouponStatus.USED)),
                            unpriced=Count("id", filter=Q(status=CouponStatus.USED, discount_krw__isnull=True)))
    result.coupons_issued, result.coupons_used = agg["issued"], agg["used"]
    result.discounts, result.coupons_unpriced = int(agg["discounts"] or 0), agg["unpriced"]
    cost = result.message_cost + result.discounts
    if result.treated.uplift is not None and cost:
        result.roi = (result.incremental_revenue - cost) / cost


CHARGED = ("queued", "held", "sent", "delivered", "failed")  # a blocked message costs nothing


def _message_counts(messages, channel: str) -> tuple[dict, int, int]:
    """(messages per status, clicks, what the charged ones cost), from two grouped queries."""
    counts = dict(messages.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    clicks = messages.filter(clicked_at__isnull=False).count()
    by_type = messages.filter(status__in=CHARGED).values_list("subtype").annotate(n=Count("id")).values_list("subtype", "n")
    cost = sum(n * message_cost(channel, subtype) for subtype, n in by_type)
    return counts, clicks, cost


def campaign_results(campaign: Campaign, *, now: dt.datetime | None = None) -> Results | None:
    runs = list(campaign.runs.order_by("started_at"))
    if not runs:
        return None
    now = now or timezone.now()
    start = runs[0].started_at
    end = min(runs[-1].started_at + dt.timedelta(days=campaign.attribution_days), now + dt.timedelta(seconds=1))
    recipients = Recipient.objects.filter(run__campaign=campaign).values("customer_id", "is_holdout", "variant")
    sql, params = recipients.query.sql_with_params()
    rows = _revenue_rows(sql, list(params), start, end)
    counts, clicks, cost = _message_counts(Message.objects.filter(source=campaign.source), campaign.channel)
    result = _compare(rows, cost)
    result.messages, result.clicks = counts, clicks
    _coupons(result, Coupon.objects.filter(pk__in=Recipient.objects.filter(run__campaign=campaign, coupon_id__isnull=False)
                                           .values("coupon_id")))
    result.window_start, result.window_end = start, end
    return result


def automation_results(automation: Automation, *, now: dt.datetime | None = None) -> Results | None:
    """Each send compared over its own window: revenue within ``attribution_days`` after the send (or the holdout's
    would-be send), per customer and occurrence."""
    sends = AutomationSend.objects.filter(automation=automation)
    if not sends.exists():
        return None
    now = now or timezone.now()
    table = AutomationSend._meta.db_table
    days = automation.attribution_days
    rows = []
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT s.customer_id, s.is_holdout, s.at FROM {table} s WHERE s.automation_id = %s", [automation.pk])
        sends_rows = [(cid, hold, at if timezone.is_aware(at) else timezone.make_aware(at, dt.timezone.utc))
                      for cid, hold, at in cursor.fetchall()]  # SQLite answers naive UTC times
    # One grouped query over the orders of these customers, windows applied here (a few thousand sends a day).
    by_customer: dict[int, list[tuple]] = {}
    ids = sorted({r[0] for r in sends_rows})
    for start in range(0, len(ids), 5000):
        chunk = ids[start:start + 5000]
        for cid, at, total in Order.objects.filter(customer_id__in=chunk, needs_review=False,
                                                   ordered_at__gte=min(r[2] for r in sends_rows)) \
                .values_list("customer_id", "ordered_at", "total"):
            by_customer.setdefault(cid, []).append((at, total))
    for cid, hold, at in sends_rows:
        end = min(at + dt.timedelta(days=days), now)
        revenue = sum(total for when, total in by_customer.get(cid, []) if at <= when < end)
        rows.append((cid, 1 if hold else 0, ord("A") if not hold else 0, revenue))
    array = np.asarray(rows, dtype=np.int64).reshape(-1, 4)
    counts, clicks, cost = _message_counts(Message.objects.filter(source=automation.source), automation.channel)
    result = _compare(array, cost)
    result.variants = []
    result.messages, result.clicks = counts, clicks
    _coupons(result, Coupon.objects.filter(pk__in=sends.filter(coupon_id__isnull=False).values("coupon_id")))
    return result


def results_csv_rows(result: Results) -> list[list]:
    rows = [["group", "customers", "buyers", "revenue_krw", "revenue_per_customer", "uplift_per_customer",
             "ci95_low", "ci95_high"]]
    for group in [result.treated, result.holdout, *result.variants]:
        u = group.uplift
        rows.append([group.label, group.customers, group.buyers, group.revenue, round(group.per_customer, 1),
                     round(u.difference, 1) if u else "", round(u.low, 1) if u else "", round(u.high, 1) if u else ""])
    rows.append([])
    rows.append(["messages", *[f"{k}={v}" for k, v in sorted(result.messages.items())]])
    rows.append(["clicks", result.clicks])
    rows.append(["coupons_issued", result.coupons_issued])
    rows.append(["coupons_used", result.coupons_used])
    rows.append(["message_cost_krw", result.message_cost])
    rows.append(["coupon_discounts_krw", result.discounts])
    rows.append(["coupons_used_without_known_discount", result.coupons_unpriced])
    rows.append(["incremental_revenue_krw", round(result.incremental_revenue)])
    rows.append(["roi", "" if result.roi is None else round(result.roi, 3)])
    return rows
