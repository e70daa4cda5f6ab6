"""A real order import: the whole file earns in one set-based pass (orders_imported), refunds in it reverse, flagged
orders wait for a manager, and the timeline gets one entry per customer."""
from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from dangol.core import events
from dangol.core.audit import Actor
from dangol.customers.models import Interaction
from dangol.ingest import services as ingest_services
from dangol.ingest.models import OrderFlag, SourceRecord
from dangol.ingest.review import accept_flag
from dangol.loyalty.models import EntryKind, LedgerEntry
from dangol.sales.models import Order

from tests.ingest.conftest import Files
from tests.loyalty.conftest import assert_ledger_consistent, balance

HEADERS = ["영수증번호", "회원번호", "거래일시", "상품코드", "수량", "단가", "구분", "원영수증번호"]


@pytest.fixture
def run_import(units, settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"
    settings.DANGOL_DEDUPE_AFTER_IMPORT = False

    def run(kind, unit_code, path):
        actor = Actor.system("test")
        job = ingest_services.create_job(actor=actor, unit=units[unit_code], kind=kind, path=path)
        return ingest_services.run_job(job, actor=actor)

    return run


@pytest.fixture
def members(units, tmp_path, run_import, program):
    from dangol.demo.catalogue import ensure_reference_data

    ensure_reference_data()
    files = Files(tmp_path)
    run_import("customers", "bakery", files.csv("members.csv", ["회원번호", "성명", "휴대폰"], [
        ["B1", "김하늘", "010-1111-0001"], ["B2", "이별", "010-1111-0002"]]))
    return {code: SourceRecord.objects.get(unit=units["bakery"], source_id=code).customer for code in ("B1", "B2")}


def test_an_imported_file_earns_reverses_and_waits_for_review_set_based(members, units, tmp_path, run_import, alice):
    units["bakery"].opened_on = dt.date(2020, 5, 1)
    units["bakery"].save()
    day = (timezone.localdate() - dt.timedelta(days=10)).isoformat()
    rows = [
        ["BK-1", "B1", f"{day} 10:00", "BK-BR-CRO", "2", "", "판매", ""],        # 9,000 KRW → 90 P
        ["BK-2", "B1", f"{day} 11:00", "BK-BR-BAG", "1", "", "판매", ""],        # 5,000 KRW → 50 P
        ["BK-3", "B2", f"{day} 12:00", "BK-BR-CRO", "1", "", "판매", ""],        # 4,500 KRW → 45 P
        ["BK-4", "", f"{day} 13:00", "BK-BR-CRO", "1", "", "판매", ""],          # no member: nothing
        ["BK-R", "B1", f"{day} 15:00", "BK-BR-CRO", "2", "", "반품", "BK-1"],    # refund of BK-1 in the same file
        ["BK-OLD", "B2", "2019-12-31 10:00", "BK-BR-CRO", "4", "", "판매", ""],  # before opening: flagged
    ]
    seen = []
    events.subscribe("orders_imported", seen_handler := lambda **kw: seen.append(len(kw["order_ids"])))
    try:
        job = run_import("orders", "bakery", Files(tmp_path).csv("sales.csv", HEADERS, rows))
    finally:
        events._handlers["orders_imported"].remove(seen_handler)
    assert job.status == "done", job.error
    assert seen == [6]
    b1, b2 = members["B1"], members["B2"]
    assert balance(b1) == 50 and balance(b2) == 45
    earned = dict(LedgerEntry.objects.filter(kind=EntryKind.EARN).values_list("order__external_ref", "points"))
    assert earned == {"BK-1": 90, "BK-2": 50, "BK-3": 45}
    assert LedgerEntry.objects.get(kind=EntryKind.REVERSE).order.external_ref == "BK-R"
    summaries = dict(Interaction.objects.filter(kind="loyalty", ref_type="loyalty.earn").values_list("customer_id", "summary"))
    assert summaries == {b1.pk: "+140 points for 2 purchases", b2.pk: "+45 points for 1 purchase"}
    assert_ledger_consistent()

    assert Interaction.objects.filter(customer=b1, kind="loyalty", summary__startswith="−90 points").exists()

    # A manager accepts the flagged order: it earns now (ingest is to emit orders_accepted; here the test does).
    flag = OrderFlag.objects.get(order__external_ref="BK-OLD")
    accept_flag(actor=Actor(user=alice), flag=flag)
    assert Order.objects.get(external_ref="BK-OLD").needs_review is False
    events.emit("orders_accepted", order_ids=[flag.order_id], actor=Actor(user=alice))
    # Bought in 2019: its points were earned then and have expired since; the lot says so.
    entry = LedgerEntry.objects.get(order__external_ref="BK-OLD")
    assert entry.points == 180 and entry.created_lot.expires_at < timezone.now()

    again = run_import("orders", "bakery", job.path)  # the same file again: nothing new earns
    assert again.status == "done"
    assert LedgerEntry.objects.count() == 5
