import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from dangol.core.audit import Actor
from dangol.customers.models import Customer, Interaction, Membership
from dangol.sales.models import Order, OrderLine
from dangol.sales.services import LineInput, record_order, record_refund


def test_it_records_an_order_computes_the_total_and_puts_it_on_the_timeline(units, bora, products, make_customer):
    customer = make_customer("seoul-hotel")  # known at the hotel, now buys at the bakery too
    order = record_order(actor=Actor(user=bora), unit=units["bakery"], customer=customer, lines=[
        LineInput(products["croissant"].pk, 2), LineInput(products["baguette"].pk, 1, unit_price=4000)])
    assert order.total == 2 * 4500 + 4000
    assert list(order.lines.values_list("line_total", flat=True)) == [9000, 4000]
    assert order.lines.first().unit_cost == 1500
    entry = Interaction.objects.get(ref_type="sales.order", ref_id=order.pk)
    assert (entry.kind, entry.amount, entry.unit) == ("purchase", 13000, units["bakery"])
    assert "크루아상" in entry.summary
    assert Membership.objects.filter(customer=customer, unit=units["bakery"]).exists()
    customer.refresh_from_db()
    assert customer.stage == "customer"


@pytest.mark.parametrize("lines, field", [
    ([], "lines"),
    ([LineInput(999999, 1)], "lines"),
    ([LineInput(-1, 0)], "lines"),
])
def test_bad_orders_write_nothing(units, bora, products, make_customer, lines, field):
    customer = make_customer()
    with pytest.raises(ValidationError) as exc:
        record_order(actor=Actor(user=bora), unit=units["bakery"], customer=customer, lines=lines)
    assert field in exc.value.message_dict
    assert Order.objects.count() == 0 and Interaction.objects.count() == 0


def test_quantity_price_product_unit_and_time_are_checked(units, bora, products, make_customer):
    customer = make_customer()
    cases = [
        dict(lines=[LineInput(products["croissant"].pk, 0)]),
        dict(lines=[LineInput(products["croissant"].pk, -3)]),
        dict(lines=[LineInput(products["croissant"].pk, 1, unit_price=-100)]),
        dict(lines=[LineInput(products["deluxe"].pk, 1)]),  # a hotel room sold at the bakery
        dict(lines=[LineInput(products["croissant"].pk, 1)], at=timezone.now() + dt.timedelta(days=2)),
        dict(lines=[LineInput(products["croissant"].pk, 1)], channel="telepathy"),
    ]
    for case in cases:
        with pytest.raises(ValidationError):
            record_order(actor=Actor(user=bora), unit=units["bakery"], customer=customer, **case)
    assert Order.objects.count() == 0 and OrderLine.objects.count() == 0


def test_a_refund_is_a_negative_order_once_only(units, bora, products, make_customer):
    customer = make_customer()
    sale = record_order(actor=Actor(user=bora), unit=units["bakery"], customer=customer, lines=[LineInput(products["croissant"].pk, 3)])
    refund = record_refund(actor=Actor(user=bora), order=sale)
    assert (refund.kind, refund.total, refund.refund_of_id) == ("refund", -13500, sale.pk)
    assert list(refund.lines.values_list("quantity", "line_total")) == [(-3, -13500)]
    assert Interaction.objects.filter(customer=customer).values_list("kind", flat=True).order_by("id")[1] == "refund"
    with pytest.raises(ValidationError):
        record_refund(actor=Actor(user=bora), order=sale)
    with pytest.raises(ValidationError):
        record_refund(actor=Actor(user=bora), order=refund)
    assert Customer.objects.get(pk=customer.pk).stage == "customer"


def test_absurd_product_ids_and_boolean_quantities_are_rejected_not_crashed(units, bora, products, make_customer):
    customer = make_customer()
    for line in (LineInput(2**70, 1), LineInput(products["croissant"].pk, True)):
        with pytest.raises(ValidationError):
            record_order(actor=Actor(user=bora), unit=units["bakery"], customer=customer, lines=[line])
    assert Order.objects.count() == 0


def test_a_refund_cannot_predate_its_sale(units, bora, products, make_customer):
    customer = make_customer()
    sale = record_order(actor=Actor(user=bora), unit=units["bakery"], customer=customer, lines=[LineInput(products["croissant"].pk, 1)])
    with pytest.raises(ValidationError):
        record_refund(actor=Actor(user=bora), order=sale, at=sale.ordered_at - dt.timedelta(days=1))
    assert not Order.objects.filter(kind="refund").exists()
