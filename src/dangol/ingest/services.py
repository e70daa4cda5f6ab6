"""Import jobs: create, run (all good rows in one transaction, or none), report; saved column mappings."""
from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from dangol.core import audit, bulk
from dangol.core.audit import Actor
from dangol.core.bulk import Rows
from dangol.core.models import BusinessUnit

from . import customers_import, orders_import
from . import normalize as n
from .fields import check_mapping, guess_mapping
from .models import ImportJob, ImportKind, JobStatus, MappingProfile, RowError
from .reader import UnreadableFile, read_table

log = logging.getLogger(__name__)


class _DryRun(Exception):
    """Raised at the end of a dry run so that the transaction rolls back everything it wrote."""


def upload_dir() -> Path:
    path = Path(settings.DATA_DIR) / "imports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def keep_upload(uploaded) -> Path:
    """Store an uploaded file under the data directory with a random name (never the client's file name as a path)."""
    suffix = Path(uploaded.name).suffix.lower()[:10] if uploaded.name else ""
    target = upload_dir() / f"{uuid.uuid4().hex}{suffix if suffix.isascii() else ''}"
    with target.open("wb") as out:
        for chunk in uploaded.chunks():
            out.write(chunk)
    return target


@transaction.atomic
def create_job(*, actor: Actor, unit: BusinessUnit, kind: str, path: str | Path, original_name: str = "",
               mapping: dict[str, str] | None = None, profile: MappingProfile | None = None, dry_run: bool = False,
               draft: bool = False) -> ImportJob:
    """A job for a file kept under the data directory. ``draft``: the column mapping is chosen next (the wizard);
    otherwise the job is queued as it is (the CLI runs it at once)."""
    if kind not in ImportKind.values:
        raise ValidationError({"kind": [_("Choose customers or order lines.")]})
    if profile is not None and (profile.unit_id != unit.pk or profile.kind != kind):
        raise ValidationError({"profile": [_("This saved mapping belongs to another unit or kind of import.")]})
    job = ImportJob.objects.create(kind=kind, unit=unit, path=str(path), status=JobStatus.DRAFT if draft else JobStatus.QUEUED,
                                   original_name=(original_name or Path(path).name)[:200],
                                   mapping=mapping or (profile.mapping if profile else {}), profile=profile, dry_run=dry_run,
                                   created_by=actor.user)
    audit.record(actor=actor, action="import.create", obj=job)
    return job


@dataclass
class Preview:
    headers: list[str]
    rows: list[list[str]]
    encoding: str
    mapping: dict[str, str]  # the guessed or saved mapping for these headers


def preview(job: ImportJob, *, rows: int = 10) -> Preview:
    """The first rows of the job's file and a proposed mapping; raises UnreadableFile."""
    table = read_table(job.path, max_rows=rows)
    guessed = guess_mapping(table.headers, job.kind)
    saved = {h: k for h, k in (job.profile.mapping if job.profile else {}).items() if h in table.headers}
    mapping = {**guessed, **saved} if saved else guessed
    body = table.frame.select(table.headers).head(rows).rows()
    return Preview(headers=table.headers, rows=[list(r) for r in body], encoding=table.encoding, mapping=mapping)


@transaction.atomic
def submit_job(*, actor: Actor, job: ImportJob, mapping: dict[str, str], dry_run: bool, save_as: str = "") -> ImportJob:
    """The mapping is chosen: check it, optionally save it for the source, and queue the job."""
    job = ImportJob.objects.select_for_update().get(pk=job.pk)
    if job.status != JobStatus.DRAFT:
        raise ValidationError(_("This import has already been started."))
    try:
        headers = read_table(job.path, max_rows=1).headers
    except UnreadableFile as exc:
        raise ValidationError(str(exc))
    mapping = {h: k for h, k in mapping.items() if k}
    problems = check_mapping(mapping, headers, job.kind)
    if problems:
        raise ValidationError(problems)
    if save_as.strip():
        job.profile = save_mapping(actor=actor, unit=job.unit, kind=job.kind, name=save_as, mapping=mapping)
    job.mapping, job.dry_run, job.status = mapping, dry_run, JobStatus.QUEUED
    job.save(update_fields=["mapping", "dry_run", "status", "profile"])
    audit.record(actor=actor, action="import.submit", obj=job)
    enqueue_job(job)
    return job


@transaction.atomic
def repeat_for_real(*, actor: Actor, job: ImportJob) -> ImportJob:
    """After a dry run: the same file and mapping, imported for real."""
    if not job.dry_run or job.status != JobStatus.DONE:
        raise ValidationError(_("Only a finished dry run can be repeated for real."))
    again = create_job(actor=actor, unit=job.unit, kind=job.kind, path=job.path, original_name=job.original_name,
                       mapping=job.mapping, profile=job.profile)
    enqueue_job(again)
    return again


def enqueue_job(job: ImportJob) -> None:
    from .tasks import run_import

    transaction.on_commit(lambda: run_import.enqueue(job.pk))


def run_job(job: ImportJob, *, actor: Actor) -> ImportJob:
    """Read, check and write the file of a queued job. Never raises for a bad file: the job records why it failed."""
    started = time.monotonic()
    claimed = ImportJob.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(status=JobStatus.RUNNING)
    if not claimed:  # another worker has it, or it ran already: running twice would import twice
        job.refresh_from_db()
        return job
    job.status = JobStatus.RUNNING
    errors = n.empty_errors()
    try:
        table = read_table(job.path)
        job.encoding = table.encoding
        mapping = job.mapping or guess_mapping(table.headers, job.kind)
        problems = check_mapping(mapping, table.headers, job.kind)
        if problems:
            raise UnreadableFile(" ".join(str(p) for p in problems))
        job.mapping = mapping
        job.rows_read = table.row_count
        counts, errors = _import(job, table, mapping, actor)
        for key, value in counts.items():
            setattr(job, key, value)
        job.status = JobStatus.DONE
    except UnreadableFile as exc:
        job.status, job.error = JobStatus.FAILED, str(exc)
    except Exception:
        log.exception("import %s failed", job.pk)  # the traceback carries no row values
        job.status = JobStatus.FAILED
        job.error = _("The import stopped on an unexpected error and wrote nothing. The administrators can see the details in the log.")
    job.seconds = round(time.monotonic() - started, 3)
    job.finished_at = timezone.now()
    with transaction.atomic():
        if errors.height:
            _write_errors(job, errors)
        job.save()
        audit.record(actor=actor, action="import.run" if not job.dry_run else "import.dry_run", obj=job)
    if job.status == JobStatus.DONE and not job.dry_run and job.created + job.updated:
        _after_import(job)
    if not job.dry_run:
        # An uploaded file (or the CLI's copy of one) holds personal data: once imported or refused, Dangol keeps what
        # it imported, not the file. A dry run keeps it for "import for real"; prune_uploads removes forgotten ones.
        discard_upload(job.path)
    return job


def _import(job: ImportJob, table, mapping: dict[str, str], actor: Actor) -> tuple[dict, pl.DataFrame]:
    now = timezone.now()
    today = timezone.localdate()
    unit = job.unit
    ragged = pl.DataFrame({"__row": [r for r, _count in table.ragged_rows], "column": [""] * len(table.ragged_rows),
                           "value": [_("%(n)d fields") % {"n": c} for _r, c in table.ragged_rows],
                           "code": ["ragged"] * len(table.ragged_rows), "ref_row": [None] * len(table.ragged_rows)},
                          schema=n.ERROR_SCHEMA)
    try:
        with transaction.atomic(), bulk.without_row_triggers():
            if job.kind == ImportKind.CUSTOMERS:
                counts, errors = _import_customers(job, table, mapping, actor, now=now, today=today)
            else:
                counts, errors = orders_import.run(job=job, table=table, mapping=mapping, actor=actor, now=now)
            errors = pl.concat([ragged, errors])
            counts["rejected"] = errors.get_column("__row").n_unique()
            if job.dry_run:
                raise _DryRun(counts, errors)
    except _DryRun as done:
        counts, errors = done.args
    return counts, errors


def _import_customers(job, table, mapping, actor, *, now, today):
    unit = job.unit
    checked = customers_import.check(table, mapping, today=today, now=now)
    matched = customers_import.match(checked.good, unit)
    hashes = customers_import.row_hashes(matched)
    matched = matched.with_columns(pl.Series("hash", hashes, dtype=pl.Utf8))
    twice = matched.filter(pl.col("customer_id").is_not_null() & (pl.col("__row") != pl.col("first_for_customer")))
    errors = checked.errors
    if twice.height:
        header_of = {key: header for header, key in mapping.items() if key}
        column = header_of.get("source_id") or header_of.get("phone") or header_of.get("email", "")
        errors = pl.concat([errors, twice.select(
            pl.col("__row"), pl.lit(column, dtype=pl.Utf8).alias("column"), pl.lit("", dtype=pl.Utf8).alias("value"),
            pl.lit("duplicate_in_file", dtype=pl.Utf8).alias("code"), pl.col("first_for_customer").cast(pl.Int64).alias("ref_row"))])
        matched = matched.filter(pl.col("customer_id").is_null() | (pl.col("__row") == pl.col("first_for_customer")))
    new = matched.filter(pl.col("customer_id").is_null())
    same = matched.filter(pl.col("customer_id").is_not_null() & (pl.col("via") == "source") & (pl.col("last_hash") == pl.col("hash")))
    to_compare = matched.filter(pl.col("customer_id").is_not_null() & ~((pl.col("via") == "source") & (pl.col("last_hash") == pl.col("hash"))))
    created = customers_import.create_new(new, unit=unit, job=job, actor=actor, hashes=new.get_column("hash").to_list())
    updated, unchanged = customers_import.update_matched(to_compare.to_dicts(), unit=unit, job=job, actor=actor)
    return {"created": created, "updated": updated, "unchanged": unchanged + same.height}, errors


def _write_errors(job: ImportJob, errors: pl.DataFrame) -> None:
    errors = errors.sort("__row", "column")
    codes = errors.get_column("code").to_list()
    refs = errors.get_column("ref_row").to_list()
    pairs = [n.message_pair(code, ref) for code, ref in zip(codes, refs)]
    count = errors.height
    bulk.write(Rows(RowError, count, {
        "id": customers_import.allocate_ids(RowError, count), "job": job.pk,
        "row": errors.get_column("__row").to_numpy().astype(np.int64),
        "column": [c[:100] for c in errors.get_column("column").to_list()],
        "value": errors.get_column("value").fill_null("").to_list(), "code": codes,
        "message_en": [p[0][:300] for p in pairs], "message_ko": [p[1][:300] for p in pairs],
    }))


def _after_import(job: ImportJob) -> None:
    """New or changed customers may duplicate others: look for them in the background once the import is committed."""
    if job.kind != ImportKind.CUSTOMERS or not getattr(settings, "DANGOL_DEDUPE_AFTER_IMPORT", True):
        return
    try:
        from .tasks import dedupe_customers
    except ImportError:  # the dedupe task is optional in minimal deployments
        return
    transaction.on_commit(lambda: dedupe_customers.enqueue())


def error_report_csv(job: ImportJob) -> str:
    """The downloadable error report: one line per bad value, with the reason in Korean and English."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["row", "column", "value", "code", "reason_ko", "reason_en"])
    for error in job.row_errors.order_by("row", "id").iterator(chunk_size=5000):
        writer.writerow([error.row, spreadsheet_safe(error.column), spreadsheet_safe(error.value), error.code,
                         error.message_ko, error.message_en])
    return out.getvalue()


def spreadsheet_safe(text: str) -> str:
    """A rejected value is quoted back as text: one that Excel would read as a formula (=, +, -, @…) gets a leading
    apostrophe, so opening the report cannot run anything (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def write_error_report(job: ImportJob, path: str | Path) -> Path:
    target = Path(path)
    # utf-8-sig: Excel opens it with the Korean intact.
    target.write_text(error_report_csv(job), encoding="utf-8-sig")
    return target


@transaction.atomic
def save_mapping(*, actor: Actor, unit: BusinessUnit, kind: str, name: str, mapping: dict[str, str]) -> MappingProfile:
    name = " ".join((name or "").split())
    if not name:
        raise ValidationError({"name": [_("Give the mapping a name, e.g. the system the file comes from.")]})
    if len(name) > 60:
        raise ValidationError({"name": [_("A name has at most 60 characters.")]})
    profile, _created = MappingProfile.objects.update_or_create(
        unit=unit, kind=kind, name=name, defaults={"mapping": {k: v for k, v in mapping.items() if v}, "updated_by": actor.user})
    audit.record(actor=actor, action="import.mapping_saved", obj=profile)
    return profile


def copy_for_job(path: str | Path) -> Path:
    """The CLI imports a copy kept with the data, so the job's file stays readable after the original moves."""
    source = Path(path)
    target = upload_dir() / f"{uuid.uuid4().hex}{source.suffix.lower()[:10]}"
    shutil.copyfile(source, target)
    return target


@transaction.atomic
def discard_draft(job: ImportJob) -> None:
    """An upload that cannot be read: forget it, file included."""
    if job.status == JobStatus.DRAFT:
        discard_upload(job.path)
        job.delete()


def discard_upload(path: str | Path) -> None:
    """Delete a file Dangol keeps under its data directory; files elsewhere (a path given to a job) are the owner's."""
    target = Path(path).resolve()
    if target.parent == upload_dir().resolve():
        target.unlink(missing_ok=True)


def prune_uploads(*, older_than: dt.timedelta = dt.timedelta(days=7)) -> int:
    """Delete the files of dry runs and abandoned drafts older than ``older_than`` (drafts after a day). Returns how
    many files were removed. The jobs stay, with their counts and error reports."""
    now = timezone.now()
    removed = 0
    stale = (ImportJob.objects.filter(dry_run=True, created_at__lt=now - older_than)
             | ImportJob.objects.filter(status=JobStatus.DRAFT, created_at__lt=now - dt.timedelta(days=1)))
    for path in stale.values_list("path", flat=True).iterator():
        if Path(path).exists():
            discard_upload(path)
            removed += not Path(path).exists()
    ImportJob.objects.filter(status=JobStatus.DRAFT, created_at__lt=now - dt.timedelta(days=1)).delete()
    return removed
