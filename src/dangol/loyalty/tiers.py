"""Tier reviews, set-based: the whole membership on schedule, a few customers after their purchases.

A customer's qualifying value is their net spend (sales minus refunds, flagged orders left out) or the points they
earned (minus reversals) over the program's rolling period. Reaching a higher tier's threshold upgrades at once and
issues that tier's upgrade coupon. Falling below the current tier's threshold starts a grace period
(``Account.downgrade_at``); a customer who requalifies meanwhile keeps the tier, otherwise the next review after the
grace period moves them down to the tier their value then reaches. Each change is recorded (TierChange), written
on the timeline and announced with the ``tier_changed`` event.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from dangol.core import bulk, events
from dangol.core.bulk import NullableInts, Rows, Timestamps
from dangol.customers.models import Interaction

from . import db
from .earning import ensure_accounts
from .models import TIMELINE_KIND, Account, CouponSource, LedgerEntry, Program, Tier, TierCause, TierChange
from .wallet import issue_coupons

# Below this many customers a review reads just them; above it, everyone (one scan beats thousands of IN lists).
SMALL_REVIEW = 20_000
NONE = -1


@dataclass(frozen=True)
class TierChangeNotice:
    """One item of the ``tier_changed`` event."""

    customer_id: int
    from_tier: str | None  # tier codes; None: no tier
    to_tier: str | None
    direction: str  # "up" or "down"
    at: dt.datetime
    cause: str
    coupon_ids: tuple[int, ...] = ()


@dataclass
class TierReview:
    upgraded: int = 0
    downgraded: int = 0
    grace_started: int = 0
    grace_cleared: int = 0
    changes: list[TierChangeNotice] = field(default_factory=list)

    @property
    def summary_line(self) -> str:
        return (f"upgraded: {self.upgraded}, downgraded: {self.downgraded}, grace started: {self.grace_started}, "
                f"grace cleared: {self.grace_cleared}")


def _in_clause(column: str, ids: list[int]) -> tuple[str, list]:
    if db.is_postgres():
        return f" AND {column} = ANY(%s)", [ids]
    return f" AND {column} IN ({db.placeholders(len(ids))})", ids


def qualifying_values(customer_ids: Sequence[int] | None, *, since: dt.datetime, until: dt.datetime,
                      basis: str) -> dict[int, int]:
    if basis == "points":
        base = (f"SELECT customer_id, SUM(points) FROM {LedgerEntry._meta.db_table} WHERE kind IN ('earn', 'reverse') "
                f"AND at >= %s AND at <= %s")
        column = "customer_id"
        params = [db.sql_time(since), db.sql_time(until)]
    else:
        base = ("SELECT customer_id, SUM(total) FROM sales_order WHERE customer_id IS NOT NULL AND needs_review = %s "
                "AND ordered_at >= %s AND ordered_at <= %s")
        column = "customer_id"
        params = [False, db.sql_time(since), db.sql_time(until)]
    values: dict[int, int] = {}
    if customer_ids is None:
        values.update(db.fetch(base + f" GROUP BY {column}", params))
        return values
    for part in db.chunks(list(customer_ids)):
        clause, extra = _in_clause(column, list(part))
        values.update(db.fetch(base + clause + f" GROUP BY {column}", params + extra))
    return values


def _current(customer_ids: Sequence[int] | None) -> dict[int, tuple[int | None, int]]:
    """customer → (tier id, downgrade_at in epoch seconds or NONE) of live customers holding a tier."""
    table = Account._meta.db_table
    base = (f"SELECT a.customer_id, a.tier_id, {db.epoch('a.downgrade_at')} FROM {table} a "
            f"JOIN customers_customer c ON c.id = a.customer_id WHERE c.merged_into_id IS NULL")
    rows = []
    if customer_ids is None:
        rows = db.fetch(base + " AND (a.tier_id IS NOT NULL OR a.downgrade_at IS NOT NULL)")
    else:
        for part in db.chunks(list(customer_ids)):
            clause, extra = _in_clause("a.customer_id", list(part))
            rows += db.fetch(base + clause, extra)
    return {customer: (tier, NONE if down is None else int(down)) for customer, tier, down in rows}


def _decide(customers: np.ndarray, values: dict[int, int], current: dict, tiers: list[Tier], now_s: int, grace_s: int):
    """The decision for each customer, as arrays: target tier index, current index, and the masks of what happens."""
    thresholds = [t.threshold for t in tiers]
    index_of = {t.pk: i for i, t in enumerate(tiers)}
    value = np.array([values.get(int(c), 0) for c in customers], dtype=np.int64)
    target = np.full(len(customers), NONE, dtype=np.int64)
    for i, threshold in enumerate(thresholds):
        target = np.where(value >= threshold, i, target)
    held = [current.get(int(c), (None, NONE)) for c in customers]
    tier_ids = [h[0] for h in held]
    cur = np.array([NONE if t is None else index_of.get(t, -2) for t in tier_ids], dtype=np.int64)
    down_at = np.array([h[1] for h in held], dtype=np.int64)
    retired = cur == -2  # a tier switched off in the admin: its holders move to what they qualify for now
    grace_due = (down_at != NONE) & (down_at <= now_s)
    up = (target > cur) & ~retired
    below = (target < cur) & ~retired
    down_now = retired | (below & (grace_due | (grace_s == 0)))
    grace_start = below & ~down_now & (down_at == NONE)
    grace_clear = (target >= cur) & ~retired & (down_at != NONE)
    return value, target, cur, up, down_now, grace_start, grace_clear


def evaluate_tiers(*, customer_ids: Sequence[int] | None = None, now: dt.datetime | None = None,
                   cause: str = TierCause.SCHEDULE) -> TierReview:
    """Review the tiers of these customers (None: everyone). Call inside a transaction."""
    now = now or timezone.now()
    review = TierReview()
    tiers = list(Tier.objects.filter(is_active=True).order_by("rank"))
    if not tiers and not Account.objects.filter(tier__isnull=False).exists():
        return review  # no tiers configured, nobody holds one: nothing to review
    program = Program.current()
    if customer_ids is not None:
        customer_ids = sorted(set(int(c) for c in customer_ids))
        if not customer_ids:
            return review
        if len(customer_ids) > SMALL_REVIEW:
            wanted = set(customer_ids)
            customer_ids = None
        else:
            wanted = None
    else:
        wanted = None
    since = now - dt.timedelta(days=program.tier_period_days)
    values = qualifying_values(customer_ids, since=since, until=now, basis=program.tier_basis)
    current = _current(customer_ids)
    everyone = set(values) | set(current)
    if wanted is not None:
        everyone &= wanted
    customers = np.array(sorted(everyone), dtype=np.int64)
    if len(customers) == 0:
        return review
    now_s = int(now.timestamp())
    grace_s = int(program.tier_grace_days) * 86_400
    _value, _target, _cur, up, down_now, grace_start, grace_clear = _decide(customers, values, current, tiers, now_s, grace_s)
    candidates = customers[up | down_now | grace_start | grace_clear]
    if len(candidates) == 0:
        return review
    with transaction.atomic():
        ensure_accounts(customers[up].tolist(), now)
        db.lock_accounts(candidates.tolist())
        # Decide again on what the locks now protect: a purchase may have changed a tier since the first reading.
        current = _current(candidates.tolist())
        value, target, cur, up, down_now, grace_start, grace_clear = _decide(candidates, values, current, tiers, now_s, grace_s)
        _apply(review, candidates, value, target, cur, up, down_now, grace_start, grace_clear, current, tiers, now, grace_s, cause)
    if review.changes:
        events.emit("tier_changed", changes=review.changes)
    return review


def _apply(review: TierReview, customers, value, target, cur, up, down_now, grace_start, grace_clear, current, tiers,
           now: dt.datetime, grace_s: int, cause: str) -> None:
    now_s = int(now.timestamp())
    tier_id_at = np.array([t.pk for t in tiers] + [0], dtype=np.int64)  # index NONE (-1) reads the trailing 0
    changed = up | down_now
    keep_grace = grace_clear & ~changed
    rows = changed | grace_start | keep_grace
    if not rows.any():
        return
    ids = customers[rows]
    new_target = target[rows]
    new_tier = np.where(changed[rows], tier_id_at[new_target], 0)
    old_tier = np.array([current.get(int(c), (None, NONE))[0] or 0 for c in ids], dtype=np.int64)
    tier_col = np.where(changed[rows], new_tier, old_tier)
    tier_null = tier_col == 0
    since_col = np.full(len(ids), now_s, dtype=np.int64)
    down_col = np.where(grace_start[rows], now_s + grace_s, 0)
    down_null = ~grace_start[rows]
    columns = {"tier_id": (tier_col, tier_null, False), "downgrade_at": (down_col, down_null, True)}
    changed_ids = customers[changed]
    if changed.any():
        # tier_since changes only with the tier: a separate, narrower update keeps the others' dates.
        db.set_columns(Account, changed_ids, {"tier_since": (np.full(len(changed_ids), now_s), tier_id_at[target[changed]] == 0, True)})
    db.set_columns(Account, ids, columns)
    review.grace_started = int(grace_start.sum())
    review.grace_cleared = int(keep_grace.sum())
    if not changed.any():
        return
    by_index = {i: t for i, t in enumerate(tiers)}
    old_ids = [current.get(int(c), (None, NONE))[0] for c in changed_ids]
    new_index = target[changed]
    directions = np.where(up[changed], "up", "down")
    review.upgraded = int(up.sum())
    review.downgraded = int(down_now.sum())
    count = len(changed_ids)
    bulk.write(Rows(TierChange, count, {
        "customer": changed_ids,
        "from_tier": NullableInts(np.array([t or 0 for t in old_ids], dtype=np.int64), np.array([t is None for t in old_ids])),
        "to_tier": NullableInts(tier_id_at[new_index], new_index == NONE),
        "at": Timestamps(np.full(count, now_s)), "cause": cause, "qualifying_value": value[changed],
    }))
    # Upgrade coupons, one batch per tier.
    coupons: dict[int, list[int]] = {}
    for i, tier in by_index.items():
        if tier.upgrade_coupon_id is None:
            continue
        receivers = changed_ids[(new_index == i) & up[changed]]
        if len(receivers):
            template = tier.upgrade_coupon
            if not template.is_active:
                continue
            for customer, coupon in zip(receivers.tolist(), issue_coupons(template=template, customer_ids=receivers.tolist(),
                                                                         source=CouponSource.TIER, source_ref=tier.code, now=now)):
                coupons.setdefault(customer, []).append(coupon)
    tier_names = {t.pk: t.name for t in Tier.objects.all()}
    summaries = []
    for customer, old, index, direction in zip(changed_ids.tolist(), old_ids, new_index.tolist(), directions.tolist()):
        new_name = by_index[index].name if index != NONE else _("no tier")
        old_name = tier_names.get(old, _("no tier")) if old else _("no tier")
        if direction == "up":
            text = _("Tier upgraded: %(old)s → %(new)s") % {"old": old_name, "new": new_name}
            if customer in coupons:
                text += " · " + _("coupon issued")
        else:
            text = _("Tier lowered: %(old)s → %(new)s") % {"old": old_name, "new": new_name}
        summaries.append(text[:300])
    bulk.write(Rows(Interaction, count, {
        "customer": changed_ids, "kind": TIMELINE_KIND,
        "occurred_at": Timestamps(np.full(count, now_s)), "unit": None, "channel": "", "summary": summaries, "body": "",
        "amount": None, "ref_type": "loyalty.tierchange", "ref_id": None, "created_by": None,
    }))
    codes = {t.pk: t.code for t in Tier.objects.all()}
    for customer, old, index, direction in zip(changed_ids.tolist(), old_ids, new_index.tolist(), directions.tolist()):
        review.changes.append(TierChangeNotice(
            customer_id=customer, from_tier=codes.get(old) if old else None,
            to_tier=by_index[index].code if index != NONE else None, direction=direction, at=now, cause=cause,
            coupon_ids=tuple(coupons.get(customer, ())),
        ))
