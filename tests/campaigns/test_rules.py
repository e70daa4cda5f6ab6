"""The segment compiler: every rule kind, nesting, the exclusions, the unit scope, and user input as data only."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dangol.campaigns import rules, selectors
from dangol.customers.models import Customer

pytestmark = pytest.mark.django_db


def names(tree, *, unit=None, user=None):
    qs = selectors.customers_matching(rules.clean_tree(tree), unit=unit, user=user)
    return sorted(qs.values_list("name", flat=True))


def one(field, operator, value, **extra):
    return {"op": "and", "rules": [{"field": field, "operator": operator, "value": value, **extra}]}


EVERYONE = ["김지수", "박유나", "이민호", "최노인"]


@pytest.mark.parametrize("rule, expected", [
    (("age", "gte", 60), ["이민호", "최노인"]),
    (("age", "lte", 40), ["김지수"]),
    (("gender", "in", ["F"]), ["김지수", "박유나"]),
    (("gender", "not_in", ["F"]), ["이민호", "최노인"]),
    (("sido", "in", ["서울특별시"]), ["김지수", "이민호"]),
    (("sigungu", "in", "강남구, 해운대구"), ["김지수", "박유나"]),
    (("sigungu", "not_in", ["강남구"]), ["박유나", "이민호", "최노인"]),
    (("tag", "any", ["vip-guest"]), ["김지수"]),
    (("tag", "none", ["vip-guest"]), ["박유나", "이민호", "최노인"]),
    (("stage", "in", ["regular"]), ["박유나"]),
    (("joined_days", "lte", 1), EVERYONE),
    (("joined_days", "gte", 30), []),
    (("member_of", "in", ["bakery"]), ["박유나", "최노인"]),
    (("member_of", "not_in", ["bakery"]), ["김지수", "이민호"]),
    (("consent", "granted", "sms:marketing"), ["김지수", "박유나"]),
    (("consent", "not_granted", "email:marketing"), ["김지수", "이민호", "최노인"]),
    (("days_since_purchase", "gte", 90), ["김지수", "최노인"]),  # never-buyers included
    (("days_since_purchase", "lte", 30), ["박유나", "이민호"]),
    (("rfm_segment", "in", ["at_risk"]), ["김지수"]),
    (("rfm_segment", "not_in", ["at_risk"]), ["박유나", "이민호", "최노인"]),
    (("clv_12m", "gte", 500_000), ["김지수"]),
    (("clv_12m", "lte", 500_000), ["박유나"]),
    (("p_alive", "gte", "0.9"), ["박유나"]),
    (("churn_risk", "gte", 0.5), ["김지수"]),
    (("points", "gte", 10_000), ["김지수"]),
    (("points", "lte", 3000), ["박유나", "이민호", "최노인"]),
    (("tier", "in", ["vip"]), ["김지수"]),
    (("tier", "not_in", ["vip"]), ["박유나", "이민호", "최노인"]),
])
def test_it_compiles_each_rule_kind(town, rule, expected):
    assert names(one(*rule)) == expected


def test_it_compiles_purchase_rules_with_windows_and_units(town, products):
    croissant, bread = products["croissant"], products["croissant"].category
    assert names(one("bought_product", "any", [str(croissant.pk)])) == ["박유나"]
    assert names(one("bought_product", "any", [croissant.pk], days=30)) == ["박유나"]
    assert names(one("bought_category", "any", [bread.pk], days=3)) == []
    assert names(one("bought_category", "none", [bread.pk])) == ["김지수", "이민호", "최노인"]
    assert names(one("visits", "gte", 3)) == ["박유나"]
    assert names(one("visits", "gte", 2, days=60)) == ["박유나"]
    assert names(one("visits", "lte", 1)) == ["김지수", "이민호", "최노인"]
    assert names(one("visits", "gte", 1, unit="seoul-hotel")) == ["김지수", "이민호"]
    assert names(one("spent", "gte", 250_000, unit="seoul-hotel")) == ["김지수", "이민호"]
    assert names(one("spent", "gte", 250_000, unit="seoul-hotel", days=30)) == ["이민호"]
    assert names(one("spent", "lte", 10_000)) == ["최노인"]


def test_it_nests_and_or_groups(town):
    tree = {"op": "or", "rules": [
        {"op": "and", "rules": [{"field": "tier", "operator": "in", "value": ["vip"]},
                                {"field": "sigungu", "operator": "in", "value": ["강남구"]},
                                {"field": "days_since_purchase", "operator": "gte", "value": 90}]},
        {"op": "and", "rules": [{"field": "points", "operator": "gte", "value": 900},
                                {"op": "or", "rules": [{"field": "sido", "operator": "in", "value": ["부산광역시"]},
                                                       {"field": "age", "operator": "gte", "value": 100}]}]},
    ]}
    assert names(tree) == ["김지수", "박유나"]
    assert names({"op": "and", "rules": []}) == EVERYONE
    assert names({"op": "or", "rules": []}) == []


def test_it_is_one_query(town):
    tree = rules.clean_tree({"op": "and", "rules": [
        {"field": "tier", "operator": "in", "value": ["vip"]}, {"field": "sigungu", "operator": "in", "value": ["강남구"]},
        {"op": "or", "rules": [{"field": "visits", "operator": "lte", "value": 3},
                               {"field": "churn_risk", "operator": "gte", "value": 0.5}]}]})
    compiled = rules.compile_tree(tree)  # reads the unit codes once
    with CaptureQueriesContext(connection) as queries:
        count = Customer.objects.filter(compiled).count()
    assert count == 1 and len(queries) == 1


def test_it_leaves_out_merged_erased_and_suspended_customers(town):
    Customer.objects.filter(pk=town["minho"].pk).update(processing_suspended=True)
    Customer.objects.filter(pk=town["old"].pk).update(erased_at=timezone.now())
    Customer.objects.filter(pk=town["yuna"].pk).update(merged_into=town["jisu"])
    assert names({"op": "and", "rules": []}) == ["김지수"]


def test_it_keeps_to_the_unit_and_the_users_scope(town, units, bora, mina):
    assert names({"op": "and", "rules": []}, unit=units["bakery"]) == ["박유나", "최노인"]
    assert names({"op": "and", "rules": []}, user=bora) == ["박유나", "최노인"]
    assert names({"op": "and", "rules": []}, user=mina, unit=units["bakery"]) == []


INJECTIONS = ["'; DROP TABLE customers_customer; --", "1 OR 1=1", "\" OR \"\"=\"", "강남구') OR ('1'='1",
              "%' OR name LIKE '%", "1); DELETE FROM customers_customer; --"]


@pytest.mark.parametrize("evil", INJECTIONS)
def test_it_treats_malicious_values_as_data(town, evil):
    for field in ("sido", "sigungu", "tag"):
        tree = rules.clean_tree(one(field, "in" if field != "tag" else "any", [evil]))
        qs = selectors.customers_matching(tree, unit=None)
        sql, params = qs.query.sql_with_params()
        assert evil not in sql and evil in params
        assert qs.count() == 0
    assert Customer.objects.count() == 4


@pytest.mark.parametrize("bad", [
    {"field": "name; DROP TABLE x", "operator": "in", "value": ["a"]},
    {"field": "customers_customer.name", "operator": "in", "value": ["a"]},
    {"field": "__class__", "operator": "in", "value": ["a"]},
    {"field": "sido", "operator": "in) OR (1=1", "value": ["a"]},
    {"field": "sido", "operator": "regex", "value": [".*"]},
    {"field": "sido", "operator": "gte", "value": ["a"]},
    {"field": "points", "operator": "gte", "value": "1000 OR 1=1"},
    {"field": "points", "operator": "gte", "value": True},
    {"field": "churn_risk", "operator": "gte", "value": "2"},
    {"field": "tier", "operator": "in", "value": ["vip' OR '1'='1"]},
    {"field": "consent", "operator": "granted", "value": "sms:marketing' --"},
    {"field": "spent", "operator": "gte", "value": 1, "unit": "bakery' OR 1=1"},
    {"field": "visits", "operator": "gte", "value": 1, "days": "30; DROP"},
    {"field": "age", "operator": "gte", "value": 400},
    {"field": ["sido"], "operator": "in", "value": ["a"]},
    "sido = 1",
])
def test_it_refuses_unknown_fields_operators_and_bad_values(town, bad):
    with pytest.raises(ValidationError):
        rules.clean_tree({"op": "and", "rules": [bad]})


@pytest.mark.parametrize("bad", [
    {"op": "and; DROP", "rules": []}, {"rules": "x"}, [], "and",
    {"op": "and", "rules": [{"op": "or", "rules": [{"op": "and", "rules": [{"op": "or", "rules": [
        {"op": "and", "rules": []}]}]}]}]},  # five deep
    {"op": "and", "rules": [{"field": "stage", "operator": "in", "value": ["regular"]}] * 41},
])
def test_it_refuses_malformed_trees(bad):
    with pytest.raises(ValidationError):
        rules.clean_tree(bad)


def test_it_reports_bad_rules_by_path_when_asked(town):
    problems = rules.Problems()
    tree = rules.clean_tree({"op": "and", "rules": [{"field": "points", "operator": "gte", "value": "many"},
                                                    {"field": "tier", "operator": "in", "value": ["vip"]}]},
                            problems=problems)
    assert list(problems.by_path) == ["0.0"] and len(tree["rules"]) == 1


def test_it_describes_a_tree(town):
    text = rules.describe(rules.clean_tree(one("visits", "gte", 2, days=30, unit="bakery")))
    assert text == "(Number of visits (purchases) at least 2 / 30d @ bakery)"


def test_a_live_count_that_takes_too_long_is_stopped_on_postgresql(town, settings):
    if connection.vendor != "postgresql":
        pytest.skip("statement timeouts are PostgreSQL's")
    settings.DANGOL_SEGMENT_COUNT_TIMEOUT_MS = 1
    from unittest import mock
    # the exact query over the source tables (an empty tree would otherwise be answered from the facts table)
    with mock.patch.object(selectors, "_facts_matching", return_value=None), \
            mock.patch.object(selectors, "customers_matching") as matching:
        matching.return_value.order_by.return_value = Customer.objects.extra(where=["pg_sleep(0.05) IS NOT NULL"])
        with pytest.raises(ValidationError):
            selectors.count_matching({"op": "and", "rules": []}, unit=None)
    assert Customer.objects.count() == 4  # the connection is usable afterwards


def test_points_count_only_what_can_be_spent_now(town, units):
    """A lot past its expiry that the hourly job has not closed yet is not spendable: the points rule and the
    {{ points }} placeholder give the counter's balance (loyalty.selectors.balance_of), not the ledger's raw sum."""
    import datetime as dt

    from dangol.campaigns.services import personal_values
    from dangol.loyalty.models import LedgerEntry, Lot
    from dangol.loyalty.selectors import balance_of

    yuna, now = town["yuna"], timezone.now()
    before = balance_of(yuna.pk)  # 800 given and what her purchases earned
    for points, expires in [(30_000, now - dt.timedelta(hours=1)), (40_000, now + dt.timedelta(days=30))]:
        entry = LedgerEntry.objects.create(customer=yuna, kind="earn", points=points, at=now - dt.timedelta(days=400),
                                           created_at=now)
        Lot.objects.create(entry=entry, customer=yuna, points=points, remaining=points, earned_at=entry.at, expires_at=expires)
    spendable = before + 40_000  # the ledger holds 30,000 more
    assert balance_of(yuna.pk) == spendable and before < 5_000
    assert "박유나" not in names(one("points", "gte", spendable + 1))
    assert "박유나" in names(one("points", "gte", spendable))
    assert "박유나" in names(one("points", "lte", spendable))
    assert "박유나" not in names(one("points", "lte", spendable - 1))
    values = personal_values([yuna.pk, town["old"].pk, town["jisu"].pk], {"points"}, unit=None)["points"]
    assert values[yuna.pk] == f"{spendable:,}" and values[town["old"].pk] == "0"
    assert values[town["jisu"].pk] == f"{balance_of(town['jisu'].pk):,}"
