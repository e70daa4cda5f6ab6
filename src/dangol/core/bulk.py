"""Set-based writes of generated rows: COPY on PostgreSQL, one ``executemany`` per table on SQLite.

The generator hands over whole columns (numpy arrays, lists of strings or one constant for every row) and this module
turns them into what each database loads fastest. Rows carry their primary keys: the caller allocates ids above the
current maximum (``next_ids``) and calls ``reset_sequences`` at the end so that the ORM's next insert does not
collide on PostgreSQL.
"""
from __future__ import annotations

import itertools
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from django.core.management.color import no_style
from django.db import connection
from django.db.models import Max, Model


@dataclass(frozen=True)
class Timestamps:
    """A column of aware UTC times given as integer seconds since the Unix epoch."""

    seconds: np.ndarray


@dataclass(frozen=True)
class NullableInts:
    """A column of integers where ``null`` marks the rows that are NULL."""

    values: np.ndarray
    null: np.ndarray


@dataclass(frozen=True)
class Rows:
    """Rows for one model: field names (or attnames) mapped to columns, all of length ``count``.

    A column is a numpy integer or boolean array, a list of str, a ``Timestamps``, a ``NullableInts``, or a plain
    Python value (str, int, bool or None) used for every row.
    """

    model: type[Model]
    count: int
    columns: dict[str, Any]


@contextmanager
def without_row_triggers():
    """On PostgreSQL as a superuser, skip the per-row foreign-key triggers while loading a chunk (inside a transaction).

    Callers write only references they have just written or read (and locked), so the checks cannot fail; they are most
    of the cost of a COPY: every row would queue a deferred trigger that looks its parent up at commit. Constraints
    that are not triggers (primary keys, unique indexes, CHECKs) are enforced as usual. Without the privilege (a
    managed database) the load is simply slower.
    """
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('is_superuser') = 'on'")
        allowed = cursor.fetchone()[0]
        if allowed:
            cursor.execute("SET LOCAL session_replication_role = replica")
    yield
    if allowed:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = origin")



# Rows go to the database in slices of this size: it bounds the memory of the COPY text and of the parameter lists.
WRITE_SLICE = 200_000


def next_ids(models: Sequence[type[Model]]) -> dict[type[Model], int]:
    """The first free primary key of each model (one above the current maximum)."""
    return {model: (model.objects.aggregate(m=Max("pk"))["m"] or 0) + 1 for model in models}


def reset_sequences(models: Sequence[type[Model]]) -> None:
    """Move PostgreSQL's id sequences past the ids written explicitly (SQLite needs nothing)."""
    statements = connection.ops.sequence_reset_sql(no_style(), list(models))
    if statements:
        with connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)


@contextmanager
def sqlite_large_cache(mebibytes: int = 256):
    """On SQLite, a page cache big enough for the indexes being filled (the default is 2 MiB: a million customers
    load about 20% slower with it), for this connection and the duration of the load. PostgreSQL: nothing to do."""
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA cache_size")
        previous = cursor.fetchone()[0]
        cursor.execute(f"PRAGMA cache_size = {-1024 * int(mebibytes)}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA cache_size = {int(previous)}")


def write(rows: Rows) -> None:
    """Insert the rows; call inside a transaction."""
    if rows.count == 0:
        return
    meta = rows.model._meta
    names = list(rows.columns)
    db_columns = [meta.get_field(name).column for name in names]
    if connection.vendor == "postgresql":
        _copy_postgresql(meta.db_table, db_columns, rows)
    elif connection.vendor == "sqlite":
        _executemany_sqlite(meta.db_table, db_columns, rows)
    else:
        raise NotImplementedError(f"bulk writes are written for PostgreSQL and SQLite, not {connection.vendor}")


def _slices(count: int):
    for start in range(0, count, WRITE_SLICE):
        yield slice(start, min(start + WRITE_SLICE, count)), min(WRITE_SLICE, count - start)


def _take(column: Any, part: slice) -> Any:
    if isinstance(column, Timestamps):
        return Timestamps(column.seconds[part])
    if isinstance(column, NullableInts):
        return NullableInts(column.values[part], column.null[part])
    if isinstance(column, (np.ndarray, list)):
        return column[part]
    return column


def _iso_seconds(seconds: np.ndarray, suffix: str) -> list[str]:
    """'YYYY-MM-DD HH:MM:SS' + suffix for each epoch second, built without a Python loop.

    Django writes an aware datetime to SQLite as ``str(naive UTC datetime)``, which for whole seconds is exactly
    this form; SQLite compares datetimes as text, so the generated rows must match it to the character.
    """
    text = np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s").astype(f"<U{19 + len(suffix)}")
    codepoints = text.view(np.uint32).reshape(len(text), -1)
    codepoints[:, 10] = ord(" ")  # numpy writes the ISO 'T' separator
    for offset, char in enumerate(suffix):
        codepoints[:, 19 + offset] = ord(char)
    return text.tolist()


# --- SQLite ---------------------------------------------------------------------------------------------------

def _sqlite_values(column: Any, count: int):
    if isinstance(column, Timestamps):
        return _iso_seconds(column.seconds, "")
    if isinstance(column, NullableInts):
        values = column.values.astype(object)
        values[column.null] = None
        return values.tolist()
    if isinstance(column, np.ndarray):
        return column.astype(np.int64).tolist() if column.dtype == bool else column.tolist()
    if isinstance(column, list):
        return column
    return itertools.repeat(int(column) if isinstance(column, bool) else column, count)


def _executemany_sqlite(table: str, db_columns: list[str], rows: Rows) -> None:
    quote = connection.ops.quote_name
    sql = (f"INSERT INTO {quote(table)} ({', '.join(quote(c) for c in db_columns)}) "
           f"VALUES ({', '.join('?' for _ in db_columns)})")
    # The driver's own cursor: Django's wrapper would log every statement under DEBUG and convert placeholders.
    connection.ensure_connection()
    cursor = connection.connection.cursor()
    try:
        for part, count in _slices(rows.count):
            columns = [_sqlite_values(_take(rows.columns[name], part), count) for name in rows.columns]
            cursor.executemany(sql, zip(*columns))
    finally:
        cursor.close()


# --- PostgreSQL -------------------------------------------------------------------------------------------------

_COPY_SPECIALS = ("\\", "\t", "\n", "\r")
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(values: list[str]) -> list[str]:
    """Escape text for COPY's text format; the generated vocabulary never needs it, so check the column once."""
    joined = "".join(values)
    if any(special in joined for special in _COPY_SPECIALS):
        return [value.translate(_COPY_ESCAPES) for value in values]
    return values


def _copy_values(column: Any, count: int):
    if isinstance(column, Timestamps):
        return _iso_seconds(column.seconds, "+00")
    if isinstance(column, NullableInts):
        values = np.array(list(map(str, column.values.tolist())), dtype=object)
        values[column.null] = "\\N"
        return values.tolist()
    if isinstance(column, np.ndarray):
        if column.dtype == bool:
            return np.where(column, "t", "f").tolist()
        return list(map(str, column.tolist()))
    if isinstance(column, list):
        return _copy_text(column)
    if column is None:
        return itertools.repeat("\\N", count)
    if isinstance(column, bool):
        return itertools.repeat("t" if column else "f", count)
    return itertools.repeat(_copy_text([str(column)])[0], count)


def _copy_postgresql(table: str, db_columns: list[str], rows: Rows) -> None:
    quote = connection.ops.quote_name
    sql = f"COPY {quote(table)} ({', '.join(quote(c) for c in db_columns)}) FROM STDIN"
    with connection.cursor() as cursor:
        with cursor.cursor.copy(sql) as copy:  # the psycopg 3 cursor under Django's wrapper
            for part, count in _slices(rows.count):
                columns = [_copy_values(_take(rows.columns[name], part), count) for name in rows.columns]
                copy.write("\n".join(map("\t".join, zip(*columns))) + "\n")
