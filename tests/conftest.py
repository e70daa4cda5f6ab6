"""Shared personas and factories. Personas: ``alice`` (admin, whole group), ``mina`` (manager of the Seoul hotel),
``bora`` (staff at the bakery)."""
from __future__ import annotations

import itertools

import pytest
from django.utils import timezone

from dangol.core.audit import Actor
from dangol.core.models import BusinessUnit, Role
from dangol.core.services import create_staff_user
from dangol.customers.services import ConsentInput, CustomerInput, create_customer
from dangol.sales.models import Category, Product

from tests.helpers import PASSWORD


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def units(db):
    specs = [("seoul-hotel", "한빛호텔 서울", "hotel"), ("busan-hotel", "한빛호텔 부산", "hotel"),
             ("bakery", "한빛 베이커리", "bakery"), ("restaurant", "한빛 레스토랑", "restaurant")]
    return {code: BusinessUnit.objects.create(code=code, name=name, kind=kind) for code, name, kind in specs}


@pytest.fixture
def alice(units):
    return create_staff_user(username="alice", password=PASSWORD, role=Role.ADMIN)


@pytest.fixture
def mina(units):
    return create_staff_user(username="mina", password=PASSWORD, role=Role.MANAGER, units=[units["seoul-hotel"]])


@pytest.fixture
def bora(units):
    return create_staff_user(username="bora", password=PASSWORD, role=Role.STAFF, units=[units["bakery"]])


@pytest.fixture
def products(units):
    bread = Category.objects.create(name="빵", unit=units["bakery"])
    rooms = Category.objects.create(name="객실", unit=units["seoul-hotel"])
    return {
        "croissant": Product.objects.create(unit=units["bakery"], category=bread, sku="B-001", name="크루아상", price=4500, unit_cost=1500),
        "baguette": Product.objects.create(unit=units["bakery"], category=bread, sku="B-002", name="바게트", price=5000, unit_cost=1800),
        "deluxe": Product.objects.create(unit=units["seoul-hotel"], category=rooms, sku="R-DLX", name="디럭스 룸", price=250000, unit_cost=90000),
    }


_phone_seq = itertools.count(1000)


@pytest.fixture
def make_customer(units):
    """make_customer(unit_code="bakery", name=..., phone=..., **fields) through the real service."""

    def make(unit_code: str = "bakery", *, name: str = "김하늘", phone: str | None = None, consents=(), **fields):
        data = CustomerInput(name=name, phone=phone if phone is not None else f"010-5555-{next(_phone_seq):04d}", **fields)
        return create_customer(actor=Actor.system("test"), unit=units[unit_code], data=data,
                               consents=[ConsentInput(*c) for c in consents], joined_at=timezone.now())

    return make
