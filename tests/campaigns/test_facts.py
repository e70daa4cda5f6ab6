"""Segment facts: the one-row-per-customer table that live counts read must give the same answer as the rules over the
source tables — for every rule it answers, and after every kind of change (the triggers mark, the refresh follows)."""
from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from dangol.analytics.models import CustomerMetrics
from dangol.analytics.services import refresh_metrics
from dangol.campaigns import facts, rules, selectors
from dangol.campaigns.models import CustomerFacts, FactsDirty
from dangol.core.audit import Actor
from dangol.customers.models import Address, Anniversary, Customer, Membership
from dangol.customers.services import CustomerInput, DateParts, update_customer
from dangol.ingest.merge import merge_customers, unmerge
from dangol.privacy.services import erase_customer
from dangol.sales.models import Order
from dangol.sales.services import record_refund

from .conftest import set_metrics

pytestmark = pytest.mark.django_db


def one(field, operator, value, **extra):
    return {"op": "and", "rules": [{"field": field, "operator": operator, "value": value, **extra}]}


def exact(tree, *, unit=None, user=None):
    qs = selectors.customers_matching(rules.clean_tree(tree), unit=unit, user=user)
    return sorted(qs.values_list("name", flat=True))


def fast(tree, *, unit=None, user=None):
    qs = selectors._facts_matching(rules.clean_tree(tree), unit=unit, user=user, now=None)
    assert qs is not None, "this tree should be answered from the facts"
    return sorted(Customer.objects.filter(pk__in=qs.values("customer_id")).values_list("name", flat=True))


COVERED = [
    ("age", "gte", 60, {}), ("age", "lte", 40, {}), ("age", "gte", 36, {}), ("age", "lte", 85, {}),
    ("gender", "in", ["F"], {}), ("gender", "not_in", ["F"], {}),
    ("sido", "in", ["서울특별시"], {}), ("sido", "not_in", ["서울특별시"], {}),
    ("sigungu", "in", ["강남구", "해운대구"], {}), ("sigungu", "not_in", ["강남구"], {}),
    ("stage", "in", ["regular"], {}), ("stage", "not_in", ["regular", "prospect"], {}),
    ("joined_days", "lte", 1, {}), ("joined_days", "gte", 30, {}),
    ("member_of", "in", ["bakery"], {}), ("member_of", "not_in", ["bakery"], {}),
    ("member_of", "in", ["busan-hotel"], {}),
    ("days_since_purchase", "gte", 90, {}), ("days_since_purchase", "lte", 30, {}),
    ("days_since_purchase", "gte", 0, {}), ("days_since_purchase", "lte", 0, {}),
    ("rfm_segment", "in", ["at_risk"], {}), ("rfm_segment", "not_in", ["at_risk"], {}),
    ("clv_12m", "gte", 500_000, {}), ("clv_12m", "lte", 500_000, {}),
    ("p_alive", "gte", "0.9", {}), ("p_alive", "lte", "0.5", {}),
    ("churn_risk", "gte", 0.5, {}), ("churn_risk", "lte", 0.5, {}),
    ("visits", "gte", 3, {}), ("visits", "gte", 0, {}), ("visits", "lte", 1, {}), ("visits", "lte", 0, {}),
    ("spent", "gte", 250_000, {}), ("spent", "lte", 10_000, {}), ("spent", "lte", 0, {}),
    ("spent", "gte", 250_000, {"unit": "seoul-hotel"}), ("spent", "gte", 10_000, {"unit": "bakery"}),
]


@pytest.mark.parametrize("field, operator, value, extra", COVERED)
def test_each_rule_it_answers_matches_the_source_tables(town, field, operator, value, extra):
    tree = one(field, operator, value, **extra)
    assert fast(tree) == exact(tree)


@pytest.mark.parametrize("tree", [
    one("tag", "any", ["vip-guest"]), one("consent", "granted", "sms:marketing"), one("points", "gte", 100),
    one("tier", "in", ["vip"]), one("spent", "gte", 1, days=30), one("visits", "gte", 1, unit="bakery"),
    one("days_since_purchase", "gte", 30, unit="bakery"), one("spent", "lte", 10, unit="bakery"),
    {"op": "or", "rules": [{"field": "age", "operator": "gte", "value": 30},
                           {"field": "tier", "operator": "in", "value": ["vip"]}]},
])
def test_other_rules_go_to_the_source_tables_and_count_the_same(town, tree):
    assert facts.compile_tree(rules.clean_tree(tree)) is None
    assert selectors.count_matching(rules.clean_tree(tree), unit=None) == len(exact(tree))


def test_the_benchmarks_kind_of_tree_nested(town, units):
    tree = {"op": "and", "rules": [
        {"field": "sido", "operator": "in", "value": ["서울특별시"]},
        {"field": "age", "operator": "gte", "value": 30},
        {"op": "or", "rules": [{"field": "churn_risk", "operator": "gte", "value": 0.5},
                               {"field": "rfm_segment", "operator": "in", "value": ["at_risk", "hibernating"]}]},
        {"field": "days_since_purchase", "operator": "gte", "value": 90},
        {"field": "spent", "operator": "gte", "value": 200_000, "unit": "seoul-hotel"},
    ]}
    assert fast(tree, unit=units["seoul-hotel"]) == exact(tree, unit=units["seoul-hotel"]) == ["김지수"]
    assert fast({"op": "or", "rules": []}) == exact({"op": "or", "rules": []}) == []


def test_the_unit_and_the_users_scope(town, units, bora, mina):
    everyone = {"op": "and", "rules": []}
    for unit, user in ((units["bakery"], None), (None, bora), (units["bakery"], mina), (None, mina), (None, None)):
        assert fast(everyone, unit=unit, user=user) == exact(everyone, unit=unit, user=user)
    assert fast(everyone, user=bora) == ["박유나", "최노인"]


def test_every_kind_of_change_is_followed(town, units, buy, make_customer):
    actor = Actor.system("test")
    trees = [one(*rule[:3], **rule[3]) for rule in COVERED]

    def same():
        for tree in trees:
            assert fast(tree) == exact(tree), tree
        assert not FactsDirty.objects.exists()  # the fast path refreshed everything marked

    same()
    # a purchase, a refund, an order flagged for review, a new customer, a changed address and birthday
    order = buy(town["old"], "deluxe", at=timezone.now() - dt.timedelta(days=3))
    same()
    record_refund(actor=actor, order=order)
    same()
    Order.objects.filter(customer=town["minho"]).update(needs_review=True)
    same()
    newcomer = make_customer("busan-hotel", name="정새봄", gender="F", sido="부산광역시", sigungu="해운대구",
                             birthday=DateParts(year=2001, month=6, day=1))
    same()
    Address.objects.filter(customer=town["jisu"]).update(sido="경기도", sigungu="성남시")
    Anniversary.objects.filter(customer=town["minho"]).delete()
    same()
    update_customer(actor=actor, customer=newcomer, data=CustomerInput(name="정새봄", gender="M", stage="regular"))
    same()
    # memberships, metrics (one row, then the nightly swap of the whole snapshot)
    Membership.objects.create(customer=town["yuna"], unit=units["seoul-hotel"], joined_at=timezone.now())
    set_metrics(town["minho"], rfm_segment="hibernating", churn_risk=0.9, clv_12m=10, p_alive=0.1)
    same()
    refresh_metrics(actor=actor)  # the nightly swap: TRUNCATE + COPY on PostgreSQL, delete + insert on SQLite
    assert CustomerMetrics.objects.count() == Customer.objects.filter(merged_into__isnull=True).count()
    same()
    set_metrics(town["yuna"], rfm_segment="champions", churn_risk=0.05)
    same()
    # merge and its undo, suspension, erasure
    merge = merge_customers(actor=actor, survivor=town["jisu"], merged=town["old"])
    same()
    unmerge(actor=actor, merge=merge)
    same()
    Customer.objects.filter(pk=town["yuna"].pk).update(processing_suspended=True)
    same()
    erase_customer(actor=actor, customer=Customer.objects.get(pk=town["minho"].pk))
    erased = CustomerFacts.objects.get(customer=town["minho"])  # scrubbed in the erasure itself, before any refresh
    assert (erased.live, erased.sido, erased.sigungu, erased.birth_min) == (False, None, None, None)
    same()


def test_a_count_with_many_rows_waiting_uses_the_source_tables(town, monkeypatch):
    tree = rules.clean_tree(one("sido", "in", ["서울특별시"]))
    FactsDirty.objects.bulk_create([FactsDirty(customer_id=c.pk) for c in town.values()], ignore_conflicts=True)
    monkeypatch.setattr(facts, "FAST_COUNT_MAX_DIRTY", 2)
    assert selectors._facts_matching(tree, unit=None, user=None, now=None) is None
    assert selectors.count_matching(tree, unit=None) == 2
    assert FactsDirty.objects.count() == 4  # left for the background refresh
    assert facts.refresh() == 4 and not FactsDirty.objects.exists()
    assert CustomerFacts.objects.get(customer=town["jisu"]).sido == "서울특별시"


def test_a_change_rolled_back_leaves_no_mark(town):
    facts.refresh()
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        Address.objects.filter(customer=town["jisu"]).update(sido="제주특별자치도")
        assert FactsDirty.objects.filter(customer_id=town["jisu"].pk).exists()
        raise RuntimeError
    assert not FactsDirty.objects.exists()


def test_the_periodic_job_drains_the_marks(town):
    from dangol.campaigns.tasks import refresh_segment_facts_task
    from dangol.core.scheduler import PERIODIC_JOBS

    assert any(job.name == "campaigns-segment-facts" for job in PERIODIC_JOBS)
    assert FactsDirty.objects.exists()
    assert refresh_segment_facts_task.call() >= 4
    assert not FactsDirty.objects.exists()
    row = CustomerFacts.objects.get(customer=town["yuna"])
    assert (row.sales, row.spent, row.stage, row.rfm_segment) == (3, 4500 * 3 + 5000 + 4500, "regular", "champions")
    assert set(row.units) == {f"u{town['yuna'].memberships.get().unit_id}"}
