"""Import a unit's sales as one row per order line; flag outliers; keep every order whole.

An order (the unit's own order number) is imported whole or not at all: one bad line rejects its siblings. An order
number imported before is left as it is ("unchanged" when its lines are the same; rejected when they differ —
imported sales are history, not something a later file rewrites). Suspicious orders are imported with
``needs_review`` and an ``OrderFlag`` per reason, so analytics leave them out until a manager accepts them.
"""
from __future__ import annotations

import datetime as dt
import zoneinfo

import numpy as np
import polars as pl
from django.conf import settings
from django.db import connection
from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone

from dangol.core import bulk, events
from dangol.core.audit import Actor
from dangol.core.bulk import NullableInts, Rows, Timestamps
from dangol.customers.models import Customer, Interaction, InteractionKind, Membership, Stage
from dangol.sales.models import Order, OrderKind, OrderLine, Product, SalesChannel

from . import normalize as n
from .customers_import import _chunks, _fetch, allocate_ids, lock_referenced
from .models import FlagReason, FlagStatus, ImportJob, OrderFlag

KINDS = {"": "sale", "sale": "sale", "판매": "sale", "매출": "sale", "정상": "sale", "s": "sale",
         "refund": "refund", "return": "refund", "반품": "refund", "환불": "refund", "취소": "refund", "r": "refund"}
CHANNELS = {"": SalesChannel.STORE.value, "store": "store", "매장": "store", "오프라인": "store", "phone": "phone", "전화": "phone",
            "web": "web", "웹": "web", "온라인": "web", "홈페이지": "web", "app": "app", "앱": "app", "모바일앱": "app"}


def _integer(expr: pl.Expr) -> pl.Expr:
    """'1,200', '1200원', '₩4,500' (Excel's currency format), ' 3 ', '2.0' → int; anything else → null."""
    text = expr.fill_null("").str.strip_chars().str.replace_all(r"[,\s]|원$|^[₩￦]", "").str.replace(r"\.0+$", "")
    return text.cast(pl.Int64, strict=False)


def run(*, job: ImportJob, table, mapping: dict[str, str], actor: Actor, now: dt.datetime) -> tuple[dict, pl.DataFrame]:
    unit = job.unit
    today = timezone.localdate()
    header_of = {key: header for header, key in mapping.items() if key}
    frame = table.frame.select([pl.col("__row")] + [pl.col(h).fill_null("").alias(f"raw_{k}") for h, k in mapping.items() if k])
    for key in ("order_no", "customer_source_id", "customer_phone", "ordered_at", "sku", "quantity", "unit_price", "kind",
                "refund_of", "channel"):
        if f"raw_{key}" not in frame.columns:
            frame = frame.with_columns(pl.lit("", dtype=pl.Utf8).alias(f"raw_{key}"))
    errors: list[pl.DataFrame] = []

    def fail(mask, key, code, *, quote=True):
        errors.append(n.error_rows(frame, mask, column=header_of.get(key, ""), value=f"raw_{key}" if quote else None, code=code))

    products = {sku: (pk, price, cost, name) for pk, sku, price, cost, name in
                Product.objects.filter(unit=unit).values_list("pk", "sku", "price", "unit_cost", "name")}
    frame = n.with_date(frame, "raw_ordered_at", "when", today).rename({"when_time_bad": "when_bad"})
    frame = frame.with_columns(
        order_no=n.clean_text(pl.col("raw_order_no")), sku=n.clean_text(pl.col("raw_sku")),
        refund_of_no=n.clean_text(pl.col("raw_refund_of")), customer_source_id=n.clean_text(pl.col("raw_customer_source_id")),
        quantity=_integer(pl.col("raw_quantity")), unit_price_given=pl.col("raw_unit_price").str.strip_chars() != "",
        unit_price=_integer(pl.col("raw_unit_price")),
        kind=pl.col("raw_kind").str.strip_chars().str.to_lowercase().replace_strict(KINDS, default=None, return_dtype=pl.Utf8),
        channel=pl.col("raw_channel").str.strip_chars().str.to_lowercase().replace_strict(CHANNELS, default=None, return_dtype=pl.Utf8),
        customer_phone=n.normalize_phones(frame.get_column("raw_customer_phone")),
    )
    frame = frame.with_columns(ordered_at=n.seoul_datetime(pl.col("when_date"), pl.col("when_seconds")))
    fail(pl.col("order_no") == "", "order_no", "order_no_missing", quote=False)
    fail(pl.col("order_no").str.len_chars() > 60, "order_no", "order_no_too_long")
    fail(pl.col("when_date").is_null() | pl.col("when_bad"), "ordered_at", "datetime_invalid")
    fail(pl.col("sku") == "", "sku", "sku_missing", quote=False)
    fail((pl.col("sku") != "") & ~pl.col("sku").is_in(list(products)), "sku", "product_unknown")
    fail(pl.col("quantity").is_null() | (pl.col("quantity") == 0) | (pl.col("quantity").abs() > 1_000_000), "quantity", "quantity_invalid")
    fail(pl.col("unit_price_given") & (pl.col("unit_price").is_null() | (pl.col("unit_price") < 0)
                                       | (pl.col("unit_price") > 10_000_000_000)), "unit_price", "price_invalid")
    fail(pl.col("kind").is_null(), "kind", "kind_invalid")
    fail(pl.col("channel").is_null(), "channel", "channel_invalid")
    fail(pl.col("customer_phone").is_null(), "customer_phone", "phone_invalid")

    # Customers: by the unit's customer id, else by phone (a member of this unit first, then the oldest record).
    frame = frame.with_columns(customer_phone=pl.col("customer_phone").fill_null(""))
    frame = _resolve_customers(frame, unit)
    fail((pl.col("customer_source_id") != "") & pl.col("customer_id").is_null(), "customer_source_id", "customer_unknown")
    fail((pl.col("customer_source_id") == "") & (pl.col("customer_phone") != "") & pl.col("customer_id").is_null(),
         "customer_phone", "customer_unknown")

    # Lines of one order must agree on the order's own fields.
    frame = frame.with_columns(first_row=pl.col("__row").min().over("order_no"))
    head = frame.filter(pl.col("__row") == pl.col("first_row")).select(
        "order_no", pl.col("ordered_at").alias("h_at"), pl.col("customer_id").alias("h_customer"), pl.col("kind").alias("h_kind"),
        pl.col("refund_of_no").alias("h_refund"), pl.col("channel").alias("h_channel"))
    frame = frame.join(head, on="order_no", how="left")
    differs = ((pl.col("ordered_at") != pl.col("h_at")).fill_null(False) | ~pl.col("customer_id").eq_missing(pl.col("h_customer"))
               | ~pl.col("kind").eq_missing(pl.col("h_kind")) | (pl.col("refund_of_no") != pl.col("h_refund"))
               | ~pl.col("channel").eq_missing(pl.col("h_channel")))
    errors.append(frame.filter((pl.col("order_no") != "") & differs).select(
        "__row", pl.lit(header_of.get("order_no", ""), dtype=pl.Utf8).alias("column"), pl.col("raw_order_no").alias("value"),
        pl.lit("order_inconsistent", dtype=pl.Utf8).alias("code"), pl.col("first_row").cast(pl.Int64).alias("ref_row")))

    frame = frame.with_columns(
        product_id=pl.col("sku").replace_strict({k: v[0] for k, v in products.items()}, default=None, return_dtype=pl.Int64),
        list_price=pl.col("sku").replace_strict({k: v[1] for k, v in products.items()}, default=None, return_dtype=pl.Int64),
        unit_cost=pl.col("sku").replace_strict({k: v[2] for k, v in products.items()}, default=None, return_dtype=pl.Int64),
    )
    frame = frame.with_columns(unit_price=pl.when(pl.col("unit_price_given")).then(pl.col("unit_price")).otherwise(pl.col("list_price")),
                               # a refund line's quantity is negative, whatever sign the file used
                               quantity=pl.when(pl.col("kind") == "refund").then(-pl.col("quantity").abs()).otherwise(pl.col("quantity")))

    error_frame = pl.concat(errors) if errors else n.empty_errors()
    # An order is whole or nothing: a bad line rejects the other lines of its order.
    bad_orders = (error_frame.join(frame.select("__row", "order_no"), on="__row").filter(pl.col("order_no") != "")
                  .group_by("order_no").agg(pl.col("__row").min().alias("bad_row")))
    siblings = frame.join(bad_orders, on="order_no").filter(~pl.col("__row").is_in(error_frame.get_column("__row").implode()))
    if siblings.height:
        error_frame = pl.concat([error_frame, siblings.select(
            "__row", pl.lit(header_of.get("order_no", ""), dtype=pl.Utf8).alias("column"), pl.col("raw_order_no").alias("value"),
            pl.lit("order_line_rejected", dtype=pl.Utf8).alias("code"), pl.col("bad_row").cast(pl.Int64).alias("ref_row"))])
    good = frame.filter(~pl.col("__row").is_in(error_frame.get_column("__row").unique().implode()))
    good = good.with_columns(line_total=pl.col("unit_price") * pl.col("quantity"))

    orders = good.group_by("order_no", maintain_order=True).agg(
        pl.col("__row").min().alias("first_row"), pl.col("ordered_at").first(), pl.col("customer_id").first(),
        pl.col("kind").first(), pl.col("refund_of_no").first(), pl.col("channel").first(),
        pl.col("line_total").sum().alias("total"), pl.len().alias("lines"),
        (pl.col("quantity") < 0).any().alias("has_negative"),
        ((pl.col("unit_price") == 0) & (pl.col("list_price") > 0)).any().alias("has_zero_price"),  # not a free product
        ((pl.col("list_price") > 0) & (pl.col("unit_price") > 0) & ((pl.col("unit_price") > pl.col("list_price") * 10)
                                       | (pl.col("unit_price") * 10 < pl.col("list_price")))).any().alias("has_extreme_price"),
        pl.col("sku").first().alias("first_sku"), pl.col("quantity").first().alias("first_quantity"),
        *_signature(pl.col("product_id"), pl.col("quantity"), pl.col("unit_price")),
    )
    # Orders imported before: the same lines → unchanged; different lines → rejected (history is not rewritten).
    existing = _existing_orders(unit.pk, orders.get_column("order_no").to_list())
    orders = orders.join(existing, on="order_no", how="left")
    orders = orders.join(_existing_signatures(orders.filter(pl.col("old_id").is_not_null()).get_column("old_id").to_list()),
                         on="old_id", how="left")
    # The same total and number of lines can hide other lines (another product at the same price): compare sums over
    # the lines that tell them apart as well.
    alike = ((pl.col("old_total") == pl.col("total")) & (pl.col("old_lines") == pl.col("lines"))
             & pl.all_horizontal([pl.col(f"old_{name}") == pl.col(name) for name in SIGNATURE])).fill_null(False)
    same = orders.filter(pl.col("old_id").is_not_null() & alike)
    clash = orders.filter(pl.col("old_id").is_not_null() & ~alike)
    if clash.height:
        clash_rows = good.join(clash.select("order_no"), on="order_no")
        error_frame = pl.concat([error_frame, clash_rows.select(
            "__row", pl.lit(header_of.get("order_no", ""), dtype=pl.Utf8).alias("column"), pl.col("raw_order_no").alias("value"),
            pl.lit("order_exists", dtype=pl.Utf8).alias("code"), pl.lit(None, dtype=pl.Int64).alias("ref_row"))])
    new_orders = orders.filter(pl.col("old_id").is_null())
    unchanged_lines = int(same.get_column("lines").sum() or 0)

    # Refunds point at a sale of this file or one imported before; each sale is refunded once, by at most its total.
    new_orders, refund_errors = _check_refunds(new_orders, good, unit.pk, header_of)
    if refund_errors.height:
        error_frame = pl.concat([error_frame, refund_errors])
    kept = set(new_orders.get_column("order_no").to_list())
    good = good.filter(pl.col("order_no").is_in(list(kept)))
    flags = _outlier_flags(new_orders, unit, now)
    flagged_orders = set(flags.get_column("order_no").to_list()) if flags.height else set()
    _write(job=job, actor=actor, orders=new_orders, lines=good, flags=flags, flagged=flagged_orders, products=products, now=now)
    job.flagged = len(flagged_orders)
    return {"created": good.height, "updated": 0, "unchanged": unchanged_lines}, error_frame


def _resolve_customers(frame: pl.DataFrame, unit) -> pl.DataFrame:
    frame = frame.with_columns(pl.lit(None, dtype=pl.Int64).alias("customer_id"))
    ids = frame.filter(pl.col("customer_source_id") != "").get_column("customer_source_id").unique().to_list()
    if ids:
        rows = []
        for part in _chunks(ids):
            rows += _fetch(f"SELECT s.source_id, s.customer_id FROM ingest_sourcerecord s "
                           f"WHERE s.unit_id = %s AND s.source_id IN ({', '.join(['%s'] * len(part))})", [unit.pk, *part])
        known = pl.DataFrame(rows, schema={"customer_source_id": pl.Utf8, "by_source": pl.Int64}, orient="row")
        frame = frame.join(known, on="customer_source_id", how="left").with_columns(customer_id=pl.col("by_source")).drop("by_source")
    phones = frame.filter((pl.col("customer_source_id") == "") & (pl.col("customer_phone") != "")).get_column("customer_phone").unique().to_list()
    if phones:
        rows = []
        for part in _chunks(phones):
            rows += _fetch(
                "SELECT cp.value, c.id, EXISTS (SELECT 1 FROM customers_membership m WHERE m.customer_id = c.id AND m.unit_id = %s) "
                "FROM customers_contactpoint cp JOIN customers_customer c ON c.id = cp.customer_id "
                f"WHERE cp.kind = 'phone' AND c.merged_into_id IS NULL AND cp.value IN ({', '.join(['%s'] * len(part))})",
                [unit.pk, *part])
        found = pl.DataFrame(rows, schema={"customer_phone": pl.Utf8, "by_phone": pl.Int64, "member": pl.Boolean}, orient="row")
        found = found.sort(["customer_phone", "member", "by_phone"], descending=[False, True, False]).unique("customer_phone", keep="first")
        frame = frame.join(found.select("customer_phone", "by_phone"), on="customer_phone", how="left").with_columns(
            customer_id=pl.when(pl.col("customer_source_id") == "").then(pl.col("by_phone")).otherwise(pl.col("customer_id"))
        ).drop("by_phone")
    return frame


def _existing_orders(unit_id: int, numbers: list[str]) -> pl.DataFrame:
    rows = []
    for part in _chunks(numbers):
        rows += _fetch(
            "SELECT o.external_ref, o.id, o.total, o.kind, (SELECT COUNT(*) FROM sales_orderline l WHERE l.order_id = o.id) "
            f"FROM sales_order o WHERE o.unit_id = %s AND o.external_ref IN ({', '.join(['%s'] * len(part))})", [unit_id, *part])
    return pl.DataFrame(rows, schema={"order_no": pl.Utf8, "old_id": pl.Int64, "old_total": pl.Int64, "old_kind": pl.Utf8,
                                      "old_lines": pl.Int64}, orient="row")


SIGNATURE = ("sum_quantity", "sum_product_quantity", "sum_product_square", "sum_product_price")


def _signature(product: pl.Expr, quantity: pl.Expr, price: pl.Expr) -> list[pl.Expr]:
    """Sums over an order's lines that differ when its lines differ (kept small enough for 64-bit integers)."""
    return [quantity.sum().alias("sum_quantity"), (product * quantity).sum().alias("sum_product_quantity"),
            (product * product).sum().alias("sum_product_square"), (product * price).sum().alias("sum_product_price")]


def _existing_signatures(order_ids: list[int]) -> pl.DataFrame:
    rows = []
    for part in _chunks(order_ids):
        rows += _fetch(
            "SELECT order_id, CAST(SUM(quantity) AS BIGINT), CAST(SUM(product_id * quantity) AS BIGINT), "
            "CAST(SUM(product_id * product_id) AS BIGINT), CAST(SUM(product_id * unit_price) AS BIGINT) FROM sales_orderline "
            f"WHERE order_id IN ({', '.join(['%s'] * len(part))}) GROUP BY order_id", part)
    return pl.DataFrame(rows, schema={"old_id": pl.Int64, **{f"old_{name}": pl.Int64 for name in SIGNATURE}}, orient="row")


def _check_refunds(orders: pl.DataFrame, lines: pl.DataFrame, unit_id: int, header_of: dict) -> tuple[pl.DataFrame, pl.DataFrame]:
    refunds = orders.filter(pl.col("kind") == "refund")
    if refunds.height == 0:
        return orders.with_columns(pl.lit(None, dtype=pl.Int64).alias("refund_of_id")), n.empty_errors()
    originals = refunds.get_column("refund_of_no").unique().to_list()
    in_db = _existing_orders(unit_id, [o for o in originals if o])
    already = set()
    if in_db.height:
        for (old_id,) in _fetch(f"SELECT refund_of_id FROM sales_order WHERE kind = 'refund' AND refund_of_id IN "
                                f"({', '.join(['%s'] * in_db.height)})", in_db.get_column("old_id").to_list()):
            already.add(old_id)
    sales_in_file = orders.filter(pl.col("kind") == "sale").select(pl.col("order_no").alias("refund_of_no"),
                                                                  pl.col("total").alias("file_total"))
    refunds = (refunds.join(in_db.select(pl.col("order_no").alias("refund_of_no"), "old_id", pl.col("old_total").alias("db_total"),
                                         pl.col("old_kind").alias("db_kind")), on="refund_of_no", how="left", suffix="_db")
               .join(sales_in_file, on="refund_of_no", how="left"))
    refunds = refunds.with_columns(
        original_total=pl.coalesce(pl.when(pl.col("db_kind") == "sale").then(pl.col("db_total")), pl.col("file_total")),
        twice=pl.col("old_id_db").is_in(list(already)) | (pl.col("refund_of_no").is_duplicated() & (pl.col("refund_of_no") != "")),
    )
    code = (pl.when(pl.col("original_total").is_null()).then(pl.lit("refund_unknown"))
            .when(pl.col("twice")).then(pl.lit("refund_twice"))
            .when(-pl.col("total") > pl.col("original_total")).then(pl.lit("refund_too_large")).otherwise(None))
    refunds = refunds.with_columns(code=code)
    bad = refunds.filter(pl.col("code").is_not_null()).select("order_no", "code")
    errors = lines.join(bad, on="order_no").select(
        "__row", pl.lit(header_of.get("refund_of", header_of.get("order_no", "")), dtype=pl.Utf8).alias("column"),
        pl.col("raw_refund_of").alias("value"), pl.col("code"), pl.lit(None, dtype=pl.Int64).alias("ref_row"))
    orders = orders.filter(~pl.col("order_no").is_in(bad.get_column("order_no").implode()))
    refund_ids = refunds.filter(pl.col("code").is_null()).select("order_no", pl.col("old_id_db").alias("refund_of_id"))
    orders = orders.join(refund_ids, on="order_no", how="left")
    return orders, errors


def _outlier_flags(orders: pl.DataFrame, unit, now: dt.datetime) -> pl.DataFrame:
    """One row per (order, reason) for suspicious new orders."""
    per_day = getattr(settings, "DANGOL_OUTLIER_ORDERS_PER_DAY", 20)
    opened = unit.opened_on
    frame = orders.with_columns(
        day=pl.col("ordered_at").dt.convert_time_zone(n.SEOUL).dt.date(),
    ).with_columns(
        orders_that_day=pl.when(pl.col("customer_id").is_not_null()).then(pl.len().over("customer_id", "day")).otherwise(0))
    # The customer's orders at the unit that Dangol has already (an earlier file of the same day, the app) count too.
    before = _orders_per_day(unit.pk, frame.filter(pl.col("customer_id").is_not_null()))
    if before.height:
        frame = frame.join(before, on=["customer_id", "day"], how="left").with_columns(
            orders_that_day=pl.col("orders_that_day") + pl.col("orders_before").fill_null(0)).drop("orders_before")
    checks = [
        (FlagReason.NEGATIVE_QUANTITY, (pl.col("kind") == "sale") & pl.col("has_negative"), pl.lit("")),
        (FlagReason.ZERO_PRICE, (pl.col("kind") == "sale") & pl.col("has_zero_price"), pl.lit("")),
        (FlagReason.EXTREME_PRICE, pl.col("has_extreme_price"), pl.lit("")),
        (FlagReason.FUTURE, pl.col("ordered_at") > pl.lit(now + dt.timedelta(minutes=5)).dt.convert_time_zone("UTC"), pl.lit("")),
        (FlagReason.MANY_ORDERS, pl.col("orders_that_day") > per_day,
         pl.format("{} orders on {}", pl.col("orders_that_day"), pl.col("day").cast(pl.Utf8))),
    ]
    if opened is not None:
        checks.append((FlagReason.BEFORE_OPENING, pl.col("day") < pl.lit(opened), pl.lit(f"opened {opened.isoformat()}")))
    parts = [frame.filter(mask).select("order_no", pl.lit(reason.value).alias("reason"), detail.alias("detail"))
             for reason, mask, detail in checks]
    return pl.concat(parts) if parts else pl.DataFrame(schema={"order_no": pl.Utf8, "reason": pl.Utf8, "detail": pl.Utf8})


def _orders_per_day(unit_id: int, orders: pl.DataFrame) -> pl.DataFrame:
    """customer_id, day (in Seoul), orders_before: the unit's orders in Dangol by the customers of ``orders`` on the
    days of ``orders``."""
    schema = {"customer_id": pl.Int64, "day": pl.Date, "orders_before": pl.UInt32}
    if orders.height == 0:
        return pl.DataFrame(schema=schema)
    low, high = orders.get_column("ordered_at").min(), orders.get_column("ordered_at").max()
    found = []
    for part in _chunks(orders.get_column("customer_id").unique().to_list()):
        found += (Order.objects.filter(unit_id=unit_id, customer_id__in=part, ordered_at__gte=low - dt.timedelta(days=1),
                                       ordered_at__lt=high + dt.timedelta(days=1))
                  .annotate(day=TruncDate("ordered_at", tzinfo=zoneinfo.ZoneInfo(n.SEOUL))).order_by()
                  .values("customer_id", "day").annotate(count=Count("id")).values_list("customer_id", "day", "count"))
    if not found:
        return pl.DataFrame(schema=schema)
    days = orders.select("customer_id", "day").unique()
    return (pl.DataFrame(found, schema={"customer_id": pl.Int64, "day": pl.Date, "orders_before": pl.UInt32}, orient="row")
            .join(days, on=["customer_id", "day"]))


def _write(*, job, actor, orders: pl.DataFrame, lines: pl.DataFrame, flags: pl.DataFrame, flagged: set, products: dict,
           now: dt.datetime) -> None:
    count = orders.height
    if count == 0:
        return
    lock_referenced("customers_customer", orders.get_column("customer_id").drop_nulls().to_list())
    lock_referenced("sales_order", orders.get_column("refund_of_id").drop_nulls().to_list())
    lock_referenced("sales_product", lines.get_column("product_id").unique().to_list())
    user_id = actor.user.pk if actor.user else None
    now_s = int(now.timestamp())
    # A "sale" whose lines add up below zero is stored as an unlinked refund (the sign rule of orders), flagged.
    orders = orders.with_columns(
        stored_kind=pl.when((pl.col("kind") == "sale") & (pl.col("total") < 0)).then(pl.lit("refund")).otherwise(pl.col("kind")),
        flagged=pl.col("order_no").is_in(list(flagged)),
    )
    order_ids = allocate_ids(Order, count)
    orders = orders.with_columns(pl.Series("id", order_ids))
    # A refund of a sale in the same file points at the id that sale has just been given.
    new_id_of = dict(zip(orders.get_column("order_no").to_list(), order_ids.tolist()))
    orders = orders.with_columns(refund_of_id=pl.when(pl.col("kind") == "refund").then(
        pl.coalesce(pl.col("refund_of_id"), pl.col("refund_of_no").replace_strict(new_id_of, default=None, return_dtype=pl.Int64))
    ).otherwise(None))
    at_s = orders.get_column("ordered_at").dt.epoch("s").to_numpy().astype(np.int64)
    customer = orders.get_column("customer_id")
    refund_of = orders.get_column("refund_of_id")
    bulk.write(Rows(Order, count, {
        "id": order_ids, "unit": job.unit_id,
        "customer": NullableInts(customer.fill_null(0).to_numpy().astype(np.int64), customer.is_null().to_numpy()),
        "kind": orders.get_column("stored_kind").to_list(),
        "refund_of": NullableInts(refund_of.fill_null(0).to_numpy().astype(np.int64), refund_of.is_null().to_numpy()),
        "channel": orders.get_column("channel").to_list(), "ordered_at": Timestamps(at_s),
        "total": orders.get_column("total").to_numpy().astype(np.int64), "external_ref": orders.get_column("order_no").to_list(),
        "needs_review": orders.get_column("flagged").to_numpy(), "created_by": user_id,
        "created_at": Timestamps(np.full(count, now_s)),
    }))
    lines = lines.join(orders.select("order_no", pl.col("id").alias("order_id")), on="order_no")
    bulk.write(Rows(OrderLine, lines.height, {
        "id": allocate_ids(OrderLine, lines.height), "order": lines.get_column("order_id").to_numpy(),
        "product": lines.get_column("product_id").to_numpy(), "quantity": lines.get_column("quantity").to_numpy(),
        "unit_price": lines.get_column("unit_price").to_numpy(), "unit_cost": lines.get_column("unit_cost").to_numpy(),
        "line_total": lines.get_column("line_total").to_numpy(),
    }))
    if flags.height:
        flags = flags.join(orders.select("order_no", "id"), on="order_no")
        bulk.write(Rows(OrderFlag, flags.height, {
            "id": allocate_ids(OrderFlag, flags.height), "order": flags.get_column("id").to_numpy(),
            "reason": flags.get_column("reason").to_list(), "detail": flags.get_column("detail").str.slice(0, 200).to_list(),
            "status": FlagStatus.OPEN.value, "job": job.pk, "reviewed_by": None, "reviewed_at": None,
        }))
    _timeline_and_customers(orders.filter(pl.col("customer_id").is_not_null()), products, lines, job.unit_id, user_id)
    # What record_order's "order_recorded" is for one order, for the whole file at once (loyalty earns set-based).
    events.emit("orders_imported", unit_id=job.unit_id, order_ids=order_ids.tolist())


def _timeline_and_customers(orders: pl.DataFrame, products: dict, lines: pl.DataFrame, unit_id: int, user_id) -> None:
    """What ``customers.services.on_order_recorded`` does per order, done once for the whole file."""
    if orders.height == 0:
        return
    names = {sku: value[3] for sku, value in products.items()}
    first = lines.group_by("order_id", maintain_order=True).agg(pl.col("sku").first(), pl.col("quantity").first(), pl.len().alias("n"))
    orders = orders.join(first.rename({"order_id": "id"}), on="id", how="left")
    summaries = orders.select(
        pl.when(pl.col("refund_of_id").is_not_null()).then(pl.format("Refund of order #{}", pl.col("refund_of_id")))
        .otherwise(pl.format("{} ×{}{}", pl.col("sku").replace_strict(names, default="", return_dtype=pl.Utf8), pl.col("quantity"),
                             pl.when(pl.col("n") > 1).then(pl.format(" (+{})", pl.col("n") - 1)).otherwise(pl.lit("")))).alias("s")
    ).to_series().str.slice(0, 300).to_list()
    count = orders.height
    bulk.write(Rows(Interaction, count, {
        "id": allocate_ids(Interaction, count), "customer": orders.get_column("customer_id").to_numpy(),
        "kind": pl.Series(orders.get_column("stored_kind")).replace_strict({"sale": InteractionKind.PURCHASE.value,
                                                                          "refund": InteractionKind.REFUND.value}).to_list(),
        "occurred_at": Timestamps(orders.get_column("ordered_at").dt.epoch("s").to_numpy().astype(np.int64)),
        "unit": unit_id, "channel": orders.get_column("channel").to_list(), "summary": summaries, "body": "",
        "amount": orders.get_column("total").to_numpy().astype(np.int64), "ref_type": "sales.order",
        "ref_id": orders.get_column("id").to_numpy(), "created_by": user_id,
    }))
    customers = orders.group_by("customer_id").agg(pl.col("ordered_at").min().alias("first_at"),
                                                   (pl.col("stored_kind") == "sale").any().alias("bought"))
    ids = customers.get_column("customer_id").to_list()
    members = set()
    for part in _chunks(ids):
        members |= {row[0] for row in _fetch(f"SELECT customer_id FROM customers_membership WHERE unit_id = %s AND customer_id IN "
                                             f"({', '.join(['%s'] * len(part))})", [unit_id, *part])}
    joining = customers.filter(~pl.col("customer_id").is_in(list(members)))
    if joining.height:
        bulk.write(Rows(Membership, joining.height, {
            "id": allocate_ids(Membership, joining.height), "customer": joining.get_column("customer_id").to_numpy(),
            "unit": unit_id, "joined_at": Timestamps(joining.get_column("first_at").dt.epoch("s").to_numpy().astype(np.int64)),
            "source": "purchase",
        }))
    buyers = customers.filter(pl.col("bought")).get_column("customer_id").to_list()
    for part in _chunks(buyers):
        Customer.objects.filter(pk__in=part, stage=Stage.PROSPECT).update(stage=Stage.CUSTOMER)
