"""Small SQL helpers of the set-based paths, written for PostgreSQL and SQLite alike."""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
from django.db import connection, transaction

from dangol.core import bulk

# IN lists are cut to this size: SQLite's limit of variables, and a plan PostgreSQL builds quickly.
IN_CHUNK = 5000


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def fetch(sql: str, params: Sequence = ()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return cursor.fetchall()


def execute(sql: str, params: Sequence = ()) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return cursor.rowcount


def epoch(column: str) -> str:
    """An aware timestamp column as integer seconds since the epoch."""
    if is_postgres():
        return f"CAST(FLOOR(EXTRACT(EPOCH FROM {column})) AS BIGINT)"  # CAST alone rounds: .6 s would be the next second
    return f"CAST(strftime('%%s', {column}) AS INTEGER)"


def for_update() -> str:
    """Row locks on PostgreSQL; SQLite's IMMEDIATE transactions already hold the one write lock."""
    return " FOR UPDATE" if is_postgres() else ""


def chunks(values: Sequence, size: int = IN_CHUNK) -> Iterable[Sequence]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def placeholders(count: int) -> str:
    return ", ".join(["%s"] * count)


def allocate_ids(model, count: int) -> np.ndarray:
    """Primary keys for ``count`` new rows: from PostgreSQL's sequence (safe beside the app's own inserts), or on SQLite
    above the maximum (a writing transaction holds SQLite's only write lock)."""
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    if is_postgres():
        table = model._meta.db_table
        low, high = fetch("WITH s AS (SELECT nextval(pg_get_serial_sequence(%s, 'id')) AS v FROM generate_series(1, %s)) "
                          "SELECT min(v), max(v) FROM s", [table, count])[0]
        if high - low + 1 == count:
            return np.arange(low, high + 1, dtype=np.int64)
        # Someone else took values meanwhile: take exactly ``count`` more, whatever they are.
        rows = fetch("SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [table, count])
        return np.array([row[0] for row in rows], dtype=np.int64)
    first = bulk.next_ids([model])[model]
    return first + np.arange(count, dtype=np.int64)


def set_column(model, column: str, ids: np.ndarray, values: np.ndarray) -> None:
    """UPDATE model SET column = value WHERE id = …, for many rows at once."""
    set_columns(model, ids, {column: (values, None, False)})


def lock_accounts(customer_ids: Sequence[int]) -> None:
    """Take the Account row locks of these customers, in customer order (no deadlock between two batches)."""
    from .models import Account

    ids = sorted(set(int(i) for i in customer_ids))
    if not ids or not is_postgres():
        return
    table = Account._meta.db_table
    for part in chunks(ids, 20_000):
        fetch(f"SELECT customer_id FROM {table} WHERE customer_id = ANY(%s) ORDER BY customer_id FOR UPDATE", [list(part)])


def sql_time(value):
    """An aware datetime as the database compares it in hand-written SQL (SQLite stores naive UTC text)."""
    return connection.ops.adapt_datetimefield_value(value)


_temp_tables = iter(range(1, 1 << 62))


def set_columns(model, ids, columns: dict[str, tuple]) -> None:
    """UPDATE many rows, several columns each: ``columns`` maps a column to (int64 values, null mask or None,
    is_time) where a time is given in epoch seconds."""
    ids = np.asarray(ids, dtype=np.int64)
    if len(ids) == 0:
        return
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    pk = quote(model._meta.pk.column)
    names = list(columns)
    prepared = []
    for name in names:
        values, null, is_time = columns[name]
        values = np.asarray(values, dtype=np.int64).astype(object)
        if null is not None:
            values[np.asarray(null, dtype=bool)] = None
        prepared.append((values.tolist(), is_time))
    if not is_postgres():
        sets = ", ".join(f"{quote(n)} = " + ("datetime(?, 'unixepoch')" if is_time else "?")
                         for n, (_v, is_time) in zip(names, prepared))
        connection.ensure_connection()
        cursor = connection.connection.cursor()
        try:
            cursor.executemany(f"UPDATE {table} SET {sets} WHERE {pk} = ?",
                               zip(*[v for v, _t in prepared], ids.tolist()))
        finally:
            cursor.close()
        return
    temp = f"loyalty_tmp_cols_{next(_temp_tables)}"
    value_columns = [f"v{i}" for i in range(len(names))]
    sets = ", ".join(f"{quote(n)} = " + (f"to_timestamp(s.{v})" if is_time else f"s.{v}")
                     for n, v, (_values, is_time) in zip(names, value_columns, prepared))
    with transaction.atomic(), connection.cursor() as cursor:  # the temporary table lives until the commit
        cursor.execute(f"CREATE TEMPORARY TABLE {temp} (id bigint, {', '.join(f'{v} bigint' for v in value_columns)}) ON COMMIT DROP")
        with cursor.cursor.copy(f"COPY {temp} (id, {', '.join(value_columns)}) FROM STDIN") as copy:
            for row in zip(ids.tolist(), *[v for v, _t in prepared]):
                copy.write_row(row)
        cursor.execute(f"UPDATE {table} t SET {sets} FROM {temp} s WHERE t.{pk} = s.id")
        cursor.execute(f"DROP TABLE {temp}")
