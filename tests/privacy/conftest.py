"""Privacy tests: a customer with something of every kind of personal data, written through the real services."""
from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone, translation

from dangol.core.audit import Actor
from dangol.customers import services as customer_services
from dangol.customers.services import DateParts
from dangol.sales.services import LineInput, record_order

PII = {
    "name": "홍길동",
    "phone": "010-2468-1357",
    "phone_digits": "24681357",
    "email": "gildong.hong@example.com",
    "address": "세종대로 110 비밀아파트 101동",
    "preference": "창가 자리 선호 홍길동님",
    "note": "홍길동 고객 배우자 이름은 성춘향",
    "sensitive": "당뇨가 있어 설탕 없는 케이크",
    "tag": "홍길동VIP",
    "member_id": "M-HGD-0001",
}


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


@pytest.fixture
def system():
    return Actor.system("test")


@pytest.fixture
def buy(units, products):
    def purchase(customer, product: str = "croissant", quantity: int = 1, *, at: dt.datetime | None = None):
        item = products[product]
        return record_order(actor=Actor.system("test"), unit=item.unit, customer=customer,
                            lines=[LineInput(product_id=item.pk, quantity=quantity)], at=at or timezone.now())

    return purchase


@pytest.fixture
def rich_customer(make_customer, units, buy, alice, system):
    """홍길동 at the bakery with contacts, address, birthday, tags, preference, notes (one sensitive), consents of every
    kind, two orders (one refunded), points with a manual adjustment, a unit id and a merged duplicate record."""
    from dangol.ingest.merge import merge_customers
    from dangol.ingest.models import SourceRecord
    from dangol.loyalty import services as loyalty_services
    from dangol.loyalty.models import EarnRule, Program
    from dangol.privacy import services as privacy
    from dangol.sales.services import record_refund

    Program.current()
    EarnRule.objects.get_or_create(unit=units["bakery"], defaults={"rate_bp": 100})
    customer = make_customer(
        "bakery", name=PII["name"], phone=PII["phone"], email=PII["email"], sido="서울", sigungu="중구",
        address_line=PII["address"], postal_code="04524", birthday=DateParts(year=1980, month=3, day=1),
        tags=[PII["tag"]], consents=[("sms", "marketing", True), ("email", "marketing", True)],
    )
    customer_services.add_preference(actor=system, customer=customer, unit=units["bakery"], topic="좌석", value=PII["preference"])
    customer_services.add_note(actor=system, customer=customer, unit=units["bakery"], text=PII["note"])
    customer_services.add_note(actor=system, customer=customer, unit=units["bakery"], text=PII["sensitive"], sensitive=True)
    privacy.record_consent(actor=system, customer=customer, kind="required", granted=True, source="store")
    privacy.record_consent(actor=system, customer=customer, kind="optional", granted=True, source="store")
    buy(customer, "croissant", 2)
    sale = buy(customer, "baguette", 1)
    record_refund(actor=system, order=sale)
    loyalty_services.adjust_points(actor=Actor(user=alice, via="test"), customer=customer, points=500,
                                   reason=f"{PII['name']} 생일 보너스", unit=units["bakery"])
    SourceRecord.objects.create(unit=units["bakery"], source_id=PII["member_id"], customer=customer, row_hash="a" * 32)
    duplicate = make_customer("seoul-hotel", name=PII["name"], phone="010-2468-1358", email="gd.hong@example.com")
    merge_customers(actor=system, survivor=customer, merged=duplicate)
    customer.refresh_from_db()
    return customer
