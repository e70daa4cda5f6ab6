"""API clients for the personas, each authenticated with its own Bearer token."""
from __future__ import annotations

import pytest
from django.apps import apps
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


def token_key(user) -> str:
    return Token.objects.get_or_create(user=user)[0].key


def bearer_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_key(user)}")
    return client


@pytest.fixture
def alice_api(alice):
    return bearer_client(alice)


@pytest.fixture
def mina_api(mina):
    return bearer_client(mina)


@pytest.fixture
def bora_api(bora):
    return bearer_client(bora)


COUNTED_MODELS = [
    "customers.Customer", "customers.ContactPoint", "customers.Consent", "customers.Anniversary", "customers.Address",
    "customers.Membership", "customers.Tag", "customers.Interaction", "sales.Order", "sales.OrderLine", "core.AuditEvent",
]


@pytest.fixture
def row_counts():
    """row_counts() → the number of rows of every table an API write may touch, to prove a failure wrote nothing."""

    def counts() -> dict[str, int]:
        return {label: apps.get_model(label).objects.count() for label in COUNTED_MODELS}

    return counts
