"""Writes of sales: orders and refunds. Totals are computed here, never trusted from the caller."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from dangol.core import events
from dangol.core.audit import Actor
from dangol.core.models import BusinessUnit

from .models import Order, OrderKind, OrderLine, Product, SalesChannel

MAX_LINES = 200
MAX_QUANTITY = 10_000
MAX_UNIT_PRICE = 1_000_000_000  # one billion won a line item is a typo, not a sale


@dataclass
class LineInput:
    product_id: int
    quantity: int
    unit_price: int | None = None  # None: the product's list price


@transaction.atomic
def record_order(*, actor: Actor, unit: BusinessUnit, customer, lines: list[LineInput], at: dt.datetime | None = None,
                 channel: str = SalesChannel.STORE, external_ref: str = "") -> Order:
    """Record a sale at a unit. Raises ValidationError (keyed by field, lines by index) and writes nothing on bad input."""
    errors: dict[str, list] = {}
    if channel not in SalesChannel.values:
        errors["channel"] = [_("Choose a sales channel from the list.")]
    if at is None:
        at = timezone.now()
    elif timezone.is_naive(at):
        errors["ordered_at"] = [_("Give the time with its time zone.")]
    elif at > timezone.now() + dt.timedelta(minutes=5):
        errors["ordered_at"] = [_("An order cannot be in the future.")]
    if not lines:
        errors["lines"] = [_("An order needs at least one line.")]
    elif len(lines) > MAX_LINES:
        errors["lines"] = [_("An order has at most %(n)d lines.") % {"n": MAX_LINES}]
    # Ids outside the database's integer range are simply unknown products (SQLite would overflow on them).
    products = Product.objects.in_bulk({line.product_id for line in lines
                                        if type(line.product_id) is int and 0 < line.product_id < 2**63})
    line_errors = []
    for index, line in enumerate(lines):
        problem = _line_problem(line, products.get(line.product_id), unit)
        if problem:
            line_errors.append(f"{index + 1}: {problem}")
    if line_errors:
        errors.setdefault("lines", []).extend(line_errors)
    external_ref = (external_ref or "").strip()[:60]
    if external_ref and Order.objects.filter(unit=unit, external_ref=external_ref).exists():
        errors["external_ref"] = [_("This unit already has an order with this number.")]
    if errors:
        raise ValidationError(errors)
    # A record merged into another while the clerk had it open: the order belongs to the surviving customer.
    while customer is not None and getattr(customer, "merged_into_id", None):
        customer = type(customer).objects.get(pk=customer.merged_into_id)
    order = Order(unit=unit, customer=customer, kind=OrderKind.SALE, channel=channel, ordered_at=at, total=0,
                  external_ref=external_ref, created_by=actor.user)
    rows = []
    for line in lines:
        product = products[line.product_id]
        price = product.price if line.unit_price is None else line.unit_price
        rows.append(OrderLine(product=product, quantity=line.quantity, unit_price=price, unit_cost=product.unit_cost,
                              line_total=price * line.quantity))
    order.total = sum(row.line_total for row in rows)
    order.save()
    for row in rows:
        row.order = order
    OrderLine.objects.bulk_create(rows)
    order.timeline_summary = summarize(rows, products)
    order._line_count = len(rows)
    events.emit("order_recorded", order=order, actor=actor)
    return order


def _line_problem(line: LineInput, product: Product | None, unit: BusinessUnit) -> str | None:
    if product is None:
        return _("unknown product")
    if product.unit_id != unit.pk:
        return _("“%(product)s” is not sold at this business unit") % {"product": product.name}
    if not product.is_active:
        return _("“%(product)s” is no longer sold") % {"product": product.name}
    if type(line.quantity) is not int or not 1 <= line.quantity <= MAX_QUANTITY:  # bool is not a quantity
        return _("quantity must be between 1 and %(max)d") % {"max": MAX_QUANTITY}
    if line.unit_price is not None and (type(line.unit_price) is not int or not 0 <= line.unit_price <= MAX_UNIT_PRICE):
        return _("unit price must be between 0 and %(max)s won") % {"max": f"{MAX_UNIT_PRICE:,}"}
    return None


def summarize(rows: list[OrderLine], products: dict) -> str:
    first = products[rows[0].product_id].name if rows else ""
    more = len(rows) - 1
    return f"{first} ×{rows[0].quantity}" + (f" (+{more})" if more > 0 else "")


@transaction.atomic
def record_refund(*, actor: Actor, order: Order, at: dt.datetime | None = None) -> Order:
    """Refund a whole sale as a negative order. A sale is refunded at most once."""
    order = Order.objects.select_for_update().get(pk=order.pk)
    if at is not None and (timezone.is_naive(at) or at < order.ordered_at or at > timezone.now() + dt.timedelta(minutes=5)):
        raise ValidationError({"at": [_("A refund happens after its sale and not in the future.")]})
    if order.kind != OrderKind.SALE:
        raise ValidationError({"order": [_("Only a sale can be refunded.")]})
    if order.refunds.exists():
        raise ValidationError({"order": [_("This sale has already been refunded.")]})
    refund = Order.objects.create(unit=order.unit, customer=order.customer, kind=OrderKind.REFUND, refund_of=order,
                                  channel=order.channel, ordered_at=at or timezone.now(), total=-order.total,
                                  created_by=actor.user)
    rows = [OrderLine(order=refund, product_id=line.product_id, quantity=-line.quantity, unit_price=line.unit_price,
                      unit_cost=line.unit_cost, line_total=-line.line_total) for line in order.lines.all()]
    OrderLine.objects.bulk_create(rows)
    refund.timeline_summary = _("Refund of order #%(id)d") % {"id": order.pk}
    refund._line_count = len(rows)
    events.emit("order_recorded", order=refund, actor=actor)
    return refund
