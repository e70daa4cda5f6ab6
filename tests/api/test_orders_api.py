import datetime as dt

import pytest
from django.utils import timezone

from dangol.core.audit import Actor
from dangol.customers.models import Interaction, Membership
from dangol.sales.models import Order
from dangol.sales.services import LineInput, record_order

ORDERS = "/api/v1/orders"


def order_body(buyer, products, **overrides):
    body = {"unit": "bakery", "customer": buyer.pk, "channel": "store",
            "lines": [{"product": products["croissant"].pk, "quantity": 2},
                      {"product": products["baguette"].pk, "quantity": 1, "unit_price": 4000}]}
    body.update(overrides)
    return body


def test_it_records_a_sale_and_answers_with_its_lines(bora_api, bora, products, make_customer):
    customer = make_customer()

    response = bora_api.post(ORDERS, order_body(customer, products, ordered_at="2025-05-01T14:30:00+09:00",
                                                external_ref="R-1001"), format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    order = Order.objects.get(pk=body["id"])
    assert (order.total, order.created_by, order.customer) == (2 * 4500 + 4000, bora, customer)
    assert order.ordered_at == dt.datetime(2025, 5, 1, 5, 30, tzinfo=dt.timezone.utc)
    assert body["total"] == 13000 and body["unit"] == "bakery" and body["kind"] == "sale"
    assert [(line["sku"], line["quantity"], line["line_total"]) for line in body["lines"]] == [("B-001", 2, 9000), ("B-002", 1, 4000)]
    assert Interaction.objects.filter(customer=customer, kind="purchase").exists()


def test_an_order_at_a_unit_outside_the_scope_is_forbidden(bora_api, products, make_customer, row_counts):
    customer = make_customer()
    before = row_counts()

    response = bora_api.post(ORDERS, order_body(customer, products, unit="seoul-hotel",
                                                lines=[{"product": products["deluxe"].pk, "quantity": 1}]), format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert row_counts() == before


def test_an_order_for_a_customer_the_user_cannot_see_is_refused(bora_api, products, make_customer, row_counts):
    hotel_only = make_customer("seoul-hotel")
    before = row_counts()

    response = bora_api.post(ORDERS, order_body(hotel_only, products), format="json")

    assert response.status_code == 400
    assert "customer" in response.json()["errors"]
    assert row_counts() == before
    assert not Membership.objects.filter(customer=hotel_only, unit__code="bakery").exists()


def test_an_admin_records_an_order_anywhere(alice_api, products, make_customer):
    customer = make_customer("bakery")

    response = alice_api.post(ORDERS, order_body(customer, products, unit="seoul-hotel",
                                                 lines=[{"product": products["deluxe"].pk, "quantity": 1}]), format="json")

    assert response.status_code == 201
    assert Membership.objects.filter(customer=customer, unit__code="seoul-hotel").exists()


def future() -> str:
    return (timezone.now() + dt.timedelta(days=1)).isoformat()


@pytest.mark.parametrize("overrides, field", [
    ({"lines": [{"product": "croissant", "quantity": 0}]}, "lines"),  # product names become their ids below
    ({"lines": [{"product": "croissant", "quantity": -1}]}, "lines"),
    ({"lines": [{"product": "croissant", "quantity": "abc"}]}, "lines.0.quantity"),
    ({"lines": [{"product": "croissant", "quantity": 1.5}]}, "lines.0.quantity"),
    ({"lines": [{"product": "croissant", "quantity": 10**30}]}, "lines"),
    ({"lines": [{"product": "croissant", "quantity": 1, "unit_price": -5}]}, "lines"),
    ({"lines": [{"product": "croissant", "quantity": 1, "unit_price": "free"}]}, "lines.0.unit_price"),
    ({"lines": [{"product": 999999, "quantity": 1}]}, "lines"),
    ({"lines": [{"product": 10**30, "quantity": 1}]}, "lines.0.product"),
    ({"lines": [{"product": "deluxe", "quantity": 1}]}, "lines"),
    ({"lines": [{"product": "croissant"}]}, "lines.0.quantity"),
    ({"lines": [{"product": "croissant", "quantity": 1, "discount": 5}]}, "lines.0.discount"),
    ({"lines": []}, "lines"),
    ({"lines": {"product": "croissant", "quantity": 1}}, "lines"),
    ({"lines": "croissant"}, "lines"),
    ({"lines": None}, "lines"),
    ({"ordered_at": "future"}, "ordered_at"),
    ({"ordered_at": "2025-13-01T10:00:00+09:00"}, "ordered_at"),
    ({"ordered_at": "2025-05-01T10:00:00"}, "ordered_at"),
    ({"channel": "carrier-pigeon"}, "channel"),
    ({"unit": "no-such-unit"}, "unit"),
    ({"unit": None}, "unit"),
    ({"customer": None}, "customer"),
    ({"customer": "first"}, "customer"),
    ({"customer": 999999}, "customer"),
    ({"external_ref": "x" * 61}, "external_ref"),
])
def test_bad_orders_give_400_with_the_field_and_write_nothing(bora_api, products, make_customer, row_counts, overrides, field):
    customer = make_customer()
    overrides = dict(overrides)
    lines = overrides.get("lines")
    if isinstance(lines, list):
        overrides["lines"] = [{**line, "product": products[line["product"]].pk} if isinstance(line["product"], str) else line
                              for line in lines]
    if overrides.get("ordered_at") == "future":
        overrides["ordered_at"] = future()
    before = row_counts()

    response = bora_api.post(ORDERS, order_body(customer, products, **overrides), format="json")

    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["code"] == "invalid"
    assert field in body["errors"], body
    assert row_counts() == before


def test_a_missing_body_and_bad_json_give_400(bora_api, row_counts):
    before = row_counts()

    empty = bora_api.post(ORDERS, {}, format="json")
    broken = bora_api.post(ORDERS, "{lines: [}", content_type="application/json")

    assert empty.status_code == 400
    assert {"unit", "customer", "lines"} <= set(empty.json()["errors"])
    assert broken.status_code == 400 and broken.json()["code"] == "parse_error"
    assert row_counts() == before


def test_orders_cannot_be_listed_at_the_collection(bora_api):
    assert bora_api.get(ORDERS).status_code == 405


# ---- refunds ----

@pytest.fixture
def sale(units, bora, products, make_customer):
    return record_order(actor=Actor(user=bora), unit=units["bakery"], customer=make_customer(),
                        lines=[LineInput(products["croissant"].pk, 2)])


def test_it_refunds_a_sale_once(bora_api, sale, row_counts):
    response = bora_api.post(f"{ORDERS}/{sale.pk}/refund")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["kind"], body["refund_of"], body["total"]) == ("refund", sale.pk, -9000)
    assert body["lines"][0]["quantity"] == -2
    before = row_counts()

    again = bora_api.post(f"{ORDERS}/{sale.pk}/refund")

    assert again.status_code == 400
    assert "order" in again.json()["errors"]
    assert row_counts() == before


def test_a_refund_cannot_be_refunded(bora_api, sale):
    refund_id = bora_api.post(f"{ORDERS}/{sale.pk}/refund").json()["id"]

    response = bora_api.post(f"{ORDERS}/{refund_id}/refund")

    assert response.status_code == 400
    assert "order" in response.json()["errors"]


def test_a_sale_of_another_unit_cannot_be_refunded(mina_api, sale, row_counts):
    before = row_counts()

    assert mina_api.post(f"{ORDERS}/{sale.pk}/refund").status_code == 404
    assert mina_api.post(f"{ORDERS}/999999/refund").status_code == 404
    assert row_counts() == before


def test_refund_only_accepts_post(bora_api, sale):
    assert bora_api.get(f"{ORDERS}/{sale.pk}/refund").status_code == 405


# ---- a customer's orders ----

def test_it_lists_a_customers_orders_with_lines_newest_first(bora_api, sale):
    bora_api.post(f"{ORDERS}/{sale.pk}/refund")

    response = bora_api.get(f"/api/v1/customers/{sale.customer_id}/orders")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [row["kind"] for row in body["results"]] == ["refund", "sale"]
    assert body["results"][1]["lines"][0]["product_name"] == "크루아상"


def test_a_customers_orders_show_only_the_users_units(units, mina_api, bora, mina, products, make_customer):
    customer = make_customer("seoul-hotel")
    record_order(actor=Actor(user=bora), unit=units["bakery"], customer=customer, lines=[LineInput(products["croissant"].pk, 1)])
    record_order(actor=Actor(user=mina), unit=units["seoul-hotel"], customer=customer, lines=[LineInput(products["deluxe"].pk, 1)])

    body = mina_api.get(f"/api/v1/customers/{customer.pk}/orders").json()

    assert [row["unit"] for row in body["results"]] == ["seoul-hotel"]


def test_the_orders_of_a_customer_outside_the_scope_are_a_404(bora_api, make_customer):
    assert bora_api.get(f"/api/v1/customers/{make_customer('seoul-hotel').pk}/orders").status_code == 404


def test_the_order_list_runs_a_fixed_number_of_queries(units, bora, bora_api, products, make_customer,
                                                        django_assert_max_num_queries):
    customer = make_customer()

    def buy(times):
        for _ in range(times):
            record_order(actor=Actor(user=bora), unit=units["bakery"], customer=customer,
                         lines=[LineInput(products["croissant"].pk, 1), LineInput(products["baguette"].pk, 2)])

    buy(2)
    with django_assert_max_num_queries(6) as few:
        assert bora_api.get(f"/api/v1/customers/{customer.pk}/orders").status_code == 200
    buy(20)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = bora_api.get(f"/api/v1/customers/{customer.pk}/orders")
    assert response.json()["count"] == 22
