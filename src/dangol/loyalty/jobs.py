"""Scheduled work on points, set-based: expiring lots, and telling the automations which points expire soon."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from dangol.core import audit, bulk, events
from dangol.core.audit import Actor
from dangol.core.bulk import Rows, Timestamps
from dangol.customers.models import Interaction

from . import db
from .models import TIMELINE_KIND, EntryKind, LedgerEntry, Lot, Program

CUSTOMERS_PER_BATCH = 20_000
NOTICES_PER_EVENT = 10_000


@dataclass(frozen=True)
class ExpiringPoints:
    """One item of the ``points_expiring_soon`` event."""

    customer_id: int
    points: int  # what expires within the notice window
    first_expiry: dt.datetime  # when the first of them expire


@dataclass
class ExpiryRun:
    lots: int = 0
    points: int = 0
    customers: int = 0

    @property
    def summary_line(self) -> str:
        return f"expired lots: {self.lots}, points: {self.points}, customers: {self.customers}"


def _customer_clause(ids: list[int]) -> tuple[str, list]:
    if db.is_postgres():
        return "customer_id = ANY(%s)", [ids]
    return f"customer_id IN ({db.placeholders(len(ids))})", ids


def expire_due_points(*, now: dt.datetime | None = None, actor: Actor | None = None) -> ExpiryRun:
    """Close every lot past its expiry date: one ``expire`` entry per lot for what was left, the lot emptied, and one
    timeline entry per customer. Batches of customers, one transaction each, under their account locks."""
    now = now or timezone.now()
    run = ExpiryRun()
    lots = Lot._meta.db_table
    due = [r[0] for r in db.fetch(f"SELECT DISTINCT customer_id FROM {lots} WHERE remaining > 0 AND expires_at <= %s "
                                  "ORDER BY customer_id", [db.sql_time(now)])]
    for batch in db.chunks(due, CUSTOMERS_PER_BATCH):
        with transaction.atomic():
            db.lock_accounts(batch)
            for part in db.chunks(list(batch)):
                clause, params = _customer_clause(list(part))
                rows = db.fetch(f"SELECT entry_id, customer_id, remaining, {db.epoch('expires_at')} FROM {lots} "
                                f"WHERE remaining > 0 AND expires_at <= %s AND {clause} ORDER BY customer_id, expires_at, entry_id",
                                [db.sql_time(now), *params])
                if rows:
                    _close(np.array(rows, dtype=np.int64), now)
                    # The same rows as just read: the account locks keep everyone else off them.
                    db.execute(f"UPDATE {lots} SET remaining = 0 WHERE remaining > 0 AND expires_at <= %s AND {clause}",
                               [db.sql_time(now), *params])
                    run.lots += len(rows)
                    run.points += int(sum(r[2] for r in rows))
                    run.customers += len({r[1] for r in rows})
    if run.lots:
        audit.record(actor=actor or Actor.system("schedule"), action="loyalty.expire", obj=Program.current(),
                     fields=["points"])
    return run


def _close(rows: np.ndarray, now: dt.datetime) -> None:
    lot_ids, customers, remaining, expires_s = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
    count = len(lot_ids)
    now_s = int(now.timestamp())
    with bulk.without_row_triggers():
        bulk.write(Rows(LedgerEntry, count, {
            "customer": customers, "kind": EntryKind.EXPIRE.value,
            "points": -remaining, "at": Timestamps(expires_s), "created_at": Timestamps(np.full(count, now_s)),
            "unit": None, "order": None, "reverses": None, "lot": lot_ids, "referral": None, "reason": "",
            "created_by": None, "approved_by": None, "via": "schedule", "idempotency_key": "",
        }))
    starts = np.flatnonzero(np.r_[True, customers[1:] != customers[:-1]])
    totals = np.add.reduceat(remaining, starts)
    template = _("−%(points)s points expired")
    summaries = [template % {"points": f"{int(t):,}"} for t in totals.tolist()]
    n = len(starts)
    bulk.write(Rows(Interaction, n, {
        "customer": customers[starts], "kind": TIMELINE_KIND,
        "occurred_at": Timestamps(np.maximum.reduceat(expires_s, starts)), "unit": None, "channel": "",
        "summary": summaries, "body": "", "amount": None, "ref_type": "loyalty.expire", "ref_id": None, "created_by": None,
    }))


def notify_expiring_points(*, now: dt.datetime | None = None) -> int:
    """Announce, once per lot, the points that expire within the program's notice window: ``points_expiring_soon``
    with one item per customer (what expires in the window and when the first of it does). Returns the customers."""
    now = now or timezone.now()
    program = Program.current()
    until = now + dt.timedelta(days=program.expiring_soon_days)
    lots = Lot._meta.db_table
    window = "remaining > 0 AND expires_at > %s AND expires_at <= %s"
    params = [db.sql_time(now), db.sql_time(until)]
    notified = 0
    with transaction.atomic():
        rows = db.fetch(f"SELECT customer_id, SUM(remaining), MIN({db.epoch('expires_at')}) FROM {lots} WHERE {window} "
                        f"AND customer_id IN (SELECT customer_id FROM {lots} WHERE {window} AND notified_at IS NULL) "
                        f"GROUP BY customer_id ORDER BY customer_id", params + params)
        if not rows:
            return 0
        db.execute(f"UPDATE {lots} SET notified_at = %s WHERE {window} AND notified_at IS NULL", [db.sql_time(now), *params])
        notices = [ExpiringPoints(customer_id=c, points=int(p), first_expiry=dt.datetime.fromtimestamp(int(e), dt.timezone.utc))
                   for c, p, e in rows]
        for part in db.chunks(notices, NOTICES_PER_EVENT):
            events.emit("points_expiring_soon", notices=list(part), window_days=program.expiring_soon_days)
        notified = len(notices)
    return notified
