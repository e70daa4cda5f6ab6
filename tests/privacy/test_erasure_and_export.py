"""Export and erasure round trips: everything about a customer comes out; after erasure nothing identifying is left in
the customers, sales, loyalty, ingest and privacy tables, and every aggregate is what it was."""
from __future__ import annotations

import json

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Count, Sum

from dangol.core import events
from dangol.core.models import AuditEvent
from dangol.customers.models import Customer, Interaction
from dangol.loyalty.models import LedgerEntry
from dangol.privacy import services as privacy
from dangol.privacy.erasure import ERASED_NAME_PREFIX, erase_customers
from dangol.privacy.export import build_export
from dangol.sales.models import Order, OrderLine

from .conftest import PII

SCANNED_APPS = ["customers", "sales", "loyalty", "ingest", "privacy"]


def pii_hits(needles: list[str]) -> list[str]:
    """Every (table.column) holding one of the needles, read straight from the database (ciphertext as stored)."""
    hits = []
    with connection.cursor() as cursor:
        for label in SCANNED_APPS:
            for model in apps.get_app_config(label).get_models():
                table = model._meta.db_table
                columns = [f.column for f in model._meta.concrete_fields
                           if f.get_internal_type() in ("CharField", "TextField", "JSONField", "SlugField", "EmailField")]
                for column in columns:
                    cursor.execute(f"SELECT {connection.ops.quote_name(column)} FROM {connection.ops.quote_name(table)}")
                    for (value,) in cursor.fetchall():
                        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                        for needle in needles:
                            if needle and needle in (text or ""):
                                hits.append(f"{table}.{column}: {needle}")
    return hits


def aggregates() -> dict:
    return {
        "orders": Order.objects.count(),
        "sales_by_unit": dict(Order.objects.values_list("unit__code").annotate(s=Sum("total")).values_list("unit__code", "s")),
        "lines": OrderLine.objects.aggregate(q=Sum("quantity"), t=Sum("line_total")),
        "points": LedgerEntry.objects.aggregate(p=Sum("points"), n=Count("id")),
        "customers": Customer.objects.count(),
        "orders_per_customer": sorted(Order.objects.values("customer_id").annotate(n=Count("id")).values_list("n", flat=True)),
    }


NEEDLES = [PII["name"], PII["phone_digits"], "+8210" + PII["phone_digits"], PII["email"], "gd.hong@example.com",
           PII["address"], PII["preference"], PII["note"], PII["sensitive"], PII["tag"], PII["member_id"], "길동"]


def test_the_export_holds_everything_and_round_trips_as_json(rich_customer):
    data = build_export(rich_customer)
    text = json.dumps(data, ensure_ascii=False)
    for needle in [PII["name"], PII["email"], PII["address"], PII["preference"], PII["note"], PII["sensitive"], PII["tag"],
                   PII["member_id"], "010-2468-1357"]:
        assert needle in text, needle
    assert json.loads(text) == data
    assert data["profile"]["id"] == rich_customer.pk
    assert len(data["orders"]) == 3 and {o["kind"] for o in data["orders"]} == {"Sale", "Refund"}
    assert data["loyalty"]["balance"] == sum(e["points"] for e in data["loyalty"]["ledger"]) > 0
    kinds = {c["kind"] for c in data["consents"]}
    assert {"Required: collection and use of personal data to serve the customer",
            "Optional: collection of further items (birthday, address…)", "Optional: advertising by channel"} <= kinds
    assert all(c["notice"] for c in data["consents"])
    # the merged duplicate's phone came over to the survivor
    assert {c["value"] for c in data["contacts"]} >= {"010-2468-1357", "010-2468-1358"}


def test_other_apps_add_their_sections_through_the_event(rich_customer):
    def add(*, customer, sections):
        sections["messages"] = [{"customer": customer.pk}]

    events.subscribe("customer_exported", add)
    try:
        assert build_export(rich_customer)["messages"] == [{"customer": rich_customer.pk}]
    finally:
        events._handlers["customer_exported"].remove(add)


def test_erasure_leaves_no_personal_data_and_the_aggregates_unchanged(rich_customer, system):
    assert pii_hits(NEEDLES)  # the scan sees them before
    before = aggregates()
    merged_ids = list(Customer.objects.filter(merged_into=rich_customer).values_list("pk", flat=True))
    erased, erased_at_once = [], []
    events.subscribe("customer_erased", lambda customer_id: erased.append(customer_id))
    events.subscribe("customers_erased", lambda customer_ids: erased_at_once.extend(customer_ids))
    try:
        result = privacy.erase_customer(actor=system, customer=rich_customer)
    finally:
        events._handlers["customer_erased"].pop()
        events._handlers["customers_erased"].pop()

    assert pii_hits(NEEDLES) == []
    assert aggregates() == before
    assert sorted(erased) == sorted([rich_customer.pk, *merged_ids]) and result.customers == 1 + len(merged_ids)
    assert sorted(erased_at_once) == sorted(erased)
    rich_customer.refresh_from_db()
    assert rich_customer.name == f"{ERASED_NAME_PREFIX}{rich_customer.pk}" == f"삭제된 고객 #{rich_customer.pk}"
    assert rich_customer.erased_at and rich_customer.processing_suspended and rich_customer.gender == ""
    for related in ("contacts", "addresses", "anniversaries", "preferences", "tags"):
        assert not getattr(rich_customer, related).exists(), related
    assert not Interaction.objects.filter(customer=rich_customer, kind__in=["note", "visit"]).exists()
    assert Interaction.objects.filter(customer=rich_customer, kind="purchase").count() == 2  # the timeline of orders stays
    assert Order.objects.filter(customer=rich_customer).count() == before["orders"]
    event = AuditEvent.objects.filter(action="privacy.erase", object_id=str(rich_customer.pk)).get()
    assert "name" in event.fields and PII["name"] not in json.dumps(event.fields, ensure_ascii=False)


def test_an_erased_customer_cannot_be_erased_twice_and_nothing_changes(rich_customer, system):
    privacy.erase_customer(actor=system, customer=rich_customer)
    rich_customer.refresh_from_db()
    count = AuditEvent.objects.count()
    with pytest.raises(ValidationError):
        privacy.erase_customer(actor=system, customer=rich_customer)
    assert erase_customers(ids=[rich_customer.pk], actor=system).customers == 0
    assert AuditEvent.objects.count() == count


def test_a_failing_subscriber_rolls_the_erasure_back(rich_customer, system):
    def broken(customer_id):
        raise RuntimeError("scrubber failed")

    events.subscribe("customer_erased", broken)
    try:
        with pytest.raises(RuntimeError):
            privacy.erase_customer(actor=system, customer=rich_customer)
    finally:
        events._handlers["customer_erased"].remove(broken)
    rich_customer.refresh_from_db()
    assert rich_customer.name == PII["name"] and rich_customer.erased_at is None
    assert rich_customer.contacts.exists()


def test_erasure_is_set_based_for_many_customers(make_customer, system, django_assert_max_num_queries, monkeypatch):
    ids = [make_customer("bakery", name=f"고객{i:03d}").pk for i in range(60)]
    # Only this app's statements are counted: other apps' scrubbers subscribe per customer.
    monkeypatch.setitem(events._handlers, "customer_erased", [])
    with django_assert_max_num_queries(40):  # a fixed number of statements, not one round per customer
        result = erase_customers(ids=ids, actor=system)
    assert result.customers == 60
    assert Customer.objects.filter(pk__in=ids, erased_at__isnull=False).count() == 60
    assert not Customer.objects.filter(pk__in=ids, name__startswith="고객").exists()
    assert AuditEvent.objects.filter(action="privacy.erase").count() == 60
