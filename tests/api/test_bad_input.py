"""A corpus of bad input for every endpoint of the served schema: oversized bodies, bodies that are not JSON or not
an object, wrong types, unknown fields, Unicode edge cases and injection strings. Each must be answered with a clear
4xx in the API's error shape, and change nothing in the database.

Operations are read from /api/v1/openapi.json, so endpoints added later are covered. Where a valid body is known
(``valid_bodies``), each field is spoiled in turn on top of it, so the bad value reaches the service and not only the
"required" check.
"""
from __future__ import annotations

import json
import re

import pytest
from django.apps import apps
from django.core.cache import cache
from django.test import Client

from dangol.core.audit import Actor
from dangol.loyalty import services as loyalty_services

from .conftest import COUNTED_MODELS, token_key

SCHEMA = json.loads(Client().get("/api/v1/openapi.json").content)
EXTRA_MODELS = ["api.IdempotencyRecord", "api.WebhookDelivery", "loyalty.PointsEntry", "loyalty.Coupon"]

INJECTIONS = ["'; DROP TABLE customers_customer; --", "\" OR 1=1 --", "<script>alert(1)</script>", "{{7*7}}",
              "${jndi:ldap://x}", "../../../../etc/passwd", "%s%s%n", "\\x00", "1e309", "$where"]
UNICODE_EDGES = ["\u0000", "a\u0000b", "\ud800", "\udfff lone"]  # NUL, lone surrogates: never storable
WRONG_TYPES = {
    "string": [{"$ne": 1}, ["a", "b"]],
    "integer": ["12abc", 1.5, 2**70, -(2**70), {"n": 1}, [1], True],
    "number": ["many", {"n": 1}],
    "boolean": ["maybe", 2, {"b": True}],
    "array": ["not a list", {"a": 1}, 7],
    "object": ["not an object", [1, 2], 7],
}


def operations_with_body():
    for path, item in SCHEMA["paths"].items():
        for method, op in item.items():
            if method in ("post", "put", "patch") and op.get("security"):
                yield pytest.param(method, path, op, id=f"{method.upper()} {path}")


def resolve(schema: dict) -> dict:
    while "$ref" in schema:
        schema = SCHEMA["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return resolve(schema["allOf"][0])
    return schema


def body_schema(op) -> dict:
    content = (op.get("requestBody") or {}).get("content", {}).get("application/json")
    return resolve(content["schema"]) if content else {}


def type_of(prop: dict) -> str:
    prop = resolve(prop)
    if "enum" in prop or any("enum" in resolve(p) for p in prop.get("oneOf", []) + prop.get("allOf", [])):
        return "enum"
    return prop.get("type", "string" if "oneOf" in prop else "object")


@pytest.fixture
def world(alice, units, make_customer, products):
    cache.clear()
    customer = make_customer("bakery", name="입력검사")
    loyalty_services.adjust_points(actor=Actor(user=alice), customer=customer, points=5000, reason="test", unit=units["bakery"])
    return {"customer": customer, "products": products, "units": units,
            "client": Client(HTTP_AUTHORIZATION=f"Bearer {token_key(alice)}", HTTP_ACCEPT_LANGUAGE="en")}


def valid_bodies(world) -> dict[str, dict]:
    """Valid bodies of the endpoints whose rules this test knows; keyed by the path template."""
    customer, products = world["customer"], world["products"]
    return {
        "/api/v1/customers": {"unit": "bakery", "name": "새고객", "phone": "010-4444-5555", "email": "new@example.com",
                              "consents": [{"channel": "sms", "purpose": "marketing", "granted": True}],
                              "consent_method": "form"},
        "/api/v1/customers/{id}": {"name": "바뀐이름", "email": "changed@example.com"},
        "/api/v1/orders": {"unit": "bakery", "customer": customer.pk, "external_ref": "R-1",
                           "lines": [{"product": products["croissant"].pk, "quantity": 1}]},
        "/api/v1/customers/{id}/points/redeem": {"points": 100, "unit": "bakery", "note": "till"},
        "/api/v1/customers/{id}/points/adjust": {"points": 100, "reason": "correction", "unit": "bakery"},
        "/api/v1/customers/{id}/referral": {"code": "NOSUCHCODE"},
        "/api/v1/loyalty/members/lookup": {"member_number": "0000000000", "unit": "bakery"},
    }


def url_of(path: str, world) -> str:
    return re.sub(r"\{[^}]+\}", str(world["customer"].pk), path)


def counts() -> dict[str, int]:
    labels = COUNTED_MODELS + [m for m in EXTRA_MODELS if apps.is_installed(m.split(".")[0]) or True]
    result = {}
    for label in labels:
        try:
            result[label] = apps.get_model(label).objects.count()
        except LookupError:
            continue
    return result


def send(client, method: str, url: str, body, *, raw: bool = False, content_type="application/json"):
    data = body if raw else json.dumps(body, ensure_ascii=True)
    return getattr(client, method)(url, data, content_type=content_type)


def assert_clear_4xx(response, what: str):
    assert 400 <= response.status_code < 500, f"{what} → {response.status_code} {response.content[:300]!r}"
    payload = response.json()
    assert set(payload) >= {"detail", "code", "errors"}, f"{what}: not the error shape: {payload}"
    assert payload["detail"] and isinstance(payload["errors"], dict)


def corpus(op: dict, base: dict | None):
    """(description, body, raw?, content type) of every bad request for one operation."""
    yield "an oversized body", '{"name": "' + "가" * 1_500_000 + '"}', True, "application/json"
    yield "malformed JSON", '{"name": "unterminated', True, "application/json"
    yield "NaN", '{"points": NaN}', True, "application/json"
    yield "form data", "name=x&unit=bakery", True, "application/x-www-form-urlencoded"
    for not_object in ([], "text", 42, None):
        yield f"a JSON {type(not_object).__name__} instead of an object", not_object, False, "application/json"
    start = dict(base or {})
    yield "an unknown field", {**start, "is_admin": True, "__proto__": {"x": 1}}, False, "application/json"
    schema = body_schema(op)
    for name, prop in schema.get("properties", {}).items():
        if resolve(prop).get("readOnly"):
            continue
        kind = type_of(prop)
        values = list(WRONG_TYPES.get(kind, []))
        if kind in ("string", "enum"):
            values += UNICODE_EDGES
            spec = resolve(prop)
            if kind == "enum" or spec.get("format") in ("date", "date-time", "email", "uri", "uuid") or spec.get("pattern"):
                values += INJECTIONS
            if spec.get("maxLength"):
                values.append("x" * (spec["maxLength"] + 1))
        for value in values:
            yield f"{name}={value!r:.40}", {**start, name: value}, False, "application/json"


def _params():
    for param in operations_with_body():
        yield param


@pytest.mark.parametrize("method, path, op", list(_params()))
def test_bad_input_is_a_clear_4xx_and_changes_nothing(world, method, path, op):
    client = world["client"]
    url = url_of(path, world)
    base = valid_bodies(world).get(path)
    before = counts()
    failures = []
    for what, body, raw, content_type in corpus(op, base):
        response = send(client, method, url, body, raw=raw, content_type=content_type)
        try:
            assert_clear_4xx(response, what)
            after = counts()
            assert after == before, f"{what}: rows changed {[(k, before[k], after[k]) for k in after if after[k] != before[k]]}"
        except AssertionError as error:
            failures.append(str(error))
            before = counts()
    assert not failures, f"{method.upper()} {path}:\n" + "\n".join(failures)


def test_the_known_bodies_are_valid(world):
    """The corpus spoils valid bodies: prove they are valid (and the database does change for them)."""
    client = world["client"]
    for path, body in valid_bodies(world).items():
        method = "patch" if path == "/api/v1/customers/{id}" else "post"
        response = send(client, method, url_of(path, world), body)
        assert response.status_code < 500, (path, response.status_code)
        if path not in ("/api/v1/customers/{id}/referral", "/api/v1/loyalty/members/lookup"):
            assert response.status_code in (200, 201), (path, response.status_code, response.content[:300])


@pytest.mark.parametrize("params", [
    {"limit": "-1"}, {"limit": "abc"}, {"offset": "-5"}, {"cursor": "\u0000"}, {"cursor": "' OR 1=1"},
    {"stage": "<script>"}, {"unit": "../../etc"}, {"phone": "'; DROP TABLE x; --"}, "q=%ED%A0%80&stage=%FF", {"last4": "12a4"},
    {"tag": "x" * 5000}, {"q": "%" * 300},
])
def test_bad_query_parameters_are_never_a_5xx(world, params):
    if isinstance(params, str):  # bytes that are not UTF-8, sent as they are
        response = world["client"].get("/api/v1/customers?" + params)
    else:
        response = world["client"].get("/api/v1/customers", params)
    assert response.status_code < 500
    if response.status_code >= 400:
        assert set(response.json()) >= {"detail", "code", "errors"}
