"""Shared set-up of the service tests: a customer of the bakery, a case opened at its counter, coupon templates for
goodwill, and row counts to prove that a refused write wrote nothing."""
from __future__ import annotations

import pytest
from django.apps import apps
from django.utils import translation

from dangol.core.audit import Actor
from dangol.core.models import Role
from dangol.core.services import create_staff_user
from dangol.loyalty.models import CouponKind, CouponTemplate
from dangol.service import services

from tests.helpers import PASSWORD


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


@pytest.fixture
def jun(units):
    """The bakery's manager (escalations go to him)."""
    return create_staff_user(username="jun", password=PASSWORD, role=Role.MANAGER, units=[units["bakery"]])


@pytest.fixture
def customer(make_customer):
    return make_customer("bakery", name="김하늘", phone="010-2222-3333")


@pytest.fixture
def case(bora, customer, units):
    return services.open_case(actor=Actor(user=bora), customer=customer, unit=units["bakery"], case_type="complaint",
                              channel="counter", subject="Stale bread", description="The baguette was stale.")


@pytest.fixture
def coupons(units):
    hotel = CouponTemplate.objects.create(name="Hotel late check-out", kind=CouponKind.GIFT, value=0)
    hotel.units.set([units["seoul-hotel"]])
    return {
        "small": CouponTemplate.objects.create(name="Sorry 5,000 KRW", kind=CouponKind.AMOUNT, value=5_000, valid_days=30),
        "big": CouponTemplate.objects.create(name="Sorry 50,000 KRW", kind=CouponKind.AMOUNT, value=50_000, valid_days=30),
        "hotel": hotel,
    }


COUNTED = ["service.Case", "service.CaseEntry", "service.Goodwill", "service.Trait", "service.SurveyInvitation",
           "service.SurveyResponse", "customers.Customer", "customers.Interaction", "loyalty.Coupon", "loyalty.LedgerEntry",
           "core.AuditEvent"]


@pytest.fixture
def row_counts():
    def counts() -> dict[str, int]:
        result = {label: apps.get_model(label).objects.count() for label in COUNTED}
        try:
            result["messaging.Message"] = apps.get_model("messaging.Message").objects.count()
        except LookupError:
            pass
        return result

    return counts
