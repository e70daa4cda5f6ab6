"""Shared helpers of the import tests: sample files written on the fly, running a job, counting every table."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from django.apps import apps
from django.db import connection

from dangol.core.audit import Actor
from dangol.customers.models import (
    Address,
    Anniversary,
    Consent,
    ContactPoint,
    Customer,
    Interaction,
    Membership,
    Preference,
)
from dangol.ingest import services
from dangol.ingest.models import OrderFlag, SourceRecord
from dangol.sales.models import Order, OrderLine

# The tables an import writes business data to; data_counts() counts these and every other table of the project.
DATA_MODELS = [Customer, ContactPoint, Consent, Membership, Anniversary, Address, Preference, Interaction, SourceRecord,
               Order, OrderLine, OrderFlag]
# Bookkeeping of the import itself: the job, its row errors, the audit trail (and what Django keeps for itself).
BOOKKEEPING = {"ingest.ImportJob", "ingest.RowError", "core.AuditEvent"}


def data_counts() -> dict[str, int]:
    """Rows in every table of the project but the import's bookkeeping, by model (tables of apps whose migrations are
    not there yet are left out)."""
    tables = set(connection.introspection.table_names())
    counts = {}
    for model in apps.get_models():
        meta = model._meta
        if meta.proxy or not meta.managed or meta.label in BOOKKEEPING or meta.db_table not in tables:
            continue
        counts[meta.label] = model._base_manager.count()
    assert all(model._meta.label in counts for model in DATA_MODELS)
    return counts


@pytest.fixture(autouse=True)
def english():
    """The assertions read the English source strings; the app's default language is Korean."""
    from django.utils import translation

    with translation.override("en"):
        yield


class Files:
    """Write import files into a test's temporary directory."""

    def __init__(self, directory: Path):
        self.directory = directory

    def csv(self, name: str, headers: list[str] | None, rows: list[list], *, encoding: str = "utf-8",
            delimiter: str = ",", line_end: str = "\r\n") -> Path:
        out = io.StringIO()
        writer = csv.writer(out, delimiter=delimiter, lineterminator=line_end)
        if headers is not None:
            writer.writerow(headers)
        writer.writerows(rows)
        return self.raw(name, out.getvalue().encode(encoding))

    def xlsx(self, name: str, headers: list[str], rows: list[list]) -> Path:
        from openpyxl import Workbook

        book = Workbook()
        sheet = book.active
        sheet.append(headers)
        for row in rows:
            sheet.append(row)
        path = self.directory / name
        book.save(path)
        return path

    def raw(self, name: str, data: bytes) -> Path:
        path = self.directory / name
        path.write_bytes(data)
        return path


@pytest.fixture
def files(tmp_path) -> Files:
    return Files(tmp_path)


@pytest.fixture
def catalogue(units):
    """The demo units' products (SKUs like BK-BR-CRO), on the units of tests/conftest.py."""
    from dangol.demo.catalogue import ensure_reference_data

    return ensure_reference_data()


@pytest.fixture
def run_import(units, settings, tmp_path):
    """run_import(kind, unit_code, path, mapping=None, dry_run=False, profile=None) → the finished ImportJob."""
    settings.DATA_DIR = tmp_path / "data"

    def run(kind: str, unit_code: str, path, *, mapping: dict | None = None, dry_run: bool = False, profile=None):
        actor = Actor.system("test")
        job = services.create_job(actor=actor, unit=units[unit_code], kind=kind, path=path, mapping=mapping,
                                  profile=profile, dry_run=dry_run)
        job = services.run_job(job, actor=actor)
        job.refresh_from_db()
        return job

    return run


def counts(job) -> tuple[int, int, int, int, int]:
    """(read, created, updated, unchanged, rejected) of a job."""
    return job.rows_read, job.created, job.updated, job.unchanged, job.rejected


def row_errors(job) -> list[tuple[int, str, str, str]]:
    """(row, column, value, code) of each rejected value, in row order."""
    return list(job.row_errors.order_by("row", "code", "id").values_list("row", "column", "value", "code"))


def error_codes(job) -> dict[int, set[str]]:
    result: dict[int, set[str]] = {}
    for row, _column, _value, code in row_errors(job):
        result.setdefault(row, set()).add(code)
    return result
