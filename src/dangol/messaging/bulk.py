"""``send_bulk``'s engine: a whole campaign into the outbox in a few statements per chunk, delivery starting meanwhile.

1. **Everything is checked first, nothing written yet**: the call (channel, kind, source…), every row's
   ``customer_id`` (unknown customers are named), and every row's text, rendered exactly as ``send`` renders it
   (variables, ad label, SMS/LMS sizing, CP949): a bad row raises ValidationError before the first row is written.
   Rows of the same customer after the first are skipped (one key per customer).
2. **Then per chunk of ``CHUNK`` rows, one transaction each**: the rendered rows go into a temporary staging table
   (COPY on PostgreSQL, ``executemany`` on SQLite, both through ``dangol.core.bulk``), and the outbox rows and their
   ``Decision`` rows are written set-based from it, the verdict computed by ``compliance.annotate_decisions`` (the SQL
   twin of ``decide``) joined in the same statement: on PostgreSQL one ``WITH … INSERT … SELECT … ON CONFLICT
   (idempotency_key) DO NOTHING RETURNING …, INSERT INTO decision … SELECT`` statement; on SQLite the verdicts
   into a second temporary table, then one ``INSERT … SELECT … ON CONFLICT DO NOTHING`` for the outbox and one for
   the decisions. Every created message gets its ``send`` decision row (stage ``send``, outcome send/hold/block and
   the verdict's reason), as from ``send``.
3. **Each chunk commits** and kicks the dispatcher, so workers deliver the first chunks while the next are queued.
   Called inside a transaction (a campaign run is one), everything stays in the caller's transaction instead and
   the kick waits for its commit.

**Crash or error in the middle** (outside a caller's transaction): the chunks committed so far stay queued and are
delivered; the rest is not written. Calling ``send_bulk`` again with the same rows resumes where it stopped: the keys
already written are counted as ``existing`` and left alone (no second message, no second decision), the others are
written. tests/messaging/test_send_bulk.py checks it.
"""
from __future__ import annotations

import json
from collections import Counter
from typing import Iterable

import numpy as np
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.translation import gettext as _

from dangol.core import bulk as core_bulk
from dangol.core.audit import Actor
from dangol.customers.models import Customer

from . import compliance
from .models import Channel, Decision, Message

CHUNK = 20_000
STAGING = "dangol_msg_bulk_v1"
VERDICTS = "dangol_msg_bulk_verdict_v1"  # SQLite only
_STAGING_COLUMNS = ["customer_id", "idempotency_key", "subtype", "subject", "body", "html", "variables", "post_to"]


class _Prepared:
    """The rendered rows, column by column (one entry per distinct customer, in the callers' order)."""

    def __init__(self):
        self.total = 0
        self.ids: list[int] = []
        self.columns: dict[str, list[str]] = {name: [] for name in _STAGING_COLUMNS[1:-1]}  # post_to: per chunk


def send_bulk(*, rows: Iterable[dict], channel: str, kind: str, source: str, occurrence: str, unit=None,
              actor: Actor | None = None, body: str = "", subject: str = "", template_code: str = "",
              chunk_size: int | None = None, image=None) -> dict:
    from . import services  # render, the call's validation and the kick live with send()

    occurrence = str(occurrence)
    services._validate_call(channel=channel, kind=kind, source=source, occurrence=occurrence, template_code=template_code)
    subtype = services.subtype_for(channel, kind, template_code)
    sender = services.sender_for(unit)
    now = timezone.now()
    prepared = _prepare(rows, channel=channel, kind=kind, subtype=subtype, source=source, occurrence=occurrence, body=body,
                        subject=subject, sender=sender, image=image)
    call = {"channel": channel, "kind": kind, "source": source, "occurrence": occurrence, "unit_id": unit.pk if unit else None,
            "template_code": template_code, "provider": services.provider_name(channel), "now": now,
            "release": compliance.next_morning(now), "subtype": subtype,
            "created_by_id": actor.user.pk if actor is not None and actor.user is not None else None,
            "image_id": image.pk if image is not None else None}
    dispatched = channel not in services.NOT_DISPATCHED
    outer = connection.in_atomic_block
    size = max(1, int(chunk_size or CHUNK))
    outcomes: Counter = Counter()
    try:
        for start in range(0, len(prepared.ids), size):
            part = slice(start, start + size)
            with transaction.atomic():
                created = _write_chunk(prepared, part, call, outcomes)
            if created and dispatched and not outer:
                services.kick_dispatch()  # committed: the workers may start on this chunk (at most one kick per 5 s)
    finally:
        # After the last chunk — or a failure in the middle, the committed chunks being queued — the workers are asked
        # once more whatever the throttle, so nothing waits for the periodic job.
        created_total = sum(outcomes.values())
        if created_total and dispatched:
            if outer:
                transaction.on_commit(lambda: services.kick_dispatch(force=True))
            else:
                services.kick_dispatch(force=True)
    by_reason = Counter()
    status_counts = Counter()
    for (outcome, reason), n in outcomes.items():
        status = services._VERDICT_STATUS[outcome]
        status_counts[status] += n
        if outcome != compliance.SEND:
            by_reason[reason] += n
    return {"total": prepared.total, "created": created_total, "existing": len(prepared.ids) - created_total,
            "queued": status_counts["queued"], "held": status_counts["held"], "blocked": status_counts["blocked"],
            "by_reason": dict(by_reason)}


# --- 1. check and render everything ------------------------------------------------------------------------------

def _prepare(rows, *, channel, kind, subtype, source, occurrence, body, subject, sender, image=None) -> _Prepared:
    from . import services

    out = _Prepared()
    seen: set[int] = set()
    cols = out.columns
    for row in rows:
        out.total += 1
        try:
            cid = int(row["customer_id"])
        except (KeyError, TypeError, ValueError):
            raise ValidationError({"rows": [_("Every row needs a customer_id.")]})
        if cid in seen:
            continue
        seen.add(cid)
        variables = row.get("variables")
        rendered = services.render(channel=channel, kind=kind, subtype=subtype, body=row.get("body", body),
                                   subject=row.get("subject", subject), variables=variables, sender=sender, customer_id=cid,
                                   image=image)
        out.ids.append(cid)
        cols["idempotency_key"].append(services.idempotency_key(source=source, customer_id=cid, channel=channel, occurrence=occurrence))
        cols["subtype"].append(rendered.subtype)
        cols["subject"].append(rendered.subject)
        cols["body"].append(rendered.body)
        cols["html"].append(rendered.html)
        cols["variables"].append(json.dumps(variables or {}, ensure_ascii=False))
    unknown = _unknown_customers(out.ids)
    if unknown:
        raise ValidationError({"rows": [_("Unknown customers: %(ids)s") % {"ids": ", ".join(map(str, unknown[:10]))}]})
    return out


def _unknown_customers(ids: list[int]) -> list[int]:
    if not ids:
        return []
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT t.x FROM unnest(%s::bigint[]) AS t(x) WHERE NOT EXISTS "
                           f"(SELECT 1 FROM {Customer._meta.db_table} c WHERE c.id = t.x) LIMIT 10", [ids])
            return [x for (x,) in cursor.fetchall()]
    unknown: list[int] = []
    for start in range(0, len(ids), 5000):
        part = ids[start:start + 5000]
        known = set(Customer.objects.filter(pk__in=part).values_list("pk", flat=True))
        unknown += [cid for cid in part if cid not in known]
        if len(unknown) >= 10:
            break
    return unknown


# --- 2. one chunk: staging, verdicts, outbox, decisions ------------------------------------------------------------

def _stage(prepared: _Prepared, part: slice, channel: str) -> int:
    ids = prepared.ids[part]
    if channel == Channel.POST:  # letters go to the full postal address line, as send() addresses them
        addresses = compliance.addresses_for(ids, channel)
        post_to = [addresses.get(cid, "") for cid in ids]
    else:
        post_to = [""] * len(ids)
    columns = {"customer_id": np.asarray(ids, dtype=np.int64), "post_to": post_to}
    columns.update({name: values[part] for name, values in prepared.columns.items()})
    rows = core_bulk.Rows(model=Message, count=len(ids), columns={name: columns[name] for name in _STAGING_COLUMNS})
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {STAGING} (customer_id bigint, idempotency_key text, subtype text, "
                           "subject text, body text, html text, variables text, post_to text)")
            cursor.execute(f"TRUNCATE {STAGING}")
        else:
            cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {STAGING} (customer_id integer, idempotency_key text, subtype text, "
                           "subject text, body text, html text, variables text, post_to text)")
            cursor.execute(f"DELETE FROM {STAGING}")
    if connection.vendor == "postgresql":
        core_bulk._copy_postgresql(STAGING, _STAGING_COLUMNS, rows)
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {STAGING}")  # the planner sees 20,000 rows, not the default guess
    else:
        core_bulk._executemany_sqlite(STAGING, _STAGING_COLUMNS, rows)
    return len(ids)


def _verdict_sql(call: dict) -> tuple[str, list]:
    """``annotate_decisions`` over the staged customers: columns id, m_outcome, m_reason, m_to."""
    customers = Customer.objects.filter(pk__in=RawSQL(f"SELECT customer_id FROM {STAGING}", ()))
    qs = compliance.annotate_decisions(customers, channel=call["channel"], kind=call["kind"], subtype=call["subtype"],
                                       now=call["now"]).order_by().values("id", "m_outcome", "m_reason", "m_to")
    sql, params = qs.query.sql_with_params()
    return sql, list(params)


def _message_select(call: dict, s: str, v: str, pg: bool) -> tuple[str, list]:
    """The SELECT list that turns a staged row (alias ``s``) and its verdict (alias ``v``: ``outcome``, ``vreason``,
    ``to_found``) into an outbox row, as ``send`` fills one: blocked rows have no address, queued ones no reason,
    held ones wait for 08:00."""
    cast = (lambda sql_type: f"::{sql_type}") if pg else (lambda sql_type: "")
    to = f"{s}.post_to" if call["channel"] == Channel.POST else f"{v}.to_found"
    release = call["release"] if pg else connection.ops.adapt_datetimefield_value(call["release"])
    now = call["now"] if pg else connection.ops.adapt_datetimefield_value(call["now"])
    sql = (f"{s}.idempotency_key, %s, %s, {s}.customer_id, %s{cast('bigint')}, %s, {s}.subtype, %s, %s, "
           f"{s}.variables{cast('jsonb')}, CASE WHEN {v}.outcome = 'block' THEN '' ELSE {to} END, {s}.subject, {s}.body, "
           f"{s}.html, CASE {v}.outcome WHEN 'send' THEN 'queued' WHEN 'hold' THEN 'held' ELSE 'blocked' END, "
           f"CASE WHEN {v}.outcome = 'send' THEN '' ELSE {v}.vreason END, '', %s, '', 0, "
           f"CASE WHEN {v}.outcome = 'hold' THEN %s{cast('timestamptz')} END, '', %s, %s{cast('bigint')}, %s{cast('timestamptz')}, "
           f"%s{cast('bigint')}")
    params = [call["source"], call["occurrence"], call["unit_id"], call["channel"], call["kind"], call["template_code"],
              call["provider"], release, False, call["created_by_id"], now, call["image_id"]]
    return sql, params


def _write_chunk(prepared: _Prepared, part: slice, call: dict, outcomes: Counter) -> int:
    """Stage, decide and write one chunk (inside a transaction). Adds (outcome, reason) counts of the created
    messages to ``outcomes``; returns how many were created."""
    from .services import _MESSAGE_COLUMNS

    if not _stage(prepared, part, call["channel"]):
        return 0
    quote = connection.ops.quote_name
    message_table, decision_table = Message._meta.db_table, Decision._meta.db_table
    message_columns = ", ".join(quote(c) for c in _MESSAGE_COLUMNS)
    decision_columns = "message_id, customer_id, channel, kind, stage, outcome, reason, at"
    verdict_sql, verdict_params = _verdict_sql(call)
    created = 0
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            select, select_params = _message_select(call, "src", "src", pg=True)
            cursor.execute(
                f"WITH src AS MATERIALIZED (SELECT s.*, d.m_outcome AS outcome, d.m_reason AS vreason, d.m_to AS to_found "
                f"FROM {STAGING} s JOIN ({verdict_sql}) d ON d.id = s.customer_id), "
                f"ins AS (INSERT INTO {message_table} ({message_columns}) SELECT {select} FROM src "
                f"ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, customer_id), "
                f"dec AS (INSERT INTO {decision_table} ({decision_columns}) SELECT ins.id, ins.customer_id, %s, %s, 'send', "
                f"src.outcome, src.vreason, %s FROM ins JOIN src ON src.customer_id = ins.customer_id RETURNING outcome, reason) "
                f"SELECT outcome, reason, count(*) FROM dec GROUP BY outcome, reason",
                [*verdict_params, *select_params, call["channel"], call["kind"], call["now"]])
            for outcome, reason, n in cursor.fetchall():
                outcomes[(outcome, reason)] += n
                created += n
            return created
        # SQLite: the verdicts into their own temporary table, then the outbox and the decisions from both.
        now = connection.ops.adapt_datetimefield_value(call["now"])
        cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {VERDICTS} (customer_id integer PRIMARY KEY, outcome text, vreason text, "
                       "to_found text)")
        cursor.execute(f"DELETE FROM {VERDICTS}")
        cursor.execute(f"INSERT INTO {VERDICTS} (customer_id, outcome, vreason, to_found) "
                       f"SELECT id, m_outcome, m_reason, m_to FROM ({verdict_sql})", verdict_params)
        select, select_params = _message_select(call, "s", "v", pg=False)
        # Each created row carries this call's created_at to the microsecond: that is how its decision finds it.
        cursor.execute(f"INSERT INTO {message_table} ({message_columns}) SELECT {select} FROM {STAGING} s "
                       f"JOIN {VERDICTS} v ON v.customer_id = s.customer_id WHERE true ON CONFLICT (idempotency_key) DO NOTHING",
                       select_params)
        created = cursor.rowcount
        if created:
            cursor.execute(f"INSERT INTO {decision_table} ({decision_columns}) SELECT m.id, m.customer_id, %s, %s, 'send', v.outcome, "
                           f"v.vreason, %s FROM {STAGING} s JOIN {message_table} m ON m.idempotency_key = s.idempotency_key "
                           f"JOIN {VERDICTS} v ON v.customer_id = s.customer_id WHERE m.created_at = %s AND m.source = %s",
                           [call["channel"], call["kind"], now, now, call["source"]])
            cursor.execute(f"SELECT v.outcome, v.vreason, count(*) FROM {STAGING} s JOIN {message_table} m "
                           f"ON m.idempotency_key = s.idempotency_key JOIN {VERDICTS} v ON v.customer_id = s.customer_id "
                           f"WHERE m.created_at = %s AND m.source = %s GROUP BY v.outcome, v.vreason", [now, call["source"]])
            for outcome, reason, n in cursor.fetchall():
                outcomes[(outcome, reason)] += n
    return created
