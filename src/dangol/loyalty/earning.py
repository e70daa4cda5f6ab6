"""Set-based earning and reversal: one order at the counter, a whole imported file, or a backfill of every order.

The same code runs for all three: one SQL aggregation per chunk of orders (order × product category), the arithmetic
in NumPy (``rules``), and the entries and lots written in bulk (COPY on PostgreSQL). An order that already earned (or
a refund that already reversed) is left out by the query, and a unique constraint backs that up, so replaying an
event, re-running an import's handler or running the backfill twice changes nothing.

Orders flagged for review (``needs_review``) earn nothing and reverse nothing until a manager accepts them; accepting
runs them through here again.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from dangol.core import bulk
from dangol.core.bulk import Rows, Timestamps
from dangol.customers.models import Interaction

from . import db, rules
from .models import (
    TIMELINE_KIND,
    Account,
    CategoryMultiplier,
    EarnRule,
    EntryKind,
    LedgerEntry,
    Lot,
    Program,
    Promotion,
    Tier,
)

ORDERS_PER_CHUNK = 200_000


@dataclass
class Applied:
    """What a run of ``apply_orders`` wrote."""

    earned_orders: int = 0
    earned_points: int = 0
    reversed_orders: int = 0
    reversed_points: int = 0
    customers: set[int] = field(default_factory=set)

    def add(self, other: "Applied") -> None:
        self.earned_orders += other.earned_orders
        self.earned_points += other.earned_points
        self.reversed_orders += other.reversed_orders
        self.reversed_points += other.reversed_points
        self.customers |= other.customers


def earn_config(program: Program | None = None) -> rules.EarnConfig:
    program = program or Program.current()
    return rules.EarnConfig(
        default_rate_bp=program.default_rate_bp,
        unit_rates={unit_id: (rate if active else program.default_rate_bp)
                    for unit_id, rate, active in EarnRule.objects.values_list("unit_id", "rate_bp", "is_active")},
        category_pct=dict(CategoryMultiplier.objects.values_list("category_id", "multiplier_pct")),
        promotions=[rules.Promo(p.unit_id, p.category_id, int(p.starts_at.timestamp()), int(p.ends_at.timestamp()),
                                p.multiplier_pct)
                    for p in Promotion.objects.filter(is_active=True)],
    )


# --- order filters ----------------------------------------------------------------------------------------------------

def _id_filters(column: str, order_ids: Sequence[int] | None, id_range: tuple[int, int] | None):
    """(SQL condition, params) pieces that together cover the orders asked for."""
    if id_range is not None:
        yield f"{column} BETWEEN %s AND %s", [int(id_range[0]), int(id_range[1])]
        return
    ids = np.unique(np.asarray(order_ids or [], dtype=np.int64))
    if len(ids) == 0:
        return
    # Imported orders get consecutive ids: a range per run of consecutive ids is a much cheaper query than IN.
    breaks = np.flatnonzero(np.diff(ids) != 1) + 1
    runs = np.split(ids, breaks)
    if len(runs) * 20 <= len(ids):
        for run in runs:
            for start in range(0, len(run), ORDERS_PER_CHUNK):
                part = run[start:start + ORDERS_PER_CHUNK]
                yield f"{column} BETWEEN %s AND %s", [int(part[0]), int(part[-1])]
        return
    for part in db.chunks(ids.tolist()):
        if db.is_postgres():
            yield f"{column} = ANY(%s)", [list(part)]
        else:
            yield f"{column} IN ({db.placeholders(len(part))})", list(part)


# --- accounts --------------------------------------------------------------------------------------------------------

def ensure_accounts(customer_ids: Sequence[int], now: dt.datetime | None = None) -> int:
    """Create the missing accounts (member number, referral code) of these customers, set-based. Returns how many."""
    ids = np.unique(np.asarray(list(customer_ids), dtype=np.int64))
    if len(ids) == 0:
        return 0
    now_s = int((now or timezone.now()).timestamp())
    created = 0
    table = Account._meta.db_table
    for _attempt in range(5):
        missing = _without_account(ids)
        if len(missing) == 0:
            break
        numbers = rules.new_member_numbers(len(missing))
        codes = rules.new_codes(len(missing), 8)
        created += _insert_accounts(table, missing, numbers, codes, now_s)
        ids = missing  # a drawn number or code that was taken already: those customers try again with new ones
    return created


def _without_account(ids: np.ndarray) -> np.ndarray:
    have: list[int] = []
    table = Account._meta.db_table
    for part in db.chunks(ids.tolist(), 50_000 if db.is_postgres() else db.IN_CHUNK):
        if db.is_postgres():
            have += [r[0] for r in db.fetch(f"SELECT customer_id FROM {table} WHERE customer_id = ANY(%s)", [list(part)])]
        else:
            have += [r[0] for r in db.fetch(f"SELECT customer_id FROM {table} WHERE customer_id IN ({db.placeholders(len(part))})", part)]
    return np.setdiff1d(ids, np.asarray(have, dtype=np.int64))


def _insert_accounts(table: str, customer_ids: np.ndarray, numbers: list[str], codes: list[str], now_s: int) -> int:
    """INSERT … ON CONFLICT DO NOTHING: a concurrent creation of the same account (or a number drawn twice) is skipped,
    and the caller looks again."""
    columns = "customer_id, member_number, referral_code, points_owed, created_at"
    if db.is_postgres():
        # In a transaction of its own when the caller has none (a page creating an account on first view): the
        # temporary table lives until the commit.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("CREATE TEMPORARY TABLE IF NOT EXISTS loyalty_tmp_accounts "
                           "(customer_id bigint, member_number text, referral_code text) ON COMMIT DROP")
            cursor.execute("TRUNCATE loyalty_tmp_accounts")
            with cursor.cursor.copy("COPY loyalty_tmp_accounts (customer_id, member_number, referral_code) FROM STDIN") as copy:
                rows = zip(customer_ids.tolist(), numbers, codes)
                copy.write("".join(f"{c}\t{n}\t{r}\n" for c, n, r in rows))
            cursor.execute(f"INSERT INTO {table} ({columns}) SELECT customer_id, member_number, referral_code, 0, to_timestamp(%s) "
                           f"FROM loyalty_tmp_accounts ON CONFLICT DO NOTHING", [now_s])
            count = cursor.rowcount
            cursor.execute("DROP TABLE loyalty_tmp_accounts")
            return count
    connection.ensure_connection()
    raw = connection.connection.cursor()
    try:
        before = connection.connection.total_changes
        stamp = dt.datetime.fromtimestamp(now_s, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        raw.executemany(f"INSERT INTO {table} ({columns}) VALUES (?, ?, ?, 0, ?) ON CONFLICT DO NOTHING",
                        [(c, n, r, stamp) for c, n, r in zip(customer_ids.tolist(), numbers, codes)])
        return connection.connection.total_changes - before
    finally:
        raw.close()


# --- earning ---------------------------------------------------------------------------------------------------------

def _earn_rows(condition: str, params: list, special_categories: list[int]) -> dict[str, np.ndarray]:
    """Amounts of the sales under ``condition`` that may earn and have not earned yet, as rows of (order, category),
    sorted by order.

    The order's total is the amount of every category earning at the plain rate (category 0 here); only the lines of
    categories with a multiplier of their own (or a promotion of their own) are read and summed apart. Without such
    categories no order line is read at all: a backfill of ten million lines reads only their orders."""
    entry_table = LedgerEntry._meta.db_table
    pending = (f"{condition} AND o.kind = 'sale' AND o.needs_review = %s AND o.customer_id IS NOT NULL "
               f"AND NOT EXISTS (SELECT 1 FROM {entry_table} e WHERE e.order_id = o.id AND e.kind = 'earn')")
    orders = db.fetch(f"SELECT o.id, o.customer_id, o.unit_id, {db.epoch('o.ordered_at')}, 0, o.total FROM sales_order o "
                      f"WHERE {pending} ORDER BY o.id", [*params, False])
    if not orders:
        return {}
    matrix = np.array(orders, dtype=np.int64)
    if special_categories:
        special = db.fetch(f"""
            SELECT o.id, o.customer_id, o.unit_id, {db.epoch('o.ordered_at')}, p.category_id, SUM(l.line_total)
            FROM sales_order o
            JOIN sales_orderline l ON l.order_id = o.id
            JOIN sales_product p ON p.id = l.product_id
            WHERE {pending} AND p.category_id IN ({db.placeholders(len(special_categories))})
            GROUP BY o.id, o.customer_id, o.unit_id, o.ordered_at, p.category_id""",
            [*params, False, *special_categories])
        if special:
            extra = np.array(special, dtype=np.int64)
            # What the special categories account for leaves the order's plain-rate amount.
            position = np.searchsorted(matrix[:, 0], extra[:, 0])
            np.subtract.at(matrix[:, 5], position, extra[:, 5])
            matrix = np.concatenate([matrix, extra])
            matrix = matrix[np.argsort(matrix[:, 0], kind="stable")]
    return {"order": matrix[:, 0], "customer": matrix[:, 1], "unit": matrix[:, 2], "at": matrix[:, 3],
            "category": matrix[:, 4], "amount": matrix[:, 5]}


def special_categories(config: rules.EarnConfig) -> list[int]:
    """Categories whose lines earn differently from their order's plain rate."""
    return sorted({c for c, pct in config.category_pct.items() if pct != 100}
                  | {p.category_id for p in config.promotions if p.category_id is not None})


def entry_ids_by_order(order_ids: np.ndarray, kind: str) -> np.ndarray:
    """The ids of the ``kind`` entries of these orders (one each), aligned with ``order_ids`` (ascending)."""
    table = LedgerEntry._meta.db_table
    found: dict[int, int] = {}
    for condition, params in _id_filters("order_id", order_ids.tolist(), None):
        found.update(db.fetch(f"SELECT order_id, id FROM {table} WHERE kind = %s AND {condition}", [kind, *params]))
    return np.array([found[o] for o in order_ids.tolist()], dtype=np.int64)


def _tier_pct(customer_ids: np.ndarray) -> np.ndarray:
    """The earn multiplier of each customer's tier today (100 without a tier)."""
    multipliers = dict(Tier.objects.filter(is_active=True).values_list("pk", "earn_multiplier_pct"))
    if not multipliers or not any(v != 100 for v in multipliers.values()):
        return np.full(len(customer_ids), 100, dtype=np.int64)
    wanted = np.unique(customer_ids)
    table = Account._meta.db_table
    if len(wanted) > 20_000:
        rows = db.fetch(f"SELECT customer_id, tier_id FROM {table} WHERE tier_id IS NOT NULL")
    else:
        rows = []
        for part in db.chunks(wanted.tolist()):
            rows += db.fetch(f"SELECT customer_id, tier_id FROM {table} WHERE tier_id IS NOT NULL AND customer_id IN "
                             f"({db.placeholders(len(part))})", part)
    pct = {customer: multipliers.get(tier, 100) for customer, tier in rows}
    return rules.lookup(customer_ids, pct, 100)


def _earn_chunk(condition: str, params: list, *, config: rules.EarnConfig, program: Program, now: dt.datetime,
                via: str, user_id: int | None, timeline_unit: int | None, timeline: bool) -> Applied:
    rows = _earn_rows(condition, params, special_categories(config))
    if not rows:
        return Applied()
    base = rules.line_points(rows["amount"], rows["unit"], rows["category"], rows["at"], config)
    first = np.flatnonzero(np.r_[True, rows["order"][1:] != rows["order"][:-1]])
    tier_pct = _tier_pct(rows["customer"][first])
    starts, points = rules.order_points(rows["order"], base, tier_pct)
    keep = points > 0
    order_ids = rows["order"][starts][keep]
    customers = rows["customer"][starts][keep]
    units = rows["unit"][starts][keep]
    at_s = rows["at"][starts][keep]
    points = points[keep]
    count = len(order_ids)
    result = Applied()
    if count == 0:
        return result
    ensure_accounts(customers.tolist(), now)
    remaining = _pay_what_is_owed(customers, points)
    now_s = int(now.timestamp())
    with bulk.without_row_triggers():
        # Ids come from the table's own sequence during the COPY (cheaper than taking them first), and are read back
        # through the one-earn-per-order index for the lots, which share them.
        bulk.write(Rows(LedgerEntry, count, {
            "customer": customers, "kind": EntryKind.EARN.value, "points": points,
            "at": Timestamps(at_s), "created_at": Timestamps(np.full(count, now_s)), "unit": units, "order": order_ids,
            "reverses": None, "lot": None, "referral": None, "reason": "", "created_by": user_id, "approved_by": None,
            "via": via, "idempotency_key": "",
        }))
        entry_ids = entry_ids_by_order(order_ids, EntryKind.EARN)
        bulk.write(Rows(Lot, count, {
            "entry": entry_ids, "customer": customers, "points": points, "remaining": remaining,
            "earned_at": Timestamps(at_s), "expires_at": Timestamps(rules.expiry_seconds(at_s, program.validity_months)),
            "notified_at": None,
        }))
    if timeline:
        _earn_summaries(customers, points, at_s, timeline_unit, user_id)
    result.earned_orders = count
    result.earned_points = int(points.sum())
    result.customers = set(customers.tolist())
    return result


def _pay_what_is_owed(customers: np.ndarray, points: np.ndarray) -> np.ndarray:
    """New lots of customers who owe points (a refund of points already spent) pay that first: their ``remaining``
    starts lower and the debt shrinks. Few customers owe anything; their accounts are locked here."""
    remaining = points.copy()
    table = Account._meta.db_table
    owing_anywhere = [r[0] for r in db.fetch(f"SELECT customer_id FROM {table} WHERE points_owed > 0")]
    if not owing_anywhere:
        return remaining
    owing = np.intersect1d(np.unique(customers), np.asarray(owing_anywhere, dtype=np.int64))
    if len(owing) == 0:
        return remaining
    db.lock_accounts(owing.tolist())
    owed = dict(Account.objects.filter(customer_id__in=owing.tolist()).values_list("customer_id", "points_owed"))
    for index in np.flatnonzero(np.isin(customers, owing)).tolist():
        customer = int(customers[index])
        pay = min(owed[customer], int(remaining[index]))
        remaining[index] -= pay
        owed[customer] -= pay
    for customer, left in owed.items():
        Account.objects.filter(customer_id=customer).update(points_owed=left)
    return remaining


def _earn_summaries(customers: np.ndarray, points: np.ndarray, at_s: np.ndarray, unit_id: int | None, user_id: int | None) -> None:
    """One timeline entry per customer for the purchases of an import: "+1,234 P for 3 purchases"."""
    order = np.argsort(customers, kind="stable")
    c, p, a = customers[order], points[order], at_s[order]
    starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
    totals = np.add.reduceat(p, starts)
    counts = np.diff(np.r_[starts, len(c)])
    latest = np.maximum.reduceat(a, starts)
    templates: dict[int, str] = {}  # one translation per distinct count, not per customer
    summaries = []
    for total, n in zip(totals.tolist(), counts.tolist()):
        if n not in templates:
            templates[n] = ngettext("+%(points)s points for %(count)s purchase", "+%(points)s points for %(count)s purchases", n)
        summaries.append(templates[n] % {"points": f"{int(total):,}", "count": int(n)})
    count = len(starts)
    bulk.write(Rows(Interaction, count, {
        "customer": c[starts], "kind": TIMELINE_KIND, "occurred_at": Timestamps(latest),
        "unit": unit_id, "channel": "", "summary": summaries, "body": "", "amount": None, "ref_type": "loyalty.earn",
        "ref_id": None, "created_by": user_id,
    }))


# --- reversal ---------------------------------------------------------------------------------------------------------

def _reverse_chunk(condition: str, params: list, *, now: dt.datetime, via: str, user_id: int | None, timeline: bool) -> Applied:
    entries = LedgerEntry._meta.db_table
    lots = Lot._meta.db_table
    sql = f"""
        SELECT r.id, e.customer_id, r.unit_id, r.total, s.total, e.id, e.points,
               COALESCE((SELECT SUM(x.points) FROM {entries} x WHERE x.reverses_id = e.id), 0),
               s.id, {db.epoch('r.ordered_at')}
        FROM sales_order r
        JOIN sales_order s ON s.id = r.refund_of_id
        JOIN {entries} e ON e.order_id = s.id AND e.kind = 'earn'
        WHERE {condition} AND r.kind = 'refund' AND r.needs_review = %s
          AND NOT EXISTS (SELECT 1 FROM {entries} x WHERE x.order_id = r.id AND x.kind = 'reverse')
        ORDER BY r.id"""
    rows = db.fetch(sql, [*params, False])
    todo = []
    for refund_id, customer, unit, refund_total, sale_total, earn_id, earned, already, sale_id, at_s in rows:
        points = rules.reversal_points(int(earned), -int(already), int(refund_total), int(sale_total))
        if points > 0:
            # The earn entry's id is also its lot's.
            todo.append((refund_id, customer, unit, earn_id, points, earn_id, sale_id, at_s))
    if not todo:
        return Applied()
    customers = sorted({row[1] for row in todo})
    db.lock_accounts(customers)
    # Every open lot of these customers, in spending order; the refunded sale's own lot gives back first.
    open_lots: dict[int, list[list[int]]] = defaultdict(list)
    for part in db.chunks(customers):
        for lot_id, customer, remaining in db.fetch(
                f"SELECT entry_id, customer_id, remaining FROM {lots} WHERE remaining > 0 AND customer_id IN ({db.placeholders(len(part))}) "
                f"ORDER BY customer_id, expires_at, entry_id", part):
            open_lots[customer].append([lot_id, remaining])
    before = {lot[0]: lot[1] for held in open_lots.values() for lot in held}
    owed_more: dict[int, int] = defaultdict(int)
    for _refund, customer, _unit, _earn, points, own_lot, _sale, _at in todo:
        held = open_lots[customer]
        own = [lot for lot in held if lot[0] == own_lot]
        taken = rules.consume_fifo(own, points)
        taken += rules.consume_fifo(held, points - taken)
        if taken < points:
            owed_more[customer] += points - taken
    changed = [(lot[0], lot[1]) for held in open_lots.values() for lot in held if lot[1] != before[lot[0]]]
    if changed:
        ids, values = zip(*changed)
        db.set_column(Lot, "remaining", np.array(ids), np.array(values))
    for customer, more in owed_more.items():
        Account.objects.filter(customer_id=customer).update(points_owed=F("points_owed") + more)
    count = len(todo)
    now_s = int(now.timestamp())
    refund_ids = np.array([row[0] for row in todo], dtype=np.int64)
    customer_col = np.array([row[1] for row in todo], dtype=np.int64)
    unit_col = np.array([row[2] for row in todo], dtype=np.int64)
    points_col = np.array([row[4] for row in todo], dtype=np.int64)
    at_s = np.array([row[7] for row in todo], dtype=np.int64)
    with bulk.without_row_triggers():
        bulk.write(Rows(LedgerEntry, count, {
            "customer": customer_col, "kind": EntryKind.REVERSE.value, "points": -points_col,
            "at": Timestamps(at_s), "created_at": Timestamps(np.full(count, now_s)), "unit": unit_col, "order": refund_ids,
            "reverses": np.array([row[3] for row in todo], dtype=np.int64), "lot": None, "referral": None, "reason": "",
            "created_by": user_id, "approved_by": None, "via": via, "idempotency_key": "",
        }))
        if timeline:
            order = np.argsort(refund_ids)
            entry_ids = np.empty(count, dtype=np.int64)
            entry_ids[order] = entry_ids_by_order(refund_ids[order], EntryKind.REVERSE)
            template = _("−%(points)s points: refund of order #%(order)s")
            summaries = [template % {"points": f"{row[4]:,}", "order": row[6]} for row in todo]
            bulk.write(Rows(Interaction, count, {
                "customer": customer_col, "kind": TIMELINE_KIND,
                "occurred_at": Timestamps(at_s), "unit": unit_col, "channel": "", "summary": summaries, "body": "",
                "amount": None, "ref_type": "loyalty.ledgerentry", "ref_id": entry_ids, "created_by": user_id,
            }))
    return Applied(reversed_orders=count, reversed_points=int(points_col.sum()), customers=set(customer_col.tolist()))


# --- the entry point -------------------------------------------------------------------------------------------------

def apply_orders(*, order_ids: Sequence[int] | None = None, id_range: tuple[int, int] | None = None, via: str,
                 user_id: int | None = None, now: dt.datetime | None = None, timeline: bool = False,
                 timeline_unit: int | None = None, earn: bool = True, reverse: bool = True) -> Applied:
    """Earn for the sales and reverse for the refunds among these orders that have not been applied yet.

    Call inside a transaction (the caller's: the order's, the import's, or one backfill chunk)."""
    now = now or timezone.now()
    program = Program.current()
    config = earn_config(program)
    result = Applied()
    if earn:
        for condition, params in _id_filters("o.id", order_ids, id_range):
            result.add(_earn_chunk(condition, params, config=config, program=program, now=now, via=via, user_id=user_id,
                                   timeline_unit=timeline_unit, timeline=timeline))
    if reverse:
        for condition, params in _id_filters("r.id", order_ids, id_range):
            result.add(_reverse_chunk(condition, params, now=now, via=via, user_id=user_id, timeline=timeline))
    return result


def backfill(*, chunk: int = ORDERS_PER_CHUNK, progress: Callable[[str], None] | None = None,
             now: dt.datetime | None = None) -> Applied:
    """Earn for every past sale and reverse every past refund that has not been applied: one transaction per chunk of
    order ids (an interrupted backfill resumes where it stopped; a second run finds nothing to do). Sales first, then
    refunds, so that a refund finds its sale's points whatever the order of their ids."""
    now = now or timezone.now()
    low, high = db.fetch("SELECT MIN(id), MAX(id) FROM sales_order")[0]
    total = Applied()
    if low is None:
        return total
    for earn, reverse, label in ((True, False, "earn"), (False, True, "reverse")):
        for start in range(low, high + 1, chunk):
            with transaction.atomic():
                part = apply_orders(id_range=(start, min(start + chunk - 1, high)), via="backfill", now=now,
                                    earn=earn, reverse=reverse)
            part.customers = set()  # a backfill touches everyone: nothing to follow up customer by customer
            total.add(part)
            if progress:
                progress(f"{label} orders {start:,}–{min(start + chunk - 1, high):,}: "
                         f"{part.earned_orders:,} earned {part.earned_points:,} P, {part.reversed_orders:,} reversed {part.reversed_points:,} P")
    return total
