"""Schemathesis against the schema the app serves (/api/v1/openapi.json), in-process through the WSGI app.

Every operation gets generated requests (valid and invalid, derandomized so the run is the same each time, a few
examples per operation to stay within about a minute) sent with an admin's token over a small data set; each answer
must be no 5xx, carry a documented status code and content type, and match the documented response schema.
"""
from __future__ import annotations

import pytest
import schemathesis
from django.core.cache import cache
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from dangol.wsgi import application

from .conftest import token_key

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def api_data(alice, make_customer, products):
    """A few customers and orders so that generated ids sometimes hit real rows (ids 1–3)."""
    from dangol.core.audit import Actor
    from dangol.sales.services import LineInput, record_order

    for i, unit in enumerate(["bakery", "seoul-hotel", "bakery"]):
        customer = make_customer(unit, name=f"스키마{i}")
        product = products["croissant" if unit == "bakery" else "deluxe"]
        record_order(actor=Actor.system("test"), unit=customer.memberships.first().unit, customer=customer,
                     lines=[LineInput(product_id=product.pk, quantity=1)])
    cache.clear()
    return {"Authorization": f"Bearer {token_key(alice)}"}


@schema.parametrize()
@settings(max_examples=12, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_the_api_keeps_its_schema(case, api_data):
    case.call_and_validate(headers=api_data, checks=CHECKS)
