"""The warehouse export: customers, orders and their lines, the analytics snapshot and the loyalty ledgers as Parquet
files partitioned by month, incremental since the last run to the same directory, with a manifest.

Layout of DIR (hive partitioning, so DuckDB, Spark, pandas or a BI tool read each dataset as one table)::

    DIR/manifest.json                          datasets, their schema, files, rows, and the watermarks of the last run
    DIR/orders/month=2026-11/run000007_0.parquet
    DIR/order_lines/month=…  DIR/customers/month=…  DIR/customer_metrics/month=…  DIR/points_ledger/month=…
    DIR/stamp_ledger/month=…  DIR/campaign_recipients/month=…

Set-based all the way: PostgreSQL streams each selection with ``COPY … TO STDOUT`` (SQLite through its cursor into the
same CSV, row by row in C), DuckDB reads that CSV, pseudonymises the customer ids with a keyed HMAC-SHA-256 in SQL,
and writes the Parquet partitions with ``COPY … (FORMAT parquet, PARTITION_BY (month))``. No Python loop per row.

Campaign results: ``campaign_recipients`` lists who each finished campaign run treated (with the variant and the
coupon) and who it kept back in the holdout, so that a BI tool joins them with the orders of the attribution window.

What "incremental" means per dataset:
- orders, order lines, points and stamp ledgers are append-only: rows with an id above the last run's watermark and
  recorded at least ``WAREHOUSE_LAG_SECONDS`` ago (so that a transaction still open when the run starts, with a lower
  id, is not skipped for good);
- customers change: every customer updated since the last run is written again (take the latest ``updated_at`` per
  ``customer``);
- campaign recipients: the recipients of the runs finished since the last run;
- the analytics snapshot is rewritten by each analytics run: a new run's whole snapshot is written once, with its
  ``as_of``.
"""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from dangol.core import audit
from dangol.core.audit import Actor

from .models import ExportRun, ExportStatus

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


def _time(column: str) -> str:
    """A timestamp column as UTC text DuckDB casts to TIMESTAMP (SQLite already stores naive UTC text)."""
    if connection.vendor == "postgresql":
        return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"
    return column


def _bool(column: str) -> str:
    return f"CASE WHEN {column} THEN 1 ELSE 0 END"


@dataclass(frozen=True)
class Dataset:
    name: str
    select: str  # SQL with {where}; columns as named in ``types``
    types: dict[str, str]  # column -> DuckDB type of the Parquet file
    month_of: str  # the column whose month partitions the files
    watermark: str  # "id:<table>:<alias>" (append-only) | "time:<column>" (changed or finished since) | "run"
    customer_columns: tuple[str, ...] = ("customer",)
    identity_columns: tuple[str, ...] = ()  # left out of a pseudonymised export


def datasets() -> list[Dataset]:
    t = _time
    unit = "(SELECT code FROM core_businessunit b WHERE b.id = {col})"
    contact = ("(SELECT cp.value FROM customers_contactpoint cp WHERE cp.customer_id = c.id AND cp.kind = '{kind}' "
               "ORDER BY cp.is_primary DESC, cp.id LIMIT 1)")
    return [
        Dataset("customers", f"""
            SELECT c.id AS customer, c.id AS customer_id, c.name AS name, {contact.format(kind='phone')} AS phone,
                   {contact.format(kind='email')} AS email, {unit.format(col='c.home_unit_id')} AS home_unit, c.stage AS stage,
                   c.gender AS gender, {t('c.joined_at')} AS joined_at, {t('c.updated_at')} AS updated_at,
                   c.merged_into_id AS merged_into, {_bool('c.erased_at IS NOT NULL')} AS erased,
                   {_bool('c.processing_suspended')} AS processing_suspended
            FROM customers_customer c WHERE {{where}}""",
                {"customer": "VARCHAR", "customer_id": "BIGINT", "name": "VARCHAR", "phone": "VARCHAR", "email": "VARCHAR",
                 "home_unit": "VARCHAR", "stage": "VARCHAR", "gender": "VARCHAR", "joined_at": "TIMESTAMP",
                 "updated_at": "TIMESTAMP", "merged_into": "VARCHAR", "erased": "BOOLEAN", "processing_suspended": "BOOLEAN"},
                month_of="updated_at", watermark="time:c.updated_at", customer_columns=("customer", "merged_into"),
                identity_columns=("customer_id", "name", "phone", "email")),
        Dataset("orders", f"""
            SELECT o.id AS order_id, {unit.format(col='o.unit_id')} AS unit, o.customer_id AS customer, o.kind AS kind,
                   o.refund_of_id AS refund_of, o.channel AS channel, {t('o.ordered_at')} AS ordered_at, o.total AS total,
                   {_bool('o.needs_review')} AS needs_review, {t('o.created_at')} AS recorded_at
            FROM sales_order o WHERE {{where}}""",
                {"order_id": "BIGINT", "unit": "VARCHAR", "customer": "VARCHAR", "kind": "VARCHAR", "refund_of": "BIGINT",
                 "channel": "VARCHAR", "ordered_at": "TIMESTAMP", "total": "BIGINT", "needs_review": "BOOLEAN",
                 "recorded_at": "TIMESTAMP"},
                month_of="ordered_at", watermark="id:sales_order:o"),
        Dataset("order_lines", f"""
            SELECT l.id AS line_id, l.order_id AS order_id, {unit.format(col='o.unit_id')} AS unit, o.customer_id AS customer,
                   {t('o.ordered_at')} AS ordered_at, p.sku AS sku, p.name AS product, cat.name AS category,
                   l.quantity AS quantity, l.unit_price AS unit_price, l.unit_cost AS unit_cost, l.line_total AS line_total
            FROM sales_orderline l JOIN sales_order o ON o.id = l.order_id JOIN sales_product p ON p.id = l.product_id
            JOIN sales_category cat ON cat.id = p.category_id WHERE {{where}}""",
                {"line_id": "BIGINT", "order_id": "BIGINT", "unit": "VARCHAR", "customer": "VARCHAR", "ordered_at": "TIMESTAMP",
                 "sku": "VARCHAR", "product": "VARCHAR", "category": "VARCHAR", "quantity": "INTEGER", "unit_price": "BIGINT",
                 "unit_cost": "BIGINT", "line_total": "BIGINT"},
                month_of="ordered_at", watermark="id:sales_order:o"),
        Dataset("customer_metrics", f"""
            SELECT m.customer_id AS customer, m.as_of AS as_of, {t('m.first_order_at')} AS first_order_at,
                   {t('m.last_order_at')} AS last_order_at, m.orders AS orders, m.frequency AS frequency,
                   m.recency_days AS recency_days, m.tenure_days AS tenure_days, m.monetary_total AS monetary_total,
                   m.monetary_avg AS monetary_avg, m.r_score AS r_score, m.f_score AS f_score, m.m_score AS m_score,
                   m.rfm_segment AS rfm_segment, m.p_alive AS p_alive, m.expected_purchases_90 AS expected_purchases_90,
                   m.expected_purchases_365 AS expected_purchases_365, m.clv_12m AS clv_12m, m.churn_risk AS churn_risk,
                   m.revenue AS revenue, m.profit AS profit, m.units_used AS units_used, m.wallet_share AS wallet_share,
                   m.suggested_stage AS suggested_stage
            FROM analytics_customermetrics m WHERE {{where}}""",
                {"customer": "VARCHAR", "as_of": "DATE", "first_order_at": "TIMESTAMP", "last_order_at": "TIMESTAMP",
                 "orders": "INTEGER", "frequency": "INTEGER", "recency_days": "INTEGER", "tenure_days": "INTEGER",
                 "monetary_total": "BIGINT", "monetary_avg": "BIGINT", "r_score": "SMALLINT", "f_score": "SMALLINT",
                 "m_score": "SMALLINT", "rfm_segment": "VARCHAR", "p_alive": "DOUBLE", "expected_purchases_90": "DOUBLE",
                 "expected_purchases_365": "DOUBLE", "clv_12m": "BIGINT", "churn_risk": "DOUBLE", "revenue": "BIGINT",
                 "profit": "BIGINT", "units_used": "SMALLINT", "wallet_share": "DOUBLE", "suggested_stage": "VARCHAR"},
                month_of="as_of", watermark="run"),
        Dataset("points_ledger", f"""
            SELECT e.id AS entry_id, e.customer_id AS customer, e.kind AS kind, e.points AS points, {t('e.at')} AS at,
                   {t('e.created_at')} AS recorded_at, {unit.format(col='e.unit_id')} AS unit, e.order_id AS order_id, e.via AS via
            FROM loyalty_ledgerentry e WHERE {{where}}""",
                {"entry_id": "BIGINT", "customer": "VARCHAR", "kind": "VARCHAR", "points": "BIGINT", "at": "TIMESTAMP",
                 "recorded_at": "TIMESTAMP", "unit": "VARCHAR", "order_id": "BIGINT", "via": "VARCHAR"},
                month_of="at", watermark="id:loyalty_ledgerentry:e"),
        Dataset("stamp_ledger", f"""
            SELECT e.id AS entry_id, e.customer_id AS customer, e.card_id AS card, e.kind AS kind, e.stamps AS stamps,
                   {t('e.at')} AS at, {t('e.created_at')} AS recorded_at, {unit.format(col='e.unit_id')} AS unit,
                   e.order_id AS order_id, e.coupon_id AS coupon_id, e.via AS via
            FROM loyalty_stampentry e WHERE {{where}}""",
                {"entry_id": "BIGINT", "customer": "VARCHAR", "card": "BIGINT", "kind": "VARCHAR", "stamps": "INTEGER",
                 "at": "TIMESTAMP", "recorded_at": "TIMESTAMP", "unit": "VARCHAR", "order_id": "BIGINT", "coupon_id": "BIGINT",
                 "via": "VARCHAR"},
                month_of="at", watermark="id:loyalty_stampentry:e"),
        Dataset("campaign_recipients", f"""
            SELECT x.id AS recipient_id, r.id AS run_id, r.campaign_id AS campaign, cp.name AS campaign_name,
                   {unit.format(col='cp.unit_id')} AS unit, cp.channel AS channel, cp.kind AS kind, r.occurrence AS occurrence,
                   {t('r.started_at')} AS started_at, {t('r.finished_at')} AS finished_at, cp.attribution_days AS attribution_days,
                   x.customer_id AS customer, x.variant AS variant, {_bool('x.is_holdout')} AS is_holdout, x.coupon_id AS coupon_id
            FROM campaigns_recipient x JOIN campaigns_campaignrun r ON r.id = x.run_id
            JOIN campaigns_campaign cp ON cp.id = r.campaign_id WHERE {{where}}""",
                {"recipient_id": "BIGINT", "run_id": "BIGINT", "campaign": "BIGINT", "campaign_name": "VARCHAR",
                 "unit": "VARCHAR", "channel": "VARCHAR", "kind": "VARCHAR", "occurrence": "VARCHAR",
                 "started_at": "TIMESTAMP", "finished_at": "TIMESTAMP", "attribution_days": "INTEGER", "customer": "VARCHAR",
                 "variant": "VARCHAR", "is_holdout": "BOOLEAN", "coupon_id": "BIGINT"},
                month_of="started_at", watermark="time:r.finished_at"),
    ]


# --- pseudonyms ----------------------------------------------------------------------------------------------------------

def pseudonym_key() -> bytes:
    """``DANGOL_WAREHOUSE_KEY``, or a key derived from the secret key. Changing it changes every pseudonym."""
    configured = getattr(settings, "WAREHOUSE_KEY", "") or ""
    if configured:
        return configured.encode()
    return hmac.new(settings.SECRET_KEY.encode(), b"dangol-warehouse-pseudonyms", hashlib.sha256).digest()


def pseudonym(customer_id: int, key: bytes | None = None) -> str:
    """The pseudonym of one customer id, as the export writes it (for tests and for a lookup by someone allowed)."""
    return hmac.new(key or pseudonym_key(), str(int(customer_id)).encode(), hashlib.sha256).hexdigest()


def _hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    return bytes(b ^ 0x5C for b in key), bytes(b ^ 0x36 for b in key)


def _hmac_sql(column: str) -> str:
    """HMAC-SHA-256 of the column's decimal text, in DuckDB SQL ($opad and $ipad are the key's padded blobs)."""
    return (f"CASE WHEN {column} IS NULL THEN NULL ELSE "
            f"sha256($opad || unhex(sha256($ipad || encode(CAST(CAST({column} AS BIGINT) AS VARCHAR))))) END")


# --- the run -------------------------------------------------------------------------------------------------------------

@dataclass
class Result:
    run: ExportRun
    rows: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # per dataset: the selection's dump, then the Parquet

    @property
    def summary_line(self) -> str:
        return ", ".join(f"{name}: {n}" for name, n in self.rows.items()) + f", files: {len(self.files)}"


def may_export_identities(user) -> bool:
    return bool(user is not None and user.is_authenticated and user.sees_all_units)


def lag() -> dt.timedelta:
    return dt.timedelta(seconds=int(getattr(settings, "WAREHOUSE_LAG_SECONDS", 60)))


def export_warehouse(*, directory: str | Path, actor: Actor, identities: bool = False, now: dt.datetime | None = None,
                     only: list[str] | None = None) -> Result:
    """Write everything new since the last run to ``directory`` and return what was written.

    ``identities`` (customer ids, names, phones and emails in clear) needs an admin; the schedule never asks for it.
    A directory keeps the kind it was started with: a pseudonymised export never gets identities added and back."""
    if identities and actor.user is not None and not may_export_identities(actor.user):
        raise PermissionDenied(_("Only an admin may export customer identities."))
    if identities and actor.user is None and actor.via != "cli":
        raise PermissionDenied(_("Only an admin may export customer identities."))
    target = Path(directory).expanduser().resolve()
    if target.exists() and not target.is_dir():
        raise ValidationError({"directory": [_("%(path)s is not a directory.") % {"path": target}]})
    now = now or timezone.now()
    previous = ExportRun.objects.filter(target=str(target), status=ExportStatus.DONE).order_by("-id").first()
    if previous is not None and not (target / MANIFEST).exists():
        previous = None  # the directory was emptied or replaced: it gets everything again
    if previous is not None and previous.identities != identities:
        raise ValidationError({"directory": [_("This directory holds an export %(kind)s: use another directory.") % {
            "kind": _("with identities") if previous.identities else _("with pseudonyms")}]})
    ExportRun.objects.filter(target=str(target), status=ExportStatus.RUNNING,
                             started_at__lt=now - dt.timedelta(hours=6)).update(status=ExportStatus.FAILED,
                                                                               error="abandoned (no end after 6 hours)")
    try:
        with transaction.atomic():
            run = ExportRun.objects.create(target=str(target), identities=identities, started_at=now,
                                           requested_by=actor.user, via=actor.via[:20])
    except IntegrityError:
        raise ValidationError({"directory": [_("Another export to this directory is running.")]}) from None
    result = Result(run=run)
    staging = target / "_staging"
    try:
        target.mkdir(parents=True, exist_ok=True)
        staging.mkdir(exist_ok=True)
        marks = dict(previous.watermarks) if previous else {}
        new_marks = dict(marks)
        con = duckdb.connect()
        # Bounded memory: beyond it DuckDB spills its tables to the staging directory (ten million order lines fit).
        con.execute(f"SET memory_limit = '{int(getattr(settings, 'WAREHOUSE_MEMORY_MB', 1024))}MB'")
        con.execute(f"SET temp_directory = '{_quote(staging / 'duckdb')}'")
        opad, ipad = _hmac_pads(pseudonym_key())
        for ds in datasets():
            if only and ds.name not in only:
                continue
            where, params, mark = _increment(ds, marks.get(ds.name), now)
            if where is None:
                result.rows[ds.name] = 0
                continue
            csv_path = staging / f"{ds.name}.csv"
            started = time.monotonic()
            _dump(ds.select.format(where=where), params, csv_path)
            dumped = time.monotonic()
            rows, files = _to_parquet(con, ds, csv_path, target, run.pk, identities=identities, opad=opad, ipad=ipad)
            result.seconds[ds.name] = round(time.monotonic() - started, 2)
            result.seconds[ds.name + ".dump"] = round(dumped - started, 2)
            csv_path.unlink(missing_ok=True)
            result.rows[ds.name] = rows
            result.files += files
            if mark is not None:
                new_marks[ds.name] = mark
        con.close()
        shutil.rmtree(staging, ignore_errors=True)
        _write_manifest(target, run, result, new_marks, identities)
    except BaseException as exc:
        _discard_run_files(target, run.pk)
        shutil.rmtree(staging, ignore_errors=True)
        ExportRun.objects.filter(pk=run.pk).update(status=ExportStatus.FAILED, finished_at=timezone.now(), error=str(exc)[:2000])
        raise
    run.status, run.finished_at, run.watermarks = ExportStatus.DONE, timezone.now(), new_marks
    run.rows, run.files = result.rows, result.files
    run.save(update_fields=["status", "finished_at", "watermarks", "rows", "files"])
    audit.record(actor=actor, action="warehouse.export", obj=run,
                 fields=[name for name, n in result.rows.items() if n] + (["identities"] if identities else []))
    return result


def _increment(ds: Dataset, mark, now: dt.datetime):
    """(SQL condition, params, the new watermark) of the rows this run writes; condition None: nothing to write."""
    kind = ds.watermark
    if kind.startswith("id:"):
        _id, table, alias = kind.split(":")
        low = int(mark or 0)
        row = _fetch(f"SELECT MAX(id) FROM {table} WHERE created_at <= %s", [connection.ops.adapt_datetimefield_value(now - lag())])
        high = int(row[0][0] or 0)
        if high <= low:
            return None, [], low
        return f"{alias}.id > {low} AND {alias}.id <= {high}", [], high
    if kind.startswith("time:"):
        # Rows whose time (an update, a run's end) falls after the last run's watermark and at least the lag ago.
        column = kind.split(":", 1)[1]
        since = dt.datetime.fromisoformat(mark) if mark else None
        until = now - lag()
        condition = f"{column} <= %s" if since is None else f"{column} > %s AND {column} <= %s"
        params = [until] if since is None else [since, until]
        return condition, [connection.ops.adapt_datetimefield_value(p) for p in params], until.isoformat()
    if kind == "run":
        from dangol.analytics.models import ModelRun  # analytics is below the warehouse

        latest = ModelRun.objects.order_by("-id").values_list("id", flat=True).first()
        if latest is None or latest <= int(mark or 0):
            return None, [], mark
        return "1 = 1", [], int(latest)
    raise ValueError(kind)


def _fetch(sql: str, params) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _dump(sql: str, params: list, path: Path) -> None:
    """The selection as CSV with a header: PostgreSQL's COPY streams it; SQLite's cursor feeds csv's C writer."""
    connection.ensure_connection()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # COPY takes no bound parameters: the only values here are timestamps this module formatted itself.
            literal = sql
            for value in params:
                literal = literal.replace("%s", "'" + str(value).replace("'", "''") + "'", 1)
            with open(path, "wb") as out, cursor.cursor.copy(f"COPY ({literal}) TO STDOUT WITH (FORMAT csv, HEADER true)") as copy:
                for chunk in copy:
                    out.write(chunk)
        return
    with connection.cursor() as cursor, open(path, "w", newline="", encoding="utf-8") as out:
        cursor.execute(sql, params)
        writer = csv.writer(out)
        writer.writerow([d[0] for d in cursor.description])
        while True:
            rows = cursor.fetchmany(50_000)
            if not rows:
                break
            writer.writerows(rows)


def _to_parquet(con, ds: Dataset, csv_path: Path, target: Path, run_id: int, *, identities: bool, opad: bytes,
                ipad: bytes) -> tuple[int, list[str]]:
    """The CSV as typed, pseudonymised Parquet partitions. Each distinct customer id is hashed once (a table of
    pseudonyms joined back), not once per row: an order line file names each customer about ten times."""
    columns = {name: kind for name, kind in ds.types.items() if identities or name not in ds.identity_columns}
    read_types = ", ".join(f"'{name}': 'VARCHAR'" for name in ds.types)
    con.execute(f"CREATE OR REPLACE TEMP TABLE src AS SELECT * FROM read_csv('{_quote(csv_path)}', header = true, "
                f"columns = {{{read_types}}}, nullstr = '', quote = '\"', escape = '\"')")
    hashed = [name for name in columns if name in ds.customer_columns] if not identities else []
    if hashed:
        ids = " UNION ".join(f'SELECT CAST("{name}" AS BIGINT) AS k FROM src WHERE "{name}" IS NOT NULL' for name in hashed)
        con.execute(f"CREATE OR REPLACE TEMP TABLE pseudonyms AS SELECT k, {_hmac_sql('k')} AS h FROM (SELECT DISTINCT k FROM ({ids}))",
                    {"opad": opad, "ipad": ipad})
    select, joins = [], []
    for name, kind in columns.items():
        source = f'src."{name}"'
        if name in hashed:
            alias = f"p_{name}"
            joins.append(f"LEFT JOIN pseudonyms {alias} ON {alias}.k = CAST({source} AS BIGINT)")
            select.append(f"{alias}.h AS {name}")
        elif name in ds.customer_columns:
            select.append(f"CAST({source} AS VARCHAR) AS {name}")
        elif kind == "BOOLEAN":
            select.append(f"CAST(CAST({source} AS INTEGER) AS BOOLEAN) AS {name}")
        else:
            select.append(f"CAST({source} AS {kind}) AS {name}")
    select.append(f"strftime(CAST(src.\"{ds.month_of}\" AS TIMESTAMP), '%Y-%m') AS month")
    relation = f"SELECT {', '.join(select)} FROM src {' '.join(joins)}"
    out = target / ds.name
    pattern = f"run{run_id:06d}_{{i}}"
    count = con.execute(f"COPY ({relation}) TO '{_quote(out)}' (FORMAT parquet, PARTITION_BY (month), "
                        f"FILENAME_PATTERN '{pattern}', OVERWRITE_OR_IGNORE, COMPRESSION zstd)").fetchone()[0]
    con.execute("DROP TABLE IF EXISTS src")
    con.execute("DROP TABLE IF EXISTS pseudonyms")
    files = sorted(str(p.relative_to(target)) for p in out.glob(f"month=*/run{run_id:06d}_*.parquet"))
    return int(count), files


def _quote(path: Path) -> str:
    return str(path).replace("'", "''")


def _discard_run_files(target: Path, run_id: int) -> None:
    for path in target.glob(f"*/month=*/run{run_id:06d}_*.parquet"):
        path.unlink(missing_ok=True)


def _schema(ds: Dataset, identities: bool) -> list[dict]:
    columns = [{"name": n, "type": t} for n, t in ds.types.items() if identities or n not in ds.identity_columns]
    for column in columns:
        if column["name"] in ds.customer_columns:
            column["type"] = "VARCHAR"
            column["note"] = "customer id" if identities else "HMAC-SHA-256 pseudonym of the customer id"
    return columns + [{"name": "month", "type": "VARCHAR", "note": f"partition: YYYY-MM of {ds.month_of}"}]


def _write_manifest(target: Path, run: ExportRun, result: Result, marks: dict, identities: bool) -> None:
    """manifest.json: every dataset with its schema, all its files and rows so far, and this run's watermarks. Written
    to a temporary name and renamed, so a reader never sees half a manifest."""
    path = target / MANIFEST
    old = json.loads(path.read_text()) if path.exists() else {}
    old_sets = old.get("datasets", {})
    sets = {}
    for ds in datasets():
        before = old_sets.get(ds.name, {})
        new_files = [f for f in result.files if f.startswith(ds.name + "/")]
        sets[ds.name] = {
            "path": f"{ds.name}/", "partitioned_by": "month", "month_of": ds.month_of,
            "incremental": ("changed rows again (latest updated_at wins)" if ds.watermark == "time:c.updated_at" else
                            "rows of the campaign runs finished since" if ds.watermark.startswith("time:") else
                            "the whole snapshot of each new analytics run" if ds.watermark == "run" else "append-only"),
            "schema": _schema(ds, identities),
            "files": sorted(set(before.get("files", [])) | set(new_files)),
            "rows": int(before.get("rows", 0)) + result.rows.get(ds.name, 0),
        }
    runs = old.get("runs", [])[-99:] + [{
        "run": run.pk, "started_at": run.started_at.isoformat(), "finished_at": timezone.now().isoformat(),
        "rows": result.rows, "files": result.files, "watermarks": marks}]
    manifest = {"format": FORMAT_VERSION, "generator": "dangol export warehouse", "identities": identities,
                "pseudonyms": None if identities else "HMAC-SHA-256 of the customer id with the warehouse key",
                "times": "UTC", "money": "KRW (integers)", "watermarks": marks, "datasets": sets, "runs": runs,
                "example": "SELECT month, unit, SUM(total) FROM read_parquet('DIR/orders/*/*.parquet', "
                           "hive_partitioning = true) GROUP BY ALL ORDER BY ALL"}
    temporary = target / (MANIFEST + ".partial")
    temporary.write_text(json.dumps(manifest, ensure_ascii=False, indent=2))
    os.replace(temporary, path)
