"""Integration tokens (scopes, units, shown once, revocation), idempotency keys, cursor pagination and rate limits."""
from __future__ import annotations

import io
import re
import threading

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection
from rest_framework.test import APIClient

from dangol.api import tokens
from dangol.api.models import ApiToken, IdempotencyRecord
from dangol.core.audit import Actor
from dangol.core.models import AuditEvent, Role
from dangol.sales.models import Order

from .conftest import bearer_client

ALL_READ_WRITE = ["customers:write", "orders:write", "points:write", "coupons:write", "consents:write"]


def integration_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.fixture
def pos_token(units):
    return tokens.create_token(actor=Actor.system("test"), name="bakery POS", scopes=["customers:read", "orders:write"],
                               units=[units["bakery"]])


@pytest.fixture
def pos(pos_token):
    return integration_client(pos_token.key)


@pytest.fixture(autouse=True)
def _clear_throttle_cache():
    cache.clear()
    yield
    cache.clear()


def sale(customer, products, **extra):
    return {"unit": "bakery", "customer": customer.pk, "lines": [{"product": products["croissant"].pk, "quantity": 2}], **extra}


# --- tokens

def test_it_stores_only_a_hash_and_shows_the_token_once(pos_token):
    token = ApiToken.objects.get(name="bakery POS")

    assert pos_token.key.startswith("dgl_") and len(pos_token.key) > 40
    assert token.key_hash != pos_token.key and pos_token.key not in str(token.__dict__)
    assert token.prefix == pos_token.key[:12]
    assert AuditEvent.objects.filter(action="api_token.create", object_id=str(token.pk)).exists()


def test_an_integration_token_reads_only_its_units(pos, make_customer):
    mine = make_customer("bakery", name="빵집고객")
    other = make_customer("seoul-hotel", name="호텔고객")

    listed = pos.get("/api/v1/customers").json()["results"]

    assert [row["id"] for row in listed] == [mine.pk]
    assert pos.get(f"/api/v1/customers/{other.pk}").status_code == 404


def test_a_scope_missing_is_a_403_naming_it(pos, make_customer):
    customer = make_customer("bakery")

    response = pos.patch(f"/api/v1/customers/{customer.pk}", {"name": "새이름"}, format="json", HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied" and "customers:write" in response.json()["detail"]
    assert pos.get(f"/api/v1/customers/{customer.pk}/points").status_code == 403


def test_write_scope_implies_read_of_the_same_resource(pos, make_customer, products):
    customer = make_customer("bakery")
    assert pos.post("/api/v1/orders", sale(customer, products), format="json").status_code == 201
    assert pos.get(f"/api/v1/customers/{customer.pk}/orders").status_code == 200


def test_a_unit_outside_the_token_is_refused(pos, make_customer, products):
    customer = make_customer("bakery")

    response = pos.post("/api/v1/orders", sale(customer, products, unit="seoul-hotel"), format="json")

    assert response.status_code == 403


def test_a_revoked_or_expired_token_is_refused(pos_token, pos):
    assert pos.get("/api/v1/customers").status_code == 200
    tokens.revoke_token(actor=Actor.system("test"), token=pos_token.token)

    assert pos.get("/api/v1/customers").status_code == 401


def test_an_expired_token_is_refused(units):
    from django.utils import timezone

    created = tokens.create_token(actor=Actor.system("test"), name="old", scopes=["customers:read"], units=[units["bakery"]],
                                  expires_at=timezone.now())
    assert integration_client(created.key).get("/api/v1/customers").status_code == 401


@pytest.mark.parametrize("kwargs, field", [
    ({"name": "", "scopes": ["customers:read"]}, "name"),
    ({"name": "x", "scopes": ["customers:delete"]}, "scopes"),
    ({"name": "x", "scopes": []}, "scopes"),
    ({"name": "x", "scopes": ["customers:read"], "rate": "lots"}, "rate"),
])
def test_bad_token_definitions_are_refused(units, kwargs, field):
    with pytest.raises(ValidationError) as error:
        tokens.create_token(actor=Actor.system("test"), units=[units["bakery"]], **kwargs)
    assert field in error.value.message_dict


def test_a_staff_token_gets_masked_contacts_and_a_manager_token_full_ones(units, make_customer):
    customer = make_customer("bakery", phone="010-2222-3456")
    staff = tokens.create_token(actor=Actor.system("t"), name="s", scopes=["customers:read"], units=[units["bakery"]])
    manager = tokens.create_token(actor=Actor.system("t"), name="m", scopes=["customers:read"], units=[units["bakery"]],
                                  role=Role.MANAGER)

    masked = integration_client(staff.key).get(f"/api/v1/customers/{customer.pk}").json()
    full = integration_client(manager.key).get(f"/api/v1/customers/{customer.pk}").json()

    hidden = ("010-2222", "01022223456", "+821022223456")  # a bare "2222" could be a timestamp's microseconds
    assert "3456" in str(masked) and not any(form in str(masked) for form in hidden)
    assert "2222" in str(full)


def test_the_old_per_user_tokens_keep_working_with_every_scope(bora_api, make_customer):
    customer = make_customer("bakery")
    assert bora_api.get(f"/api/v1/customers/{customer.pk}/points").status_code == 200


def test_the_command_creates_lists_and_revokes_integration_tokens(units):
    out = io.StringIO()
    call_command("token", "create", "--integration", "web shop", "--unit", "bakery", "--scope", "customers:read", stdout=out)
    key = out.getvalue().strip().splitlines()[-1]
    assert integration_client(key).get("/api/v1/customers").status_code == 200

    listing = io.StringIO()
    call_command("token", "list", stdout=listing)
    assert "web shop" in listing.getvalue() and key not in listing.getvalue()

    call_command("token", "revoke", "web shop", stdout=io.StringIO())
    assert integration_client(key).get("/api/v1/customers").status_code == 401


# --- idempotency

def test_a_retried_order_with_the_same_key_is_booked_once(pos, make_customer, products):
    customer = make_customer("bakery")
    body = sale(customer, products)

    first = pos.post("/api/v1/orders", body, format="json", HTTP_IDEMPOTENCY_KEY="pos-1-receipt-77")
    again = pos.post("/api/v1/orders", body, format="json", HTTP_IDEMPOTENCY_KEY="pos-1-receipt-77")

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert Order.objects.filter(customer=customer).count() == 1


def test_the_same_key_with_another_body_is_a_422_and_books_nothing(pos, make_customer, products):
    customer = make_customer("bakery")
    pos.post("/api/v1/orders", sale(customer, products), format="json", HTTP_IDEMPOTENCY_KEY="k1")

    other = sale(customer, products)
    other["lines"][0]["quantity"] = 5
    response = pos.post("/api/v1/orders", other, format="json", HTTP_IDEMPOTENCY_KEY="k1")

    assert response.status_code == 422 and response.json()["code"] == "idempotency_key_reused"
    assert Order.objects.filter(customer=customer).count() == 1


def test_keys_are_kept_per_token(units, pos, make_customer, products):
    customer = make_customer("bakery")
    other = tokens.create_token(actor=Actor.system("t"), name="till 2", scopes=["orders:write"], units=[units["bakery"]])

    pos.post("/api/v1/orders", sale(customer, products), format="json", HTTP_IDEMPOTENCY_KEY="same")
    integration_client(other.key).post("/api/v1/orders", sale(customer, products), format="json", HTTP_IDEMPOTENCY_KEY="same")

    assert Order.objects.filter(customer=customer).count() == 2


def test_a_validation_error_is_replayed_too_and_writes_nothing(pos, make_customer):
    customer = make_customer("bakery")
    body = {"unit": "bakery", "customer": customer.pk, "lines": []}

    first = pos.post("/api/v1/orders", body, format="json", HTTP_IDEMPOTENCY_KEY="bad")
    again = pos.post("/api/v1/orders", body, format="json", HTTP_IDEMPOTENCY_KEY="bad")

    assert first.status_code == again.status_code == 400 and again.json() == first.json()
    assert not Order.objects.exists()


def test_a_redemption_retried_with_the_header_spends_points_once(units, alice, make_customer):
    from dangol.loyalty import services as loyalty_services

    customer = make_customer("bakery")
    loyalty_services.adjust_points(actor=Actor(user=alice), customer=customer, points=1000, reason="test", unit=units["bakery"])
    till = tokens.create_token(actor=Actor.system("t"), name="till", scopes=["points:write"], units=[units["bakery"]])
    client = integration_client(till.key)

    for _ in range(3):
        response = client.post(f"/api/v1/customers/{customer.pk}/points/redeem", {"points": 300, "unit": "bakery"},
                               format="json", HTTP_IDEMPOTENCY_KEY="redeem-1")
        assert response.status_code == 201

    assert client.get(f"/api/v1/customers/{customer.pk}/points").json()["balance"] == 700


@pytest.mark.parametrize("key", ["", " ", "x" * 256, "tab\there"])
def test_a_malformed_key_is_a_400(pos, make_customer, products, key):
    customer = make_customer("bakery")
    response = pos.post("/api/v1/orders", sale(customer, products), format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 400 and "Idempotency-Key" in response.json()["errors"]
    assert not Order.objects.exists()


def test_a_key_in_use_by_a_running_request_is_a_409(pos, pos_token, make_customer, products):
    customer = make_customer("bakery")
    IdempotencyRecord.objects.create(owner=f"token:{pos_token.token.pk}", key="busy", fingerprint="x" * 64)

    response = pos.post("/api/v1/orders", sale(customer, products), format="json", HTTP_IDEMPOTENCY_KEY="busy")

    # a different fingerprint is reported first; the same request while running gives 409
    assert response.status_code in (409, 422)
    assert not Order.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_book_one_order(units, products):
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL")
    from dangol.customers.services import CustomerInput, create_customer

    customer = create_customer(actor=Actor.system("t"), unit=units["bakery"], data=CustomerInput(name="동시", phone="010-7777-0001"))
    created = tokens.create_token(actor=Actor.system("t"), name="racer", scopes=["orders:write"], units=[units["bakery"]])
    statuses = []

    def post():
        response = integration_client(created.key).post("/api/v1/orders", sale(customer, products), format="json",
                                                         HTTP_IDEMPOTENCY_KEY="race")
        statuses.append(response.status_code)
        connection.close()

    threads = [threading.Thread(target=post) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert Order.objects.filter(customer=customer).count() == 1
    assert set(statuses) <= {201, 409}


# --- pagination

def test_cursor_pages_walk_every_row_once_even_when_rows_are_added(bora_api, make_customer):
    for i in range(7):
        make_customer("bakery", name=f"손님{i}")
    seen, cursor = [], ""
    for _ in range(10):
        page = bora_api.get("/api/v1/customers", {"cursor": cursor, "limit": 3}).json()
        assert "count" not in page
        seen += [row["id"] for row in page["results"]]
        if len(seen) == 3:
            make_customer("bakery", name="새손님")  # newer: before the cursor, not repeated nor skipped
        cursor = page["next_cursor"]
        if not cursor:
            assert page["next"] is None
            break
    assert len(seen) == 7 == len(set(seen))


def test_offset_pages_carry_a_cursor_to_continue(bora_api, make_customer):
    for i in range(4):
        make_customer("bakery", name=f"손님{i}")
    first = bora_api.get("/api/v1/customers", {"limit": 2}).json()
    rest = bora_api.get("/api/v1/customers", {"cursor": first["next_cursor"], "limit": 10}).json()

    assert first["count"] == 4
    assert [r["id"] for r in first["results"]] + [r["id"] for r in rest["results"]] == \
        [r["id"] for r in bora_api.get("/api/v1/customers").json()["results"]]


@pytest.mark.parametrize("cursor", ["garbage", "W10", "WzEsMiwzLDRd", "%%%"])
def test_a_bad_cursor_is_a_400(bora_api, make_customer, cursor):
    make_customer("bakery")
    response = bora_api.get("/api/v1/customers", {"cursor": cursor})
    assert response.status_code == 400 and "cursor" in response.json()["errors"]


# --- rate limits

def test_a_token_over_its_rate_gets_429_with_retry_after(units):
    created = tokens.create_token(actor=Actor.system("t"), name="slow", scopes=["customers:read"], units=[units["bakery"]],
                                  rate="3/min")
    client = integration_client(created.key)

    codes = [client.get("/api/v1/customers").status_code for _ in range(5)]

    assert codes == [200, 200, 200, 429, 429]
    response = client.get("/api/v1/customers")
    assert response.json()["code"] == "throttled" and int(response["Retry-After"]) > 0


def test_each_token_has_its_own_bucket(units):
    a = tokens.create_token(actor=Actor.system("t"), name="a", scopes=["customers:read"], units=[units["bakery"]], rate="1/min")
    b = tokens.create_token(actor=Actor.system("t"), name="b", scopes=["customers:read"], units=[units["bakery"]], rate="1/min")

    assert integration_client(a.key).get("/api/v1/customers").status_code == 200
    assert integration_client(a.key).get("/api/v1/customers").status_code == 429
    assert integration_client(b.key).get("/api/v1/customers").status_code == 200


def test_per_user_tokens_follow_the_default_rate(settings, bora):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "token": "2/min"}}
    client = bearer_client(bora)
    assert [client.get("/api/v1/customers").status_code for _ in range(3)] == [200, 200, 429]


# --- the admin pages of integrations

def test_an_admin_creates_a_token_in_the_admin_and_sees_it_once(client, alice, units):
    client.force_login(alice)

    response = client.post("/admin/api/apitoken/add/", {
        "name": "kiosk", "role": "staff", "scopes": ["customers:read", "orders:write"], "units": [units["bakery"].pk],
        "rate": "", "expires_at": "",
    }, follow=True)

    assert response.status_code == 200
    shown = re.findall(r"dgl_[A-Za-z0-9_\-]{20,}", response.content.decode())
    assert len(shown) == 1
    token = ApiToken.objects.get(name="kiosk")
    assert token.scopes == ["customers:read", "orders:write"] and token.user.units.get() == units["bakery"]
    assert integration_client(shown[0]).get("/api/v1/customers").status_code == 200
    assert shown[0] not in client.get(f"/admin/api/apitoken/{token.pk}/change/").content.decode()


def test_an_admin_adds_a_webhook_endpoint_with_a_generated_secret(client, alice):
    from dangol.api.models import WebhookEndpoint

    client.force_login(alice)
    response = client.post("/admin/api/webhookendpoint/add/", {
        "name": "ERP", "url": "https://erp.example.kr/hooks", "event_types": ["order_recorded", "tier_changed"],
        "is_active": "on",
    })

    assert response.status_code == 302
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret.startswith("whsec_") and endpoint.event_types == ["order_recorded", "tier_changed"]


def test_an_error_quoting_a_nul_character_is_stored_and_replayed(pos, make_customer):
    """Found by Schemathesis on PostgreSQL: jsonb refuses NUL, and the 400 names the unknown field that holds one."""
    body = {"unit": "bakery", "customer": make_customer("bakery").pk, "lines": [], "bad\u0000key": 1}

    first = pos.post("/api/v1/orders", body, format="json", HTTP_IDEMPOTENCY_KEY="nul")
    again = pos.post("/api/v1/orders", body, format="json", HTTP_IDEMPOTENCY_KEY="nul")

    assert first.status_code == again.status_code == 400
    assert again["Idempotent-Replayed"] == "true"
