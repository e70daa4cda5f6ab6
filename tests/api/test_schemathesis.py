"""Schemathesis against the schema the app serves (/api/v1/openapi.json), in-process through the WSGI app.

Every operation gets generated requests (valid and invalid, derandomized so the run is the same each time, a few
examples per operation to stay within about a minute) sent with an admin's token over a small data set; each answer
must be no 5xx, carry a documented status code and content type, and match the documented response schema.
"""
from __future__ import annotations

import pytest
import schemathesis
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
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


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """The WSGI app closes the database connection after each request (request_finished → close_old_connections),
    which would end the test's transaction on PostgreSQL; Django's own test client switches that off the same way."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


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
