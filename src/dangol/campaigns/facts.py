"""Segment facts: one row per customer with what rules most often ask, so that a live count reads a single table.

Why: a segment mixing profile, purchase and metric rules is a chain of semi-joins over the customers, their primary
address, birthdays, memberships, orders and the metrics snapshot. On the benchmark's 1M customers each of those rules
alone keeps a third to half of the customers, so that query cannot take less than ~1.7 s (the hand-written SQL for
it takes as long), while one filtered scan of a one-row-per-customer table takes ~0.1 s.

Freshness: triggers (migration 0003) put a customer's id in ``FactsDirty`` in the same transaction as any change to
the source rows — also for COPY imports, merges, erasure and the nightly metrics swap. ``refresh`` recomputes the
marked rows with set-based SQL; it runs before every fast count and every minute in the background (so a count never
waits for more than what changed since). With more marks than ``FAST_COUNT_MAX_DIRTY`` pending (e.g. right after the
nightly snapshot replaced a million metric rows), a count uses the exact query over the source tables instead.

Which rules are answered here (``compile_tree`` returns None for a tree with any other rule, and the caller uses
``rules.compile_tree`` on the source tables): age, gender, province and district, stage, days since joining,
membership, net spend (all time; at one unit with "at least"), days since the last purchase (any unit), number of
purchases (all time, any unit), the RFM segment, CLV, P(alive) and churn risk. Each compiles to the same answer as
its twin in ``rules.py`` — tests compare the two on both databases — including for customers without orders, without
an address or without metrics.
"""
from __future__ import annotations

import datetime as dt
import json

from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from dangol.core.models import BusinessUnit

from .models import CustomerFacts, FactsDirty
from .rules import combine

BATCH = 20_000
FAST_COUNT_MAX_DIRTY = 50_000


# --- refresh ---------------------------------------------------------------------------------------------------------

def refresh(*, limit: int | None = None) -> int:
    """Recompute the marked customers' rows, in batches (each its own transaction); returns how many."""
    done = 0
    while limit is None or done < limit:
        with transaction.atomic():
            ids = _take(BATCH if limit is None else min(BATCH, limit - done))
            if not ids:
                break
            _recompute(ids)
        done += len(ids)
    return done


def recompute(customer_ids: list[int]) -> None:
    """Recompute these customers' rows now (their marks stay, for the next refresh)."""
    for start in range(0, len(customer_ids), BATCH):
        _recompute(customer_ids[start:start + BATCH])


def on_customers_erased(*, customer_ids: list[int], **_ignored) -> None:
    """``customers_erased``: the region and birthdays leave the facts rows in the erasure's transaction, not a minute
    later."""
    recompute(list(customer_ids))


def pending_at_least(n: int) -> bool:
    """Whether n or more customers are marked (without counting them all)."""
    return FactsDirty.objects.order_by()[n - 1:n].exists() if n > 0 else True


def _take(n: int) -> list[int]:
    lock = " FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM campaigns_factsdirty WHERE customer_id IN "
            f"(SELECT customer_id FROM campaigns_factsdirty ORDER BY customer_id LIMIT %s{lock}) RETURNING customer_id",
            [n])
        return [row[0] for row in cursor.fetchall()]


def _recompute(ids: list[int]) -> None:
    postgres = connection.vendor == "postgresql"
    if postgres:
        among, param, json_object = "= ANY(%(ids)s)", ids, "jsonb_object_agg"
    else:
        among, param, json_object = "IN (SELECT value FROM json_each(%(ids)s))", json.dumps(ids), "json_group_object"
    true, false = ("TRUE", "FALSE") if postgres else ("1", "0")
    columns = ["live", "gender", "stage", "joined_at", "sido", "sigungu", "birth_min", "birth_max", "last_sale_at",
               "sales", "spent", "units", "unit_spent", "rfm_segment", "churn_risk", "p_alive", "clv_12m"]
    sql = f"""
        INSERT INTO campaigns_customerfacts (customer_id, {', '.join(columns)})
        SELECT c.id,
               CASE WHEN c.merged_into_id IS NULL AND c.erased_at IS NULL AND NOT c.processing_suspended
                    THEN {true} ELSE {false} END,
               c.gender, c.stage, c.joined_at, a.sido, a.sigungu, b.lo, b.hi,
               o.last_sale_at, COALESCE(o.sales, 0), o.spent, COALESCE(m.units, '{{}}'), COALESCE(o.unit_spent, '{{}}'),
               x.rfm_segment, x.churn_risk, x.p_alive, x.clv_12m
        FROM customers_customer c
        LEFT JOIN customers_address a ON a.customer_id = c.id AND a.is_primary
        LEFT JOIN (
            SELECT customer_id, MIN(year * 10000 + month * 100 + day) AS lo, MAX(year * 10000 + month * 100 + day) AS hi
            FROM customers_anniversary
            WHERE kind = 'birthday' AND year IS NOT NULL AND customer_id {among}
            GROUP BY customer_id
        ) b ON b.customer_id = c.id
        LEFT JOIN (
            SELECT customer_id, {json_object}('u' || unit_id, 1) AS units
            FROM customers_membership WHERE customer_id {among} GROUP BY customer_id
        ) m ON m.customer_id = c.id
        LEFT JOIN (
            SELECT customer_id, MAX(last_sale_at) AS last_sale_at, SUM(sales) AS sales, SUM(spent) AS spent,
                   {json_object}('u' || unit_id, spent) AS unit_spent
            FROM (
                SELECT customer_id, unit_id, MAX(CASE WHEN kind = 'sale' THEN ordered_at END) AS last_sale_at,
                       SUM(CASE WHEN kind = 'sale' THEN 1 ELSE 0 END) AS sales, SUM(total) AS spent
                FROM sales_order
                WHERE NOT needs_review AND customer_id {among}
                GROUP BY customer_id, unit_id
            ) per_unit
            GROUP BY customer_id
        ) o ON o.customer_id = c.id
        LEFT JOIN analytics_customermetrics x ON x.customer_id = c.id
        WHERE c.id {among}
        ON CONFLICT (customer_id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in columns)}
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, {"ids": param})


# --- compilation -----------------------------------------------------------------------------------------------------

def compile_tree(tree: dict, *, now: dt.datetime | None = None) -> Q | None:
    """The Q over ``CustomerFacts`` of a validated tree, or None when a rule is not answered here."""
    now = now or timezone.now()
    units = dict(BusinessUnit.objects.values_list("code", "pk"))
    return _compile(tree, now, units)


def _compile(node: dict, now: dt.datetime, units: dict) -> Q | None:
    if "rules" in node:
        parts = [_compile(child, now, units) for child in node["rules"]]
        return None if any(part is None for part in parts) else combine(node["op"], parts)
    rule = dict(node)
    if rule.get("unit"):
        rule["unit_id"] = units.get(rule["unit"])
    compiler = _COMPILERS.get(rule["field"])
    return compiler(rule, now, units) if compiler else None


def _negated_unless(rule, positive: str, condition: Q) -> Q:
    return condition if rule["operator"] == positive else ~condition


def _age(rule, now, units):
    today = timezone.localdate(now)
    year = today.year - rule["value"] - (1 if rule["operator"] == "lte" else 0)
    key = year * 10000 + today.month * 100 + today.day
    # At least N: some birthday on or before the key date; at most N: some birthday after it (as rules._age).
    return Q(birth_min__lte=key) if rule["operator"] == "gte" else Q(birth_max__gt=key)


def _column(name):
    return lambda rule, now, units: (Q(**{f"{name}__in": rule["value"]}) if rule["operator"] in ("in", "eq")
                                     else ~Q(**{f"{name}__in": rule["value"]}))


def _joined_days(rule, now, units):
    moment = now - dt.timedelta(days=rule["value"])
    return Q(joined_at__lte=moment) if rule["operator"] == "gte" else Q(joined_at__gte=moment)


def _member_of(rule, now, units):
    keys = [f"u{units[code]}" for code in rule["value"] if code in units]
    member = Q(units__has_any_keys=keys) if keys else Q(pk__in=[])
    return _negated_unless(rule, "in", member)


def _spent(rule, now, units):
    if rule.get("days"):
        return None
    if rule.get("unit_id"):
        if rule["operator"] != "gte":
            return None  # "below X at a unit" must count customers without a key; left to the exact query
        return Q(**{f"unit_spent__u{rule['unit_id']}__gte": rule["value"]})
    return _negated_unless(rule, "gte", Q(spent__gte=rule["value"]))


def _days_since_purchase(rule, now, units):
    if rule.get("unit_id"):
        return None
    recent = Q(last_sale_at__gte=now - dt.timedelta(days=rule["value"])) if rule["value"] else Q(last_sale_at__isnull=False)
    return ~recent if rule["operator"] == "gte" else recent


def _visits(rule, now, units):
    if rule.get("days") or rule.get("unit_id"):
        return None
    if rule["operator"] == "gte":
        return Q(pk__isnull=False) if rule["value"] <= 0 else Q(sales__gte=rule["value"])
    return Q(sales__lte=rule["value"])


def _metric(name):
    return lambda rule, now, units: Q(**{f"{name}__{'gte' if rule['operator'] == 'gte' else 'lte'}": rule["value"]})


_COMPILERS = {
    "age": _age, "gender": _column("gender"), "stage": _column("stage"), "sido": _column("sido"),
    "sigungu": _column("sigungu"), "joined_days": _joined_days, "member_of": _member_of, "spent": _spent,
    "days_since_purchase": _days_since_purchase, "visits": _visits, "rfm_segment": _column("rfm_segment"),
    "clv_12m": _metric("clv_12m"), "p_alive": _metric("p_alive"), "churn_risk": _metric("churn_risk"),
}


def scoped(*, unit: BusinessUnit | None, unit_ids: list[int] | None) -> QuerySet[CustomerFacts]:
    """Live customers' facts, members of ``unit`` (if given) and of one of ``unit_ids`` (None: every unit)."""
    qs = CustomerFacts.objects.filter(live=True)
    if unit is not None:
        qs = qs.filter(units__has_key=f"u{unit.pk}")
    if unit_ids is not None:
        keys = [f"u{pk}" for pk in unit_ids]
        qs = qs.filter(units__has_any_keys=keys) if keys else qs.none()
    return qs
