"""The facts the metrics are computed from, read with set-based SQL and handed over as polars columns.

Every query filters, joins (and, for the order lines, aggregates) in the database and streams its whole result out
in one go (COPY on PostgreSQL, one cursor on SQLite; see ``fetch``); nothing here loops over customers.

Why the sales come out one row per order rather than per customer and day: the metrics need, at three cut-off days,
per-day figures (distinct purchase days, the value of the first purchase day) and the exact first and last sale.
Grouping 4.7 M orders into 4.6 M (customer, day) groups is the slowest thing PostgreSQL can be asked here (a hash
aggregate of 1 GB, ~10 s on the 2-core benchmark machine, against ~4 s to stream the rows); polars groups them in a
fraction of a second, for every cut-off at once. Order lines, ten million rows, are aggregated in SQL (to one row
per customer).

Days are calendar days in Seoul, numbered from 1970-01-01 (Korea has kept UTC+9 without daylight saving since
1988, so a fixed offset gives the same day on both databases).

What counts (issue 4's outlier rule and the refund rule):
- orders flagged ``needs_review`` are left out, and so are refunds of flagged sales;
- a sale counts as a purchase unless a refund known by the cut-off cancels it entirely (a sale is refunded at most
  once); a partial refund lowers the value of its sale from the day it is made.
"""
from __future__ import annotations

import datetime as dt
import io

import polars as pl
from django.db import connection

SEOUL_OFFSET_SECONDS = 9 * 3600
DAY_SECONDS = 86_400
EPOCH = dt.date(1970, 1, 1)
_US = 1_000_000


def day_number(day: dt.date) -> int:
    return (day - EPOCH).days


def day_date(number: int) -> dt.date:
    return EPOCH + dt.timedelta(days=int(number))


def end_of_day(number: int) -> dt.datetime:
    """The instant the Seoul day ``number`` ends (midnight after it), as an aware UTC datetime."""
    return dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=(number + 1) * DAY_SECONDS - SEOUL_OFFSET_SECONDS)


def seoul_today(now: dt.datetime) -> dt.date:
    return day_date((int(now.timestamp()) + SEOUL_OFFSET_SECONDS) // DAY_SECONDS)


def seoul_day(column: pl.Expr) -> pl.Expr:
    """The Seoul day number of a UTC datetime column."""
    return ((column.dt.epoch("us") + SEOUL_OFFSET_SECONDS * _US) // (DAY_SECONDS * _US)).cast(pl.Int32)


def ts(column: str) -> str:
    """Select a timestamp column so that ``fetch(..., timestamps=...)`` can read it: seconds since the epoch as a
    double on PostgreSQL (formatting and parsing 4.7 M timestamps as text costs ~5 s more; a double carries
    microseconds exactly enough to round back to them until 2106), Django's UTC text on SQLite (cast, so that the
    driver does not turn a declared datetime column into Python objects)."""
    return f"date_part('epoch', {column})" if connection.vendor == "postgresql" else f"CAST({column} AS TEXT)"


def fetch(sql: str, params: dict, schema: dict[str, pl.DataType], *, timestamps: tuple[str, ...] = ()) -> pl.DataFrame:
    """Run a query and return its rows as a polars frame with the given column names and types.

    PostgreSQL streams the result with COPY … TO STDOUT (text format) and polars parses it in one go: several times
    faster than fetching a million rows as Python tuples (string_agg'ing the rows into a few big ones was tried and
    was slower still). SQLite fetches through one cursor. Columns named in ``timestamps`` (selected with ``ts``)
    become UTC datetimes."""
    names = list(schema)
    postgres = connection.vendor == "postgresql"
    text_schema = {name: ((pl.Float64 if postgres else pl.String) if name in timestamps else dtype)
                   for name, dtype in schema.items()}
    with connection.cursor() as cursor:
        if postgres:
            buffer = io.BytesIO()
            with cursor.cursor.copy(f"COPY ({sql}) TO STDOUT", params) as copy:  # psycopg 3 under Django's wrapper
                for chunk in copy:
                    buffer.write(chunk)
            if buffer.tell():
                raw, buffer = buffer.getvalue(), None  # one copy of the text at a time
                frame = pl.read_csv(raw, separator="\t", has_header=False, new_columns=names,
                                    schema_overrides=text_schema, null_values=["\\N"], quote_char=None)
                del raw
            else:
                frame = pl.DataFrame(schema=text_schema)
        else:
            cursor.execute(sql, params)
            frame = pl.DataFrame(cursor.fetchall(), schema=text_schema, orient="row")
    return frame.with_columns([_utc(pl.col(name), postgres) for name in timestamps])


def _utc(column: pl.Expr, from_epoch_seconds: bool) -> pl.Expr:
    if from_epoch_seconds:
        return pl.from_epoch((column * _US).round().cast(pl.Int64), time_unit="us").dt.replace_time_zone("UTC")
    # SQLite keeps Django's 'YYYY-MM-DD HH:MM:SS[.ffffff]' in UTC.
    return column.str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_unit="us", strict=True).dt.replace_time_zone("UTC")


def tune_session() -> None:
    """Inside the refresh transaction on PostgreSQL: no JIT (it compiles for longer than these scans run), and
    enough memory for the order-line aggregate to stay in memory."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")
            cursor.execute("SET LOCAL work_mem = '256MB'")


def _until(day: int):
    return connection.ops.adapt_datetimefield_value(end_of_day(day))


# --- queries ---------------------------------------------------------------------------------------------------------

def sales(*, until_day: int) -> pl.DataFrame:
    """Every counted sale up to the end of ``until_day`` and every partial refund of one, a row each.

    Columns: customer_id, unit_id, sale_at (the sale's time), value (the sale's total, or the partial refund's
    negative amount), orders (1 for a sale, 0 for a partial refund), known_day and gone_day: the row counts at a
    cut-off day D when ``known_day ≤ D < gone_day`` — a sale from its day until a full refund cancels it, a partial
    refund from the day it is made."""
    sql = f"""
        SELECT o.customer_id, o.unit_id, {ts('o.ordered_at')}, NULL, {ts('c.refunded_at')}, o.total, 1
        FROM sales_order o
        LEFT JOIN (
            SELECT r.refund_of_id AS sale_id, r.ordered_at AS refunded_at
            FROM sales_order r JOIN sales_order s ON s.id = r.refund_of_id
            WHERE r.kind = 'refund' AND NOT r.needs_review AND r.ordered_at < %(until)s AND r.total + s.total <= 0
        ) c ON c.sale_id = o.id
        WHERE o.kind = 'sale' AND NOT o.needs_review AND o.customer_id IS NOT NULL AND o.ordered_at < %(until)s
        UNION ALL
        SELECT s.customer_id, s.unit_id, {ts('s.ordered_at')}, {ts('r.ordered_at')}, NULL, r.total, 0
        FROM sales_order r JOIN sales_order s ON s.id = r.refund_of_id
        WHERE r.kind = 'refund' AND NOT r.needs_review AND r.ordered_at < %(until)s AND r.total + s.total > 0
          AND s.kind = 'sale' AND NOT s.needs_review AND s.customer_id IS NOT NULL
    """
    frame = fetch(sql, {"until": _until(until_day)}, {
        "customer_id": pl.Int64, "unit_id": pl.Int64, "sale_at": pl.String, "refunded_at": pl.String,
        "cancelled_at": pl.String, "value": pl.Int64, "orders": pl.Int8,
    }, timestamps=("sale_at", "refunded_at", "cancelled_at"))
    never = pl.lit(2**31 - 1, dtype=pl.Int32)
    return frame.select(
        "customer_id", "unit_id", "sale_at", "value", "orders",
        day=seoul_day(pl.col("sale_at")),
        known_day=seoul_day(pl.coalesce("refunded_at", "sale_at")),
        gone_day=pl.when(pl.col("cancelled_at").is_null()).then(never).otherwise(seoul_day(pl.col("cancelled_at"))),
    )


def costs(*, until_day: int) -> pl.DataFrame:
    """Revenue and product cost per customer up to the end of ``until_day``, from the order lines of every order
    that counts (sales and refunds; a cancelled sale and its refund add up to nothing): revenue = Σ line totals,
    cost = Σ quantity × unit cost (refund lines have negative quantities)."""
    sql = """
        SELECT o.customer_id, SUM(l.line_total) AS revenue, SUM(l.quantity * l.unit_cost) AS cost
        FROM sales_orderline l
        JOIN sales_order o ON o.id = l.order_id
        WHERE o.customer_id IS NOT NULL AND NOT o.needs_review AND o.ordered_at < %(until)s
          AND (o.refund_of_id IS NULL OR o.refund_of_id NOT IN (SELECT f.id FROM sales_order f WHERE f.needs_review))
        GROUP BY o.customer_id
    """
    return fetch(sql, {"until": _until(until_day)}, {"customer_id": pl.Int64, "revenue": pl.Int64, "cost": pl.Int64})


def refund_events(*, until_day: int) -> pl.DataFrame:
    """(customer, day) of every refund that counts, for the churn model's refund count at each cut-off."""
    sql = f"""
        SELECT s.customer_id, {ts('r.ordered_at')}
        FROM sales_order r JOIN sales_order s ON s.id = r.refund_of_id
        WHERE r.kind = 'refund' AND NOT r.needs_review AND NOT s.needs_review AND s.customer_id IS NOT NULL
          AND r.ordered_at < %(until)s
    """
    frame = fetch(sql, {"until": _until(until_day)}, {"customer_id": pl.Int64, "at": pl.String}, timestamps=("at",))
    return frame.select("customer_id", day=seoul_day(pl.col("at")))


def complaint_events(*, until_day: int) -> pl.DataFrame:
    """(customer, day) of every complaint case on the timeline (the service app files cases as 'case' entries)."""
    sql = f"""
        SELECT i.customer_id, {ts('i.occurred_at')} FROM customers_interaction i
        WHERE i.kind = 'case' AND i.occurred_at < %(until)s
    """
    frame = fetch(sql, {"until": _until(until_day)}, {"customer_id": pl.Int64, "at": pl.String}, timestamps=("at",))
    return frame.select("customer_id", day=seoul_day(pl.col("at")))


def marketing_consent_events(*, until_day: int) -> pl.DataFrame:
    """Marketing consent grants and withdrawals: customer, channel, day, at (for the order), id, granted (0/1)."""
    sql = f"""
        SELECT c.customer_id, c.channel, {ts('c.at')}, c.id, CASE WHEN c.granted THEN 1 ELSE 0 END
        FROM customers_consent c
        WHERE c.purpose = 'marketing' AND c.at < %(until)s
    """
    frame = fetch(sql, {"until": _until(until_day)}, {
        "customer_id": pl.Int64, "channel": pl.String, "at": pl.String, "id": pl.Int64, "granted": pl.Int8,
    }, timestamps=("at",))
    return frame.with_columns(day=seoul_day(pl.col("at")))


def live_customers() -> pl.DataFrame:
    """Every live (not merged) customer, by id, with the day they joined."""
    sql = f"SELECT c.id, {ts('c.joined_at')} FROM customers_customer c WHERE c.merged_into_id IS NULL"
    frame = fetch(sql, {}, {"id": pl.Int64, "joined_at": pl.String}, timestamps=("joined_at",))
    return frame.select("id", joined_day=seoul_day(pl.col("joined_at"))).sort("id")
