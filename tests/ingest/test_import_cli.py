"""`dangol import customers|orders PATH --unit CODE`: the counts line, the error report next to the file, exit codes;
the demo's sample files imported in order with their exact counts; and one run of the real `dangol` executable."""
from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone, translation

from dangol.core.audit import Actor
from dangol.demo.samples import write_sample_files
from dangol.ingest import services
from dangol.ingest.models import ImportJob, ImportKind, JobStatus

from tests.ingest.conftest import data_counts

ROOT = Path(__file__).resolve().parents[2]
COUNTS_LINE = "read: {}, created: {}, updated: {}, unchanged: {}, rejected: {}"


@pytest.fixture
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"
    return settings.DATA_DIR


def dangol_import(*args: str) -> tuple[str, str]:
    """Run the command in-process; (stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with translation.override("en"):
        call_command("import", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def last_line(text: str) -> str:
    return text.rstrip("\n").splitlines()[-1]


def report_rows(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))


def test_it_prints_the_counts_last_and_writes_the_error_report_next_to_the_file(files, units, data_dir):
    path = files.csv("members.csv", ["회원번호", "성명", "휴대폰", "이메일"], [
        ["B1", "김하늘", "010-1111-0001", ""], ["B2", "", "010-1111-0002", ""], ["B3", "이별", "010-123", "yoon@"],
        ["B4", "박서준", "010-1111-0004", "PARK@daum.net"]])
    out, err = dangol_import("customers", str(path), "--unit", "bakery")
    assert last_line(out) == COUNTS_LINE.format(4, 2, 0, 0, 2)
    report = Path(f"{path}.errors.csv")
    assert f"2 rejected rows: see {report}" in err
    rows = report_rows(report)
    assert rows[0] == ["row", "column", "value", "code", "reason_ko", "reason_en"]
    assert sorted(tuple(row[:4]) for row in rows[1:]) == [("3", "성명", "", "name_missing"), ("4", "이메일", "yoon@", "email_invalid"),
                                                          ("4", "휴대폰", "010-123", "phone_invalid")]
    assert all(row[4] and row[5] for row in rows[1:])
    job = ImportJob.objects.get()
    assert (job.original_name, job.status, job.dry_run) == ("members.csv", JobStatus.DONE, False)
    # The job ran on a copy kept with the data, deleted once imported: Dangol keeps the rows, not the file.
    assert Path(job.path).parent == data_dir / "imports" and not Path(job.path).exists()
    # Once the file is fixed, the stale report goes.
    path.write_text("회원번호,성명,휴대폰\r\nB2,정하나,010-1111-0002\r\n", encoding="utf-8")
    out, _err = dangol_import("customers", str(path), "--unit", "bakery")
    assert last_line(out) == COUNTS_LINE.format(1, 1, 0, 0, 0)
    assert not report.exists()


def test_a_dry_run_counts_like_the_real_run_and_writes_nothing(files, units, data_dir):
    path = files.csv("members.csv", ["회원번호", "성명", "휴대폰"], [["B1", "김하늘", "010-1111-0001"], ["B2", "", "010-1111-0002"]])
    before = data_counts()
    out, err = dangol_import("customers", str(path), "--unit", "bakery", "--dry-run")
    assert last_line(out) == COUNTS_LINE.format(2, 1, 0, 0, 1)
    assert "dry run: nothing was written" in err
    assert data_counts() == before
    assert Path(f"{path}.errors.csv").exists()
    out, _err = dangol_import("customers", str(path), "--unit", "bakery")
    assert last_line(out) == COUNTS_LINE.format(2, 1, 0, 0, 1)


def test_a_saved_mapping_is_used_by_name(files, units, data_dir):
    services.save_mapping(actor=Actor.system("test"), unit=units["bakery"], kind=ImportKind.CUSTOMERS, name="POS",
                          mapping={"고객 성함": "name", "HP": "phone"})
    path = files.csv("pos.csv", ["고객 성함", "HP"], [["김하늘", "010-1111-0001"]])
    out, _err = dangol_import("customers", str(path), "--unit", "bakery", "--mapping", "POS")
    assert last_line(out) == COUNTS_LINE.format(1, 1, 0, 0, 0)


@pytest.mark.parametrize("make_args,message", [
    (lambda p: ["customers", str(p.parent / "missing.csv"), "--unit", "bakery"], "No such file"),
    (lambda p: ["customers", str(p), "--unit", "laundry"], "No business unit"),
    (lambda p: ["customers", str(p), "--unit", "bakery", "--mapping", "nope"], "No saved mapping"),
    (lambda p: ["orders", str(p), "--unit", "bakery"], "No column is mapped to Order number"),
])
def test_it_fails_with_one_line_saying_why_when_it_cannot_run(files, units, data_dir, make_args, message):
    path = files.csv("members.csv", ["성명", "휴대폰"], [["김하늘", "010-1111-0001"]])
    before = data_counts()
    with pytest.raises(CommandError, match=message):
        dangol_import(*make_args(path))
    assert data_counts() == before
    assert not Path(f"{path}.errors.csv").exists()


@pytest.mark.parametrize("name,data,message", [
    ("empty.csv", b"", "The file is empty."),
    ("header.csv", "성명,휴대폰\r\n".encode(), "no data rows"),
    ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512), ".xls"),
    ("latin1.csv", "name,phone\r\nMüller,010-1111-0001\r\n".encode("latin-1"), "neither UTF-8 nor CP949"),
])
def test_an_unreadable_file_fails_the_command(files, units, data_dir, name, data, message):
    path = files.raw(name, data)
    with pytest.raises(CommandError, match=message):
        dangol_import("customers", str(path), "--unit", "bakery")
    assert ImportJob.objects.get().status == JobStatus.FAILED


def test_flagged_orders_are_mentioned(files, catalogue, data_dir):
    path = files.csv("sales.csv", ["영수증번호", "거래일시", "상품코드", "수량", "단가"], [
        ["BK-1", "2024-03-01 10:00", "BK-BR-CRO", "1", "0"], ["BK-2", "2024-03-01 11:00", "BK-BR-CRO", "1", ""]])
    out, err = dangol_import("orders", str(path), "--unit", "bakery")
    assert last_line(out) == COUNTS_LINE.format(2, 2, 0, 0, 0)
    assert "1 orders flagged for review" in err


# --- the demo's sample files --------------------------------------------------------------------------------------

SAMPLE_RUNS = [  # (file, kind, unit, first import, second import)
    ("bakery_customers", "customers", "bakery", (84, 80, 0, 0, 4), (84, 0, 0, 80, 4)),
    ("hotel_customers", "customers", "seoul-hotel", (80, 51, 29, 0, 0), (80, 0, 0, 80, 0)),
    ("bakery_orders", "orders", "bakery", (308, 307, 0, 0, 1), (308, 0, 0, 307, 1)),
    ("hotel_orders", "orders", "seoul-hotel", (316, 315, 0, 0, 1), (316, 0, 0, 315, 1)),
]


def test_the_sample_files_import_with_their_exact_counts_and_again_unchanged(tmp_path, catalogue, data_dir):
    paths = write_sample_files(tmp_path / "samples", today=timezone.localdate())
    assert paths["bakery_customers"].read_bytes().decode("cp949").startswith("회원번호,성명")
    for name, kind, unit, first, _again in SAMPLE_RUNS:
        out, err = dangol_import(kind, str(paths[name]), "--unit", unit)
        assert last_line(out) == COUNTS_LINE.format(*first), name
        if kind == "orders":
            assert "4 orders flagged for review" in err  # a negative quantity, a zero and an extreme price, the future
    report = {(row[0], row[3]) for row in report_rows(Path(f"{paths['bakery_customers']}.errors.csv"))[1:]}
    assert report == {("82", "name_missing"), ("83", "phone_invalid"), ("83", "date_invalid"), ("84", "email_invalid"),
                      ("84", "flag_invalid"), ("85", "duplicate_in_file")}
    assert {(row[0], row[3]) for row in report_rows(Path(f"{paths['bakery_orders']}.errors.csv"))[1:]} == {("309", "product_unknown")}
    before = data_counts()
    for name, kind, unit, _first, again in SAMPLE_RUNS:
        out, err = dangol_import(kind, str(paths[name]), "--unit", unit)
        assert last_line(out) == COUNTS_LINE.format(*again), name
        assert "flagged" not in err
    assert data_counts() == before


def test_the_sample_files_are_the_same_for_the_same_seed_and_day(tmp_path):
    day = timezone.localdate()
    first = write_sample_files(tmp_path / "a", today=day)
    second = write_sample_files(tmp_path / "b", today=day)
    for name in ("bakery_customers", "bakery_orders", "hotel_orders"):
        assert first[name].read_bytes() == second[name].read_bytes()


# --- the real executable ------------------------------------------------------------------------------------------

def _executable() -> list[str]:
    script = ROOT / ".venv" / "bin" / "dangol"
    return [str(script)] if script.exists() else [sys.executable, "-m", "dangol.cli"]


def test_the_dangol_executable_exits_0_with_rejected_rows_and_non_zero_when_it_cannot_run(tmp_path):
    """One real process on a scratch SQLite database (whatever database this run uses)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST") and k != "DATABASE_URL"}
    env.update(DANGOL_DATA_DIR=str(tmp_path / "data"), DJANGO_SETTINGS_MODULE="dangol.settings", DANGOL_TASK_BACKEND="db",
               DANGOL_DEDUPE_AFTER_IMPORT="0")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*_executable(), *args], env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)

    assert run("migrate", "--no-input", "-v", "0").returncode == 0
    setup = run("shell", "-c", "from dangol.demo.catalogue import ensure_reference_data; ensure_reference_data()")
    assert setup.returncode == 0, setup.stderr
    members = tmp_path / "회원 목록.csv"
    members.write_bytes("회원번호,성명,휴대폰,SMS수신동의\r\nB1,김하늘,010-1111-0001,Y\r\nB2,,010-1111-0002,N\r\n"
                        "B3,이별,+82 10 1111 0003,동의\r\n".encode("cp949"))
    done = run("import", "customers", str(members), "--unit", "bakery")
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip("\n").splitlines()[-1] == "read: 3, created: 2, updated: 0, unchanged: 0, rejected: 1"
    assert Path(f"{members}.errors.csv").exists()
    again = run("import", "customers", str(members), "--unit", "bakery")
    assert again.returncode == 0
    assert again.stdout.rstrip("\n").splitlines()[-1] == "read: 3, created: 0, updated: 0, unchanged: 2, rejected: 1"

    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    failed = run("import", "customers", str(empty), "--unit", "bakery")
    assert failed.returncode != 0
    assert failed.stderr.strip() and "read:" not in failed.stdout  # one line saying why (in the server's language)
    unknown_unit = run("import", "customers", str(members), "--unit", "laundry")
    assert unknown_unit.returncode != 0 and "laundry" in unknown_unit.stderr
