"""The warehouse export: Parquet partitioned by month read back with DuckDB, pseudonyms (a keyed HMAC, no names or
phones) unless an admin asks for identities, incremental runs that write only new rows, the manifest, failures that
leave no half run, and the command."""
from __future__ import annotations

import datetime as dt
import json

import duckdb
import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.utils import timezone

from dangol.analytics.services import refresh_metrics
from dangol.core.audit import Actor
from dangol.core.models import AuditEvent
from dangol.loyalty import services as loyalty
from dangol.sales.services import LineInput, record_order, record_refund
from dangol.warehouse import export
from dangol.warehouse.models import ExportRun, ExportStatus


@pytest.fixture(autouse=True)
def _no_lag(settings):
    settings.WAREHOUSE_LAG_SECONDS = 0
    settings.WAREHOUSE_KEY = "test-warehouse-key"


def buy(customer, product, quantity=1, at=None):
    return record_order(actor=Actor.system("test"), unit=product.unit, customer=customer,
                        lines=[LineInput(product_id=product.pk, quantity=quantity)], at=at or timezone.now())


@pytest.fixture
def shop(make_customer, products, alice):
    kim = make_customer("bakery", name="김하늘", phone="010-1234-5678", email="sky@example.kr")
    lee = make_customer("seoul-hotel", name="이바다")
    last_month = timezone.now() - dt.timedelta(days=40)
    buy(kim, products["croissant"], 2, at=last_month)
    sale = buy(kim, products["baguette"], 1)
    buy(lee, products["deluxe"], 1)
    record_refund(actor=Actor.system("test"), order=sale)
    buy(None, products["croissant"], 3)  # a walk-in without a customer record
    loyalty.adjust_points(actor=Actor(user=alice), customer=kim, points=500, reason="welcome")
    return {"kim": kim, "lee": lee}


def read(directory, dataset: str, sql: str = "SELECT * FROM t") -> list[tuple]:
    con = duckdb.connect()
    con.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet('{directory}/{dataset}/*/*.parquet', hive_partitioning = true)")
    return con.execute(sql).fetchall()


def test_the_export_writes_parquet_by_month_that_duckdb_reads_back(tmp_path, shop, alice):
    result = export.export_warehouse(directory=tmp_path, actor=Actor(user=alice))
    assert result.rows["orders"] == 5 and result.rows["order_lines"] == 5 and result.rows["customers"] == 2
    assert result.rows["points_ledger"] >= 4  # earnings, the reversal, the adjustment
    months = {r[0] for r in read(tmp_path, "orders", "SELECT DISTINCT month FROM t")}
    assert len(months) == 2 and all(len(m) == 7 for m in months)
    assert (tmp_path / "orders" / f"month={sorted(months)[0]}").is_dir()
    # Revenue by unit read back equals the database's.
    revenue = dict(read(tmp_path, "orders", "SELECT unit, SUM(total) FROM t GROUP BY unit"))
    assert revenue == {"bakery": 2 * 4500 + 3 * 4500, "seoul-hotel": 250_000}
    lines = read(tmp_path, "order_lines", "SELECT sku, quantity, line_total FROM t WHERE quantity < 0")
    assert lines == [("B-002", -1, -5000)]
    types = dict(read(tmp_path, "orders", "SELECT column_name, column_type FROM (DESCRIBE t)"))
    assert types["ordered_at"] == "TIMESTAMP" and types["total"] == "BIGINT" and types["needs_review"] == "BOOLEAN"


def test_customers_are_pseudonymised_with_a_keyed_hmac_and_without_names_or_phones(tmp_path, shop, alice):
    export.export_warehouse(directory=tmp_path, actor=Actor(user=alice))
    columns = [r[0] for r in read(tmp_path, "customers", "SELECT column_name FROM (DESCRIBE t)")]
    assert not {"name", "phone", "email", "customer_id"} & set(columns)
    keys = {r[0] for r in read(tmp_path, "customers", "SELECT customer FROM t")}
    kim, lee = shop["kim"].pk, shop["lee"].pk
    assert keys == {export.pseudonym(kim), export.pseudonym(lee)}
    assert export.pseudonym(kim) == export.pseudonym(kim, b"test-warehouse-key") != export.pseudonym(kim, b"another key")
    # The same pseudonym joins the customer's orders and points; a walk-in's order has none.
    joined = read(tmp_path, "orders", "SELECT customer, COUNT(*) FROM t GROUP BY customer ORDER BY customer NULLS LAST")
    assert (export.pseudonym(kim), 3) in joined and joined[-1] == (None, 1)
    points = {r[0] for r in read(tmp_path, "points_ledger", "SELECT DISTINCT customer FROM t")}
    assert points <= keys
    raw = b"".join(p.read_bytes() for p in tmp_path.rglob("*.parquet"))
    assert "김하늘".encode() not in raw and b"+821012345678" not in raw and b"sky@example.kr" not in raw


def test_an_admin_may_export_identities_others_may_not(tmp_path, shop, alice, mina):
    with pytest.raises(PermissionDenied):
        export.export_warehouse(directory=tmp_path / "x", actor=Actor(user=mina), identities=True)
    export.export_warehouse(directory=tmp_path / "ids", actor=Actor(user=alice), identities=True)
    rows = read(tmp_path / "ids", "customers", "SELECT customer_id, name, phone, email FROM t ORDER BY customer_id")
    assert rows[0] == (shop["kim"].pk, "김하늘", "+821012345678", "sky@example.kr")
    # A directory keeps its kind.
    with pytest.raises(ValidationError):
        export.export_warehouse(directory=tmp_path / "ids", actor=Actor(user=alice))
    assert any("identities" in e.fields for e in AuditEvent.objects.filter(action="warehouse.export", actor=alice))


def test_a_second_run_writes_only_the_new_rows(tmp_path, shop, products, make_customer, alice):
    first = export.export_warehouse(directory=tmp_path, actor=Actor(user=alice))
    again = export.export_warehouse(directory=tmp_path, actor=Actor(user=alice))
    assert again.rows["orders"] == again.rows["order_lines"] == again.rows["points_ledger"] == 0
    assert again.rows["customers"] == 0 and again.files == []
    newcomer = make_customer("bakery", name="박새봄")
    buy(newcomer, products["baguette"], 2)
    third = export.export_warehouse(directory=tmp_path, actor=Actor(user=alice))
    assert third.rows["orders"] == 1 and third.rows["order_lines"] == 1 and third.rows["customers"] == 1
    assert third.rows["points_ledger"] == 1
    assert all(f"run{third.run.pk:06d}_" in name for name in third.files)
    # Reading the whole directory: every order once.
    ids = [r[0] for r in read(tmp_path, "orders", "SELECT order_id FROM t")]
    assert len(ids) == len(set(ids)) == 6
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["datasets"]["orders"]["rows"] == 6 and len(manifest["runs"]) == 3
    assert manifest["watermarks"]["orders"] == max(ids)
    assert set(manifest["datasets"]["orders"]["files"]) >= set(first.files) - {f for f in first.files if not f.startswith("orders/")}
    assert {c["name"] for c in manifest["datasets"]["orders"]["schema"]} >= {"order_id", "customer", "total", "month"}
    assert ExportRun.objects.filter(status=ExportStatus.DONE).count() == 3


def test_the_metrics_snapshot_is_written_once_per_analytics_run(tmp_path, shop, alice):
    refresh_metrics(actor=Actor(user=alice))
    first = export.export_warehouse(directory=tmp_path, actor=Actor(user=alice))
    assert first.rows["customer_metrics"] >= 2
    assert export.export_warehouse(directory=tmp_path, actor=Actor(user=alice)).rows["customer_metrics"] == 0
    segments = read(tmp_path, "customer_metrics", "SELECT customer, monetary_total FROM t WHERE monetary_total > 0")
    assert (export.pseudonym(shop["lee"].pk), 250_000) in segments


def test_a_failed_run_leaves_no_files_and_no_watermark(tmp_path, shop, alice, monkeypatch):
    real = export._to_parquet
    calls = []

    def failing(con, ds, *args, **kwargs):
        calls.append(ds.name)
        if ds.name == "customer_metrics":
            raise OSError("disk full")
        return real(con, ds, *args, **kwargs)

    monkeypatch.setattr(export, "_to_parquet", failing)
    refresh_metrics(actor=Actor(user=alice))
    with pytest.raises(OSError):
        export.export_warehouse(directory=tmp_path, actor=Actor(user=alice))
    assert not list(tmp_path.rglob("*.parquet")) and not (tmp_path / "manifest.json").exists()
    assert ExportRun.objects.get().status == ExportStatus.FAILED
    monkeypatch.setattr(export, "_to_parquet", real)
    assert export.export_warehouse(directory=tmp_path, actor=Actor(user=alice)).rows["orders"] == 5


def test_the_command_exports_and_refuses_identities_without_an_admin(tmp_path, shop, alice, mina, capsys):
    from django.core.management.base import CommandError

    call_command("export", "warehouse", str(tmp_path / "w"))
    out = capsys.readouterr().out
    assert "orders: 5 rows" in out and out.strip().splitlines()[-1].startswith("run ")
    with pytest.raises(CommandError):
        call_command("export", "warehouse", str(tmp_path / "i"), "--identities")
    with pytest.raises(CommandError):
        call_command("export", "warehouse", str(tmp_path / "i"), "--identities", "--user", "mina")
    call_command("export", "warehouse", str(tmp_path / "i"), "--identities", "--user", "alice", "--only", "customers")
    assert (tmp_path / "i" / "customers").is_dir() and not (tmp_path / "i" / "orders").exists()


def test_the_scheduled_job_is_registered_and_exports_pseudonymised(tmp_path, shop, settings):
    from dangol.core.scheduler import PERIODIC_JOBS
    from dangol.warehouse.tasks import export_to_warehouse

    assert any(job.name == "warehouse-export" for job in PERIODIC_JOBS)
    settings.WAREHOUSE_DIR = ""
    assert "not set" in export_to_warehouse.call()
    settings.WAREHOUSE_DIR = str(tmp_path)
    assert "orders: 5" in export_to_warehouse.call()
    assert not ExportRun.objects.get().identities


def test_campaign_results_export_who_was_treated_and_who_held_out_once_the_run_finished(tmp_path, shop, alice, units):
    from dangol.campaigns.models import Campaign, CampaignRun, Recipient, Segment

    segment = Segment.objects.create(name="Regulars", unit=units["bakery"])
    campaign = Campaign.objects.create(name="Spring", unit=units["bakery"], segment=segment, channel="sms")
    run = CampaignRun.objects.create(campaign=campaign, occurrence="A", started_at=timezone.now(), recipients=1, holdout=1)
    Recipient.objects.create(run=run, customer=shop["kim"], variant="A")
    Recipient.objects.create(run=run, customer=shop["lee"], is_holdout=True)
    first = export.export_warehouse(directory=tmp_path, actor=Actor(user=alice))
    assert first.rows["campaign_recipients"] == 0  # still sending
    CampaignRun.objects.filter(pk=run.pk).update(finished_at=timezone.now())
    second = export.export_warehouse(directory=tmp_path, actor=Actor(user=alice))
    assert second.rows["campaign_recipients"] == 2
    rows = read(tmp_path, "campaign_recipients", "SELECT customer, variant, is_holdout, campaign_name, unit FROM t ORDER BY is_holdout")
    assert rows == [(export.pseudonym(shop["kim"].pk), "A", False, "Spring", "bakery"),
                    (export.pseudonym(shop["lee"].pk), None, True, "Spring", "bakery")]
    assert export.export_warehouse(directory=tmp_path, actor=Actor(user=alice)).rows["campaign_recipients"] == 0


def test_an_emptied_directory_gets_everything_again(tmp_path, shop, alice):
    import shutil

    export.export_warehouse(directory=tmp_path / "w", actor=Actor(user=alice))
    shutil.rmtree(tmp_path / "w")
    again = export.export_warehouse(directory=tmp_path / "w", actor=Actor(user=alice))
    assert again.rows["orders"] == 5 and len(read(tmp_path / "w", "orders")) == 5
