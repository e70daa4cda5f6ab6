"""Importing a unit's sales as one row per order line: whole orders, refunds, order-number clashes, outlier flags, the
timeline, memberships and stages the import sets, idempotency, dry runs and crashes."""
from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from django.db import connection
from django.utils import timezone, translation

from dangol.core.audit import Actor
from dangol.customers.models import Customer, Interaction, Membership
from dangol.ingest.models import JobStatus, OrderFlag, RowError, SourceRecord
from dangol.sales.models import Order, Product
from dangol.sales.services import LineInput, record_order

from tests.ingest.conftest import counts, data_counts, error_codes, row_errors

SEOUL = zoneinfo.ZoneInfo("Asia/Seoul")
HEADERS = ["영수증번호", "회원번호", "거래일시", "상품코드", "수량", "단가", "구분", "원영수증번호"]
CROISSANT, BAGUETTE, SALT_BREAD, AMERICANO = "BK-BR-CRO", "BK-BR-BAG", "BK-BR-SAL", "BK-CF-AME"  # 4,500 5,000 3,500 4,500


def line(order_no, member="B1", at="2024-03-01 14:30", sku=CROISSANT, quantity="1", price="", kind="판매", refund_of=""):
    return [order_no, member, at, sku, quantity, price, kind, refund_of]


@pytest.fixture
def members(catalogue, files, run_import, units):
    """Two bakery members imported with their member numbers (B1 김하늘, B2 이별)."""
    job = run_import("customers", "bakery", files.csv("members.csv", ["회원번호", "성명", "휴대폰"], [
        ["B1", "김하늘", "010-1111-0001"], ["B2", "이별", "010-1111-0002"]]))
    assert counts(job) == (2, 2, 0, 0, 0)
    return {code: SourceRecord.objects.get(unit=units["bakery"], source_id=code).customer for code in ("B1", "B2")}


def order(number: str) -> Order:
    return Order.objects.get(external_ref=number)


def flags(number: str) -> set[str]:
    return set(OrderFlag.objects.filter(order__external_ref=number).values_list("reason", flat=True))


def test_order_lines_are_grouped_into_orders_with_the_products_prices(files, run_import, members, units):
    path = files.csv("sales.csv", HEADERS + ["채널"], [
        line("BK-1", quantity="2") + ["매장"],
        line("BK-1", sku=BAGUETTE, price="4,800원") + ["매장"],
        line("BK-2", member="B2", at="2024. 3. 2. 오전 9:05", sku=SALT_BREAD, quantity="3", kind="") + ["앱"],
        line("BK-3", member="", at="20240303", sku=AMERICANO) + [""],
    ])
    job = run_import("orders", "bakery", path)
    assert job.status == JobStatus.DONE, job.error
    assert counts(job) == (4, 4, 0, 0, 0) and job.flagged == 0
    first = order("BK-1")
    assert (first.unit, first.customer, first.kind, first.channel, first.total, first.needs_review) == (
        units["bakery"], members["B1"], "sale", "store", 2 * 4500 + 4800, False)
    assert first.ordered_at == dt.datetime(2024, 3, 1, 14, 30, tzinfo=SEOUL)
    assert sorted(first.lines.values_list("product__sku", "quantity", "unit_price", "unit_cost", "line_total")) == [
        (BAGUETTE, 1, 4800, 1700, 4800), (CROISSANT, 2, 4500, 1500, 9000)]
    second = order("BK-2")
    assert (second.customer, second.channel, second.total) == (members["B2"], "app", 3 * 3500)
    assert second.ordered_at == dt.datetime(2024, 3, 2, 9, 5, tzinfo=SEOUL)
    walk_in = order("BK-3")
    assert walk_in.customer is None and walk_in.ordered_at == dt.datetime(2024, 3, 3, tzinfo=SEOUL)
    # The timeline and the stage, as recording the sale in the app does.
    entry = Interaction.objects.get(ref_type="sales.order", ref_id=first.pk)
    assert (entry.customer, entry.kind, entry.unit, entry.amount, entry.occurred_at, entry.channel) == (
        members["B1"], "purchase", units["bakery"], first.total, first.ordered_at, "store")
    assert "×" in entry.summary
    # One entry per order with a customer (the walk-in sale has none); other apps may add their own (points earned).
    assert Interaction.objects.filter(ref_type="sales.order").count() == 2
    assert set(Customer.objects.values_list("stage", flat=True)) == {"customer"}


def test_a_customer_of_another_unit_found_by_phone_becomes_a_member_and_a_customer(files, run_import, catalogue, units, make_customer):
    guest = make_customer("seoul-hotel", name="김하늘", phone="010-7777-8888")
    regular = make_customer("seoul-hotel", name="이별", phone="010-7777-9999", stage="regular")
    job = run_import("orders", "bakery", files.csv("sales.csv", ["영수증번호", "휴대폰", "거래일시", "상품코드", "수량"], [
        ["BK-1", "+82 10 7777 8888", "2024-03-01 14:30", CROISSANT, "1"],
        ["BK-2", "010-7777-8888", "2024-02-01 10:00", CROISSANT, "1"],
        ["BK-3", "01077779999", "2024-03-01 15:00", CROISSANT, "1"],
    ]))
    assert counts(job) == (3, 3, 0, 0, 0)
    membership = Membership.objects.get(customer=guest, unit=units["bakery"])
    assert (membership.source, membership.joined_at) == ("purchase", dt.datetime(2024, 2, 1, 10, tzinfo=SEOUL))
    guest.refresh_from_db()
    regular.refresh_from_db()
    assert (guest.stage, regular.stage) == ("customer", "regular")
    assert Interaction.objects.filter(customer=guest, ref_type="sales.order").count() == 2


def test_a_phone_shared_by_two_records_goes_to_the_member_of_the_unit(files, run_import, catalogue, make_customer):
    make_customer("seoul-hotel", name="김하늘", phone="010-7777-8888")
    bakery_member = make_customer("bakery", name="김민수", phone="010-7777-8888")
    run_import("orders", "bakery", files.csv("sales.csv", ["영수증번호", "휴대폰", "거래일시", "상품코드", "수량"],
                                             [["BK-1", "010-7777-8888", "2024-03-01", CROISSANT, "1"]]))
    assert order("BK-1").customer == bakery_member


@pytest.mark.parametrize("column,value,code", [
    ("수량", "abc", "quantity_invalid"), ("수량", "0", "quantity_invalid"), ("수량", "1.5", "quantity_invalid"),
    ("수량", "2000000", "quantity_invalid"), ("단가", "-100", "price_invalid"), ("단가", "4천원", "price_invalid"),
    ("구분", "교환", "kind_invalid"), ("거래일시", "2024-13-01", "datetime_invalid"),
    ("거래일시", "2024-03-01 25:00", "datetime_invalid"), ("거래일시", "", "datetime_invalid"),
    ("상품코드", "NO-SUCH-SKU", "product_unknown"), ("상품코드", "SH-RM-STD", "product_unknown"),  # a hotel product
    ("회원번호", "B404", "customer_unknown"), ("영수증번호", "X" * 61, "order_no_too_long"),
])
def test_a_bad_value_rejects_its_whole_order_and_nothing_else(files, run_import, members, column, value, code):
    bad = dict(zip(HEADERS, line("BK-1", quantity="2")))
    sibling = dict(zip(HEADERS, line("BK-1", sku=BAGUETTE)))
    bad[column] = value
    if column in ("영수증번호", "회원번호", "거래일시", "구분"):  # a field of the order: on each of its lines
        sibling[column] = value
    order_no = bad["영수증번호"]
    rows = [list(bad.values()), list(sibling.values()), line("BK-2", member="B2")]
    before = data_counts()
    job = run_import("orders", "bakery", files.csv("sales.csv", HEADERS, rows))
    assert counts(job) == (3, 1, 0, 0, 2)
    sibling_codes = {code} if column in ("영수증번호", "회원번호", "거래일시", "구분") else {"order_line_rejected"}
    assert error_codes(job) == {2: {code}, 3: sibling_codes}
    assert row_errors(job)[0][1:] == (column, value, code)
    if sibling_codes == {"order_line_rejected"}:
        assert RowError.objects.get(job=job, row=3).message_en.startswith("Another line of this order was rejected (row 2)")
    assert not Order.objects.filter(external_ref=order_no).exists()
    assert order("BK-2").total == 4500
    assert data_counts()["sales.OrderLine"] == before["sales.OrderLine"] + 1


def test_missing_order_numbers_and_product_codes_and_unknown_channels_are_reported(files, run_import, members):
    job = run_import("orders", "bakery", files.csv("sales.csv", HEADERS + ["채널", "휴대폰"], [
        line("") + ["", ""], line("BK-2", sku="") + ["", ""], line("BK-3") + ["팩스", ""], line("BK-4", member="") + ["", "010-12"],
        line("BK-5", member="") + ["", "010-9999-9999"], line("BK-6", price="₩4,500") + ["웹", ""],
    ]))
    assert error_codes(job) == {2: {"order_no_missing"}, 3: {"sku_missing"}, 4: {"channel_invalid"}, 5: {"phone_invalid"},
                                6: {"customer_unknown"}}
    assert counts(job) == (6, 1, 0, 0, 5)
    assert (order("BK-6").total, order("BK-6").channel) == (4500, "web")


def test_lines_of_one_order_must_agree_on_the_order(files, run_import, members):
    job = run_import("orders", "bakery", files.csv("sales.csv", HEADERS, [
        line("BK-1"), line("BK-1", at="2024-03-02 14:30", sku=BAGUETTE),
        line("BK-2"), line("BK-2", member="B2", sku=BAGUETTE),
        line("BK-3"), line("BK-3", sku=BAGUETTE),
    ]))
    assert error_codes(job) == {2: {"order_line_rejected"}, 3: {"order_inconsistent"}, 4: {"order_line_rejected"},
                                5: {"order_inconsistent"}}
    assert "(row 2)" in RowError.objects.get(job=job, row=3).message_en
    assert counts(job) == (6, 2, 0, 0, 4)
    assert list(Order.objects.values_list("external_ref", flat=True)) == ["BK-3"]


# --- refunds ------------------------------------------------------------------------------------------------------

def test_a_refund_of_a_sale_in_the_same_file(files, run_import, members):
    job = run_import("orders", "bakery", files.csv("sales.csv", HEADERS, [
        line("BK-1", quantity="2"), line("BK-1", sku=BAGUETTE),
        line("BK-R1", at="2024-03-02 10:00", quantity="1", kind="반품", refund_of="BK-1"),
        line("BK-R1", at="2024-03-02 10:00", sku=BAGUETTE, quantity="-1", kind="반품", refund_of="BK-1"),
    ]))
    assert counts(job) == (4, 4, 0, 0, 0) and job.flagged == 0
    sale, refund = order("BK-1"), order("BK-R1")
    assert (refund.kind, refund.refund_of, refund.total, refund.customer) == ("refund", sale, -(4500 + 5000), members["B1"])
    assert sorted(refund.lines.values_list("quantity", "line_total")) == [(-1, -5000), (-1, -4500)]
    entry = Interaction.objects.get(ref_type="sales.order", ref_id=refund.pk)
    assert (entry.kind, entry.amount) == ("refund", refund.total)
    assert str(sale.pk) in entry.summary


def test_a_refund_of_an_earlier_import_and_refund_problems(files, run_import, members):
    run_import("orders", "bakery", files.csv("sales.csv", HEADERS, [
        line("BK-1", quantity="2"), line("BK-2"), line("BK-3"), line("BK-4")]))
    app_sale = record_order(actor=Actor.system("test"), unit=members["B1"].memberships.get().unit, customer=members["B1"],
                            lines=[LineInput(Product.objects.get(sku=CROISSANT).pk, 1)],
                            at=timezone.now() - dt.timedelta(days=1), external_ref="POS-9")
    job = run_import("orders", "bakery", files.csv("refunds.csv", HEADERS, [
        line("BK-R1", at="2024-03-05", kind="환불", refund_of="BK-1"),             # a part of an earlier sale
        line("BK-R2", at="2024-03-05", quantity="3", kind="반품", refund_of="BK-2"),  # more than was sold
        line("BK-R3", at="2024-03-05", kind="반품", refund_of="BK-404"),            # not in Dangol
        line("BK-R4", at="2024-03-05", kind="반품"),                                # no original given
        line("BK-R5", at="2024-03-05", kind="반품", refund_of="BK-3"),              # two refunds of one sale
        line("BK-R6", at="2024-03-05", kind="반품", refund_of="BK-3"),
        line("BK-R7", at="2024-03-05", kind="refund", refund_of="POS-9"),           # a sale recorded in the app
    ]))
    assert error_codes(job) == {3: {"refund_too_large"}, 4: {"refund_unknown"}, 5: {"refund_unknown"}, 6: {"refund_twice"},
                                7: {"refund_twice"}}
    assert counts(job) == (7, 2, 0, 0, 5)
    assert (order("BK-R1").refund_of, order("BK-R1").total) == (order("BK-1"), -4500)
    assert order("BK-R7").refund_of == app_sale
    again = run_import("orders", "bakery", files.csv("again.csv", HEADERS, [
        line("BK-R8", at="2024-03-06", kind="반품", refund_of="BK-1")]))
    assert error_codes(again) == {2: {"refund_twice"}}
    assert Order.objects.filter(refund_of=order("BK-1")).count() == 1


# --- order numbers seen before ------------------------------------------------------------------------------------

def test_an_order_number_imported_before_with_other_lines_is_rejected_and_left_as_it_was(files, run_import, members):
    run_import("orders", "bakery", files.csv("v1.csv", HEADERS, [
        line("BK-1", quantity="2"), line("BK-2"), line("BK-3", sku=CROISSANT), line("BK-4")]))
    before = data_counts()
    job = run_import("orders", "bakery", files.csv("v2.csv", HEADERS, [
        line("BK-1", quantity="3"),          # another quantity
        line("BK-2"), line("BK-2", sku=BAGUETTE),  # a line more
        line("BK-3", sku=AMERICANO),         # another product at the same price
        line("BK-4"),                        # the same
        line("BK-5"),                        # new
    ]))
    assert error_codes(job) == {2: {"order_exists"}, 3: {"order_exists"}, 4: {"order_exists"}, 5: {"order_exists"}}
    assert counts(job) == (6, 1, 0, 1, 4)
    assert order("BK-1").total == 9000 and order("BK-2").lines.count() == 1
    assert list(order("BK-3").lines.values_list("product__sku", flat=True)) == [CROISSANT]
    assert data_counts()["sales.Order"] == before["sales.Order"] + 1


# --- outliers -----------------------------------------------------------------------------------------------------

def test_each_kind_of_outlier_is_imported_and_flagged_with_its_reason(files, run_import, members, units):
    units["bakery"].opened_on = dt.date(2020, 5, 1)
    units["bakery"].save()
    future = (timezone.localdate() + dt.timedelta(days=40)).isoformat()
    job = run_import("orders", "bakery", files.csv("sales.csv", HEADERS, [
        line("BK-OK"),
        line("BK-NEG", quantity="-2"),                     # a negative quantity on a sale
        line("BK-ZERO", price="0"),                        # zero price
        line("BK-HIGH", price="99000000"),                 # far above the list price
        line("BK-LOW", price="400"),                       # far below it
        line("BK-FUT", at=future),                         # in the future
        line("BK-OLD", at="2019-12-31 23:00"),             # before the unit opened
        line("BK-MIX", price="0"), line("BK-MIX", sku=BAGUETTE, price="99000000"),
        line("BK-R", kind="반품", refund_of="BK-OK", price="0"),  # a refund at 0 won is no zero-price outlier
    ]))
    assert counts(job) == (10, 10, 0, 0, 0)
    assert job.flagged == 7
    assert {number: flags(number) for number in ("BK-OK", "BK-NEG", "BK-ZERO", "BK-HIGH", "BK-LOW", "BK-FUT", "BK-OLD", "BK-MIX", "BK-R")} == {
        "BK-OK": set(), "BK-NEG": {"negative_quantity"}, "BK-ZERO": {"zero_price"}, "BK-HIGH": {"extreme_price"},
        "BK-LOW": {"extreme_price"}, "BK-FUT": {"future"}, "BK-OLD": {"before_opening"},
        "BK-MIX": {"zero_price", "extreme_price"}, "BK-R": set()}
    assert set(Order.objects.filter(needs_review=True).values_list("external_ref", flat=True)) == {
        "BK-NEG", "BK-ZERO", "BK-HIGH", "BK-LOW", "BK-FUT", "BK-OLD", "BK-MIX"}
    flag = OrderFlag.objects.get(order__external_ref="BK-OLD")
    assert (flag.status, flag.job, flag.detail) == ("open", job, "opened 2020-05-01")
    negative = order("BK-NEG")
    assert (negative.total, negative.kind, negative.refund_of) == (-9000, "refund", None)  # stored by the sign rule
    # Re-importing flags nothing twice.
    again = run_import("orders", "bakery", job.path)
    assert counts(again) == (10, 0, 0, 10, 0) and again.flagged == 0
    assert OrderFlag.objects.count() == 8


def test_a_zero_price_is_no_outlier_for_a_free_product(files, run_import, members, units):
    free = Product.objects.create(unit=units["bakery"], category=Product.objects.get(sku=CROISSANT).category, sku="BK-FREE",
                                  name="시식", price=0)
    job = run_import("orders", "bakery", files.csv("sales.csv", HEADERS, [line("BK-1", sku=free.sku), line("BK-2", sku=free.sku, price="0")]))
    assert counts(job) == (2, 2, 0, 0, 0) and job.flagged == 0


def test_many_orders_by_one_customer_in_one_day_are_flagged(files, run_import, members, settings):
    settings.DANGOL_OUTLIER_ORDERS_PER_DAY = 3
    rows = [line(f"BK-A{i}", at=f"2024-03-01 {10 + i}:00") for i in range(4)]           # 4 on one Seoul day
    rows += [line(f"BK-B{i}", member="B2", at=f"2024-03-01 {10 + i}:00") for i in range(3)]  # 3: the limit
    # Two on each side of midnight in Seoul: four on one day in UTC, but two a day for the unit.
    rows += [line(f"BK-C{i}", member="B2", at=f"2024-03-0{2 + i // 2} {'23:30' if i < 2 else '00:30'}") for i in range(4)]
    rows += [line(f"BK-W{i}", member="", at="2024-03-01 12:00") for i in range(5)]         # walk-in customers
    job = run_import("orders", "bakery", files.csv("sales.csv", HEADERS, rows))
    assert job.flagged == 4
    flagged = set(OrderFlag.objects.filter(reason="many_orders").values_list("order__external_ref", flat=True))
    assert flagged == {"BK-A0", "BK-A1", "BK-A2", "BK-A3"}
    assert OrderFlag.objects.filter(reason="many_orders").first().detail == "4 orders on 2024-03-01"
    # B2 has 3 orders on 1 March already; one more in a later file makes the day one too many.
    later = run_import("orders", "bakery", files.csv("later.csv", HEADERS, [line("BK-B9", member="B2", at="2024-03-01 20:00")]))
    assert later.flagged == 1
    assert flags("BK-B9") == {"many_orders"}
    assert OrderFlag.objects.get(order__external_ref="BK-B9").detail == "4 orders on 2024-03-01"


# --- idempotency, dry runs, crashes -------------------------------------------------------------------------------

SALES = [line("BK-1", quantity="2"), line("BK-1", sku=BAGUETTE), line("BK-2", member="B2"), line("BK-3", member=""),
         line("BK-R1", at="2024-03-02", kind="반품", refund_of="BK-1"), line("BK-X", price="0"), line("BK-E", sku="NOPE")]


def test_importing_the_same_orders_again_changes_nothing(files, run_import, members):
    path = files.csv("sales.csv", HEADERS, SALES)
    first = run_import("orders", "bakery", path)
    assert counts(first) == (7, 6, 0, 0, 1) and first.flagged == 1
    before = data_counts()
    snapshot = sorted(Order.objects.values_list("external_ref", "total", "kind", "refund_of__external_ref", "needs_review"))
    second = run_import("orders", "bakery", path)
    assert counts(second) == (7, 0, 0, 6, 1) and second.flagged == 0
    assert data_counts() == before
    assert sorted(Order.objects.values_list("external_ref", "total", "kind", "refund_of__external_ref", "needs_review")) == snapshot


def test_a_dry_run_of_orders_writes_nothing_but_counts_like_the_real_run(files, run_import, members):
    path = files.csv("sales.csv", HEADERS, SALES)
    before = data_counts()
    stages = list(Customer.objects.values_list("stage", flat=True))
    dry = run_import("orders", "bakery", path, dry_run=True)
    assert data_counts() == before and list(Customer.objects.values_list("stage", flat=True)) == stages
    real = run_import("orders", "bakery", path)
    assert counts(dry) == counts(real) == (7, 6, 0, 0, 1)
    assert dry.flagged == real.flagged == 1
    assert row_errors(dry) == row_errors(real)


@pytest.fixture
def one_line_per_product():
    """A rule the database enforces and the import does not know about: one line per product in an order."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE UNIQUE INDEX test_one_line_per_product ON sales_orderline (order_id, product_id)")
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX IF EXISTS test_one_line_per_product")


def test_an_order_import_the_database_stops_midway_writes_nothing(files, run_import, members, one_line_per_product):
    before = data_counts()
    stages = sorted(Customer.objects.values_list("pk", "stage"))
    path = files.csv("sales.csv", HEADERS, [line("BK-1"), line("BK-2", member="B2"), line("BK-3", price="0"),
                                            line("BK-4"), line("BK-4", quantity="2")])
    with translation.override("en"):
        job = run_import("orders", "bakery", path)
    assert job.status == JobStatus.FAILED and "wrote nothing" in job.error
    assert (job.created, job.unchanged) == (0, 0)
    assert data_counts() == before
    assert sorted(Customer.objects.values_list("pk", "stage")) == stages


def test_an_xlsx_of_orders_with_excel_typed_values(files, run_import, catalogue, units):
    run_import("customers", "bakery", files.csv("members.csv", ["회원번호", "성명", "휴대폰"], [["1001", "김하늘", "010-1111-0001"]]))
    job = run_import("orders", "bakery", files.xlsx("sales.xlsx", HEADERS, [
        [20240301001, 1001, dt.datetime(2024, 3, 1, 14, 30), CROISSANT, 2, 4500.0, "판매", None],
        [20240301002, 1001, dt.date(2024, 3, 2), BAGUETTE, 1, None, None, None],
    ]))
    assert counts(job) == (2, 2, 0, 0, 0), row_errors(job)
    first = order("20240301001")
    assert (first.total, first.ordered_at, first.customer.name) == (9000, dt.datetime(2024, 3, 1, 14, 30, tzinfo=SEOUL), "김하늘")
    assert order("20240301002").ordered_at == dt.datetime(2024, 3, 2, tzinfo=SEOUL)
