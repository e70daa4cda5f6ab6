"""The refresh on a small business checked by hand (as of 2025-06-30, Seoul).

    kim   bakery, joined 2024-12-01: 01-10 croissant ×2 (9,000); 03-05 09:00 baguette (5,000) and 18:00 croissant
          (4,500) — two orders, one purchase day; seoul-hotel 06-20 deluxe (250,000); 06-25 croissant (4,500)
          refunded in full on 06-26 (left out)
    lee   bakery, joined 2025-04-01: 05-01 croissant (4,500); a 25,000,000 order on 06-01 flagged for review and
          its refund (both left out)
    choi  seoul-hotel, joined 2025-03-01: 04-01 deluxe ×2 (500,000), half refunded on 04-03 (an imported partial
          refund: 250,000 left)
    jung  bakery, joined 2025-01-01: a croissant on six days (02-01, 03-01, 04-01, 05-01, 06-01, and 06-30 at 23:30)
          — a regular — and one on 07-01 at 00:10, after the day of the snapshot
    park  bakery, joined 2025-05-01: never bought (a prospect)
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from dangol.analytics import selectors, services
from dangol.analytics.models import CustomerMetrics, ModelRun
from dangol.core.audit import Actor
from dangol.core.models import AuditEvent, BusinessUnit
from dangol.core.scheduler import PERIODIC_JOBS
from dangol.customers.models import Customer, Membership
from dangol.sales.models import Order, OrderKind, OrderLine
from dangol.sales.services import LineInput, record_order, record_refund

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("test")
SEOUL = ZoneInfo("Asia/Seoul")
AS_OF = dt.date(2025, 6, 30)


def at(day: str, hour: int = 12, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour, minute), tzinfo=SEOUL)


def days(since: str, until: dt.date = AS_OF) -> int:
    return (until - dt.date.fromisoformat(since)).days


def sell(unit, customer, when, *lines):
    return record_order(actor=ACTOR, unit=unit, customer=customer, at=when,
                        lines=[LineInput(product_id=p.pk, quantity=q) for p, q in lines])


def joined(customer, day: str) -> None:
    Customer.objects.filter(pk=customer.pk).update(joined_at=at(day, 9))


@pytest.fixture
def business(units, products, make_customer):
    hotel, bakery = units["seoul-hotel"], units["bakery"]
    room, croissant, baguette = products["deluxe"], products["croissant"], products["baguette"]
    people = {
        "kim": make_customer("bakery", name="김민준"), "lee": make_customer("bakery", name="이서연"),
        "choi": make_customer("seoul-hotel", name="최유나"), "jung": make_customer("bakery", name="정하은"),
        "park": make_customer("bakery", name="박지호"),
    }
    for name, day in (("kim", "2024-12-01"), ("lee", "2025-04-01"), ("choi", "2025-03-01"), ("jung", "2025-01-01"),
                      ("park", "2025-05-01")):
        joined(people[name], day)
    kim, lee, choi, jung = (people[n] for n in ("kim", "lee", "choi", "jung"))
    sell(bakery, kim, at("2025-01-10", 10), (croissant, 2))
    sell(bakery, kim, at("2025-03-05", 9), (baguette, 1))
    sell(bakery, kim, at("2025-03-05", 18), (croissant, 1))
    sell(hotel, kim, at("2025-06-20", 15, 30), (room, 1))
    record_refund(actor=ACTOR, order=sell(bakery, kim, at("2025-06-25"), (croissant, 1)), at=at("2025-06-26"))

    sell(bakery, lee, at("2025-05-01"), (croissant, 1))
    flagged = sell(bakery, lee, at("2025-06-01"), (croissant, 1))
    Order.objects.filter(pk=flagged.pk).update(total=25_000_000, needs_review=True)  # as an import flags an outlier
    record_refund(actor=ACTOR, order=flagged, at=at("2025-06-02"))

    stay = sell(hotel, choi, at("2025-04-01"), (room, 2))
    partial = Order.objects.create(unit=hotel, customer=choi, kind=OrderKind.REFUND, refund_of=stay, total=-250_000,
                                   ordered_at=at("2025-04-03"))
    OrderLine.objects.create(order=partial, product=room, quantity=-1, unit_price=250_000, unit_cost=90_000,
                             line_total=-250_000)

    for day in ("2025-02-01", "2025-03-01", "2025-04-01", "2025-05-01", "2025-06-01"):
        sell(bakery, jung, at(day), (croissant, 1))
    sell(bakery, jung, at("2025-06-30", 23, 30), (croissant, 1))
    sell(bakery, jung, at("2025-07-01", 0, 10), (croissant, 1))
    return people


def refresh(**kwargs) -> ModelRun:
    return services.refresh_metrics(actor=ACTOR, as_of=kwargs.pop("as_of", AS_OF), **kwargs)


def row(customer) -> CustomerMetrics:
    return CustomerMetrics.objects.get(customer=customer)


def test_it_computes_each_customers_figures_as_checked_by_hand(business):
    run = refresh()
    assert run.customers == CustomerMetrics.objects.count() == 5
    kim = row(business["kim"])
    assert (kim.orders, kim.frequency, kim.recency_days, kim.tenure_days) == (4, 2, 10, days("2024-12-01"))
    assert kim.first_order_at == at("2025-01-10", 10) and kim.last_order_at == at("2025-06-20", 15, 30)
    assert (kim.monetary_total, kim.monetary_avg) == (268_500, 67_125)
    assert (kim.revenue, kim.cost, kim.profit) == (268_500, 2 * 1500 + 1800 + 1500 + 90_000, 268_500 - 96_300)
    assert (kim.discounts, kim.redeemed_points) == (0, 0)
    assert (kim.units_used, kim.wallet_share) == (2, 0.5)
    assert kim.as_of == AS_OF

    lee = row(business["lee"])  # the flagged order and its refund are nowhere
    assert (lee.orders, lee.frequency, lee.recency_days, lee.monetary_total) == (1, 0, days("2025-05-01"), 4500)
    assert (lee.revenue, lee.cost, lee.units_used) == (4500, 1500, 1)

    choi = row(business["choi"])  # half refunded: one purchase worth what is left
    assert (choi.orders, choi.monetary_total, choi.monetary_avg) == (1, 250_000, 250_000)
    assert (choi.revenue, choi.cost, choi.profit) == (250_000, 90_000, 160_000)
    assert choi.recency_days == days("2025-04-01") and choi.tenure_days == days("2025-03-01")

    jung = row(business["jung"])  # 23:30 on the last day counts, 00:10 the next day does not
    assert (jung.orders, jung.frequency, jung.recency_days, jung.monetary_total) == (6, 5, 0, 27_000)
    assert jung.last_order_at == at("2025-06-30", 23, 30)

    park = row(business["park"])
    assert (park.orders, park.frequency, park.monetary_total, park.revenue, park.units_used) == (0, 0, 0, 0, 0)
    assert park.recency_days is None and park.first_order_at is None and park.last_order_at is None
    assert park.tenure_days == days("2025-05-01")
    assert (park.r_score, park.f_score, park.m_score, park.rfm_segment) == (None, None, None, "")
    assert park.p_alive is None and park.clv_12m is None and park.churn_risk is None


def test_rfm_scores_and_segments_follow_the_documented_rules(business):
    refresh()
    # Buyers: jung (0 days, 6 purchase days, 27,000), kim (10, 3, 268,500), lee (60, 1, 4,500), choi (90, 1, 250,000).
    # Score = 1 + ⌊5 × (buyers strictly worse) / 4⌋.
    expected = {"jung": (4, 4, 2, "champions"), "kim": (3, 3, 4, "need_attention"), "lee": (2, 1, 1, "hibernating"),
                "choi": (1, 1, 3, "lost")}
    for name, (r, f, m, segment) in expected.items():
        metrics = row(business[name])
        assert (metrics.r_score, metrics.f_score, metrics.m_score, metrics.rfm_segment) == (r, f, m, segment), name


def test_stages_are_suggested_by_rule_and_the_customers_stage_is_left_alone(business):
    from dangol.loyalty.models import Referral, ReferralStatus

    Customer.objects.filter(pk=business["kim"].pk).update(stage="partner")  # set by staff
    refresh()
    suggested = {name: row(c).suggested_stage for name, c in business.items()}
    assert suggested == {"kim": "customer", "lee": "customer", "choi": "customer", "jung": "regular", "park": "prospect"}
    assert Customer.objects.get(pk=business["kim"].pk).stage == "partner"
    # A rewarded referral within the year makes an advocate; an older one, a pending one, or one by a customer who
    # never bought does not.
    def referral(referrer, referred, status, rewarded):
        Referral.objects.create(referrer=referrer, referred=referred, code="ABC123", status=status,
                                linked_at=at("2024-01-01"), rewarded_at=rewarded and at(rewarded))
    referral(business["lee"], business["choi"], ReferralStatus.REWARDED, "2025-06-01")
    referral(business["choi"], business["lee"], ReferralStatus.REWARDED, "2024-06-01")
    referral(business["jung"], business["kim"], ReferralStatus.PENDING, None)
    referral(business["park"], business["jung"], ReferralStatus.REWARDED, "2025-06-01")
    refresh()
    suggested = {name: row(c).suggested_stage for name, c in business.items()}
    assert suggested == {"kim": "customer", "lee": "advocate", "choi": "customer", "jung": "regular", "park": "prospect"}


def test_the_rules_stage_becomes_the_customers_unless_staff_chose_it(business, alice):
    from dangol.customers.services import CustomerInput, update_customer

    kim, lee, jung, park = (business[n] for n in ("kim", "lee", "jung", "park"))
    Customer.objects.filter(pk=lee.pk).update(stage="partner")  # partner: staff's call, never changed by rules
    current = Customer.objects.get(pk=jung.pk)
    update_customer(actor=Actor(user=alice), customer=current,  # saving a profile without touching the stage: no claim
                    data=CustomerInput(name="정하은", gender=current.gender, stage=current.stage))
    assert not Customer.objects.get(pk=jung.pk).stage_set_by_staff
    update_customer(actor=Actor(user=alice), customer=current,  # a manager makes jung an advocate by hand
                    data=CustomerInput(name=current.name, gender=current.gender, stage="advocate"))
    assert Customer.objects.get(pk=jung.pk).stage_set_by_staff
    run = refresh()
    stages = dict(Customer.objects.filter(pk__in=[c.pk for c in business.values()]).values_list("name", "stage"))
    assert stages == {"김민준": "customer", "이서연": "partner", "최유나": "customer", "정하은": "advocate", "박지호": "prospect"}
    assert row(jung).suggested_stage == "regular"  # suggested, not applied: staff chose
    assert run.details["stages_changed"] == 0
    Customer.objects.filter(pk=jung.pk).update(stage_set_by_staff=False)
    assert refresh().details["stages_changed"] == 1
    assert Customer.objects.get(pk=jung.pk).stage == "regular"
    assert refresh().details["stages_changed"] == 0  # nothing left to change


def test_a_promoter_in_a_service_survey_is_suggested_as_advocate(business, units):
    from dangol.service import services as service
    from dangol.service.models import Survey

    survey = Survey.objects.create(name="NPS", score_kind="nps", trigger="manual")

    def answer(customer, score, day):
        invitation = service.invite(survey=survey, customer=customer, about=f"manual:{customer.pk}", unit=units["bakery"], now=at(day))
        service.answer_survey(invitation=invitation, score=score, now=at(day))

    answer(business["kim"], 10, "2025-06-15")   # a promoter who bought: advocate
    answer(business["jung"], 7, "2025-06-15")   # passive: stays regular
    answer(business["park"], 9, "2025-06-15")   # never bought: stays a prospect
    answer(business["choi"], 10, "2024-05-01")  # more than a year before the refresh day: no longer counts
    refresh()
    suggested = {name: row(c).suggested_stage for name, c in business.items()}
    assert suggested == {"kim": "advocate", "lee": "customer", "choi": "customer", "jung": "regular", "park": "prospect"}


def test_a_refresh_records_its_run_and_one_audit_event(business):
    run = refresh(discount_rate_monthly=0.02)
    assert selectors.latest_run() == run
    assert run.as_of == AS_OF and run.discount_rate_monthly == 0.02 and run.seconds >= 0
    assert run.started_at <= run.finished_at
    assert "Discounts and redeemed points are 0" in run.notes
    assert set(run.details["phase_seconds"]) >= {"read", "summaries", "clv", "churn", "write_delete", "write_copy"}
    # Four buyers are too few to learn churn: said so, and nothing pretends otherwise.
    assert run.churn_auc is None and "too little history" in run.notes
    assert not CustomerMetrics.objects.filter(churn_risk__isnull=False).exists()
    if run.bgnbd:
        assert set(run.bgnbd) >= {"r", "alpha", "a", "b", "ll"}
        assert CustomerMetrics.objects.filter(p_alive__isnull=False).count() == 4
    else:
        assert "BG/NBD not fitted" in run.notes
    events = AuditEvent.objects.filter(action="analytics.refresh")
    assert [(e.object_type, e.object_id, e.via) for e in events] == [("analytics.modelrun", str(run.pk), "test")]


def test_refreshing_again_gives_the_same_snapshot(business):
    refresh()
    first = list(CustomerMetrics.objects.order_by("pk").values())
    refresh()
    assert list(CustomerMetrics.objects.order_by("pk").values()) == first
    assert ModelRun.objects.count() == 2
    # The indexes rebuilt by the write keep the names the migrations gave them.
    with connection.cursor() as cursor:
        indexes = {index for index, info in connection.introspection.get_constraints(
            cursor, CustomerMetrics._meta.db_table).items() if info["index"]}
    assert {"metrics_rfm_segment", "metrics_clv_12m", "metrics_churn_risk"} <= indexes


def test_an_earlier_day_sees_only_what_was_known_then(business):
    refresh(as_of=dt.date(2025, 6, 25))  # kim's croissant of 06-25 is not refunded yet on that day
    kim = row(business["kim"])
    assert (kim.orders, kim.frequency, kim.monetary_total, kim.recency_days) == (5, 3, 273_000, 0)
    refresh(as_of=dt.date(2025, 4, 2))  # choi's partial refund comes a day later
    assert row(business["choi"]).monetary_total == 500_000
    assert row(business["park"]).tenure_days == 0  # joined after that day: not a negative tenure


def test_the_number_of_queries_does_not_grow_with_customers(business, units, products, make_customer):
    with CaptureQueriesContext(connection) as few:
        refresh()
    for index in range(30):
        customer = make_customer("bakery", name=f"손님{index}")
        for day in ("2025-02-01", "2025-05-01")[: 1 + index % 2]:
            sell(units["bakery"], customer, at(day), (products["baguette"], 1 + index % 3))
    with CaptureQueriesContext(connection) as many:
        refresh()
    assert CustomerMetrics.objects.count() == 35
    # One query per advocacy source (referrals, survey promoters) and one UPDATE of the rules stage. SQLite: the snapshot in one executemany. PostgreSQL:
    # the pending foreign-key checks run before the TRUNCATE (two SET CONSTRAINTS); the six COPY statements go through the driver's own
    # cursor and are not counted; the TRUNCATE and the drop and rebuild of the three secondary indexes are.
    assert len(many) == len(few) <= (26 if connection.vendor == "postgresql" else 16), [
        q["sql"][:80] for q in many.captured_queries]


def test_a_merged_record_leaves_the_snapshot_and_its_orders_count_for_the_survivor(business):
    from dangol.ingest.merge import merge_customers

    refresh()
    survivor, merged = business["kim"], business["lee"]
    merge_customers(actor=ACTOR, survivor=survivor, merged=merged)
    assert not CustomerMetrics.objects.filter(customer=merged).exists()  # at once
    refresh()
    assert not CustomerMetrics.objects.filter(customer=merged).exists()
    assert row(survivor).orders == 5 and row(survivor).monetary_total == 268_500 + 4500
    assert CustomerMetrics.objects.count() == Customer.objects.filter(merged_into__isnull=True).count() == 4


def test_selectors_apply_the_unit_scope(business, alice, mina, bora):
    refresh()
    assert selectors.metrics_queryset(alice).count() == 5
    assert {m.customer_id for m in selectors.metrics_queryset(mina)} == {business["kim"].pk, business["choi"].pk}
    assert {m.customer_id for m in selectors.metrics_queryset(bora)} == {
        business[n].pk for n in ("kim", "lee", "jung", "park")}
    assert selectors.metrics_for(business["jung"]).orders == 6
    rules = selectors.segment_rules()
    assert len(rules) == 11 and sum(len(rule["cells"]) for rule in rules) == 25
    assert next(r for r in rules if r["segment"] == "champions")["cells"] == [(4, 4), (4, 5), (5, 4), (5, 5)]
    assert [rule["stage"] for rule in selectors.stage_rules()] == ["advocate", "regular", "customer", "prospect", "partner"]


def test_selectors_before_any_refresh(business, alice):
    assert selectors.latest_run() is None and selectors.metrics_for(business["kim"]) is None
    assert selectors.metrics_queryset(alice).count() == 0


@pytest.mark.parametrize("kwargs, field", [
    ({"as_of": dt.date(2999, 1, 1)}, "as_of"),
    ({"discount_rate_monthly": -0.1}, "discount_rate_monthly"),
    ({"discount_rate_monthly": 1.0}, "discount_rate_monthly"),
    ({"discount_rate_monthly": "0.01"}, "discount_rate_monthly"),
    ({"horizon_days": 3}, "horizon_days"),
    ({"horizon_days": 90.5}, "horizon_days"),
])
def test_bad_arguments_are_refused_and_nothing_is_written(business, kwargs, field):
    with pytest.raises(ValidationError) as error:
        refresh(**kwargs)
    assert field in error.value.message_dict
    assert not CustomerMetrics.objects.exists() and not ModelRun.objects.exists()


def test_the_refresh_command_prints_a_json_last_line(business, capsys):
    import json

    from django.core.management import call_command
    from django.core.management.base import CommandError

    call_command("analytics", "refresh", "--as-of", "2025-06-30", "--discount-rate", "0.015")
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["customers"] == 5 and result["as_of"] == "2025-06-30" and result["discount_rate_monthly"] == 0.015
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("analytics", "refresh", "--as-of", "30/06/2025")
    with translation.override("en"), pytest.raises(CommandError, match="discount rate"):
        call_command("analytics", "refresh", "--discount-rate", "2")


def test_the_nightly_job_is_registered_and_refreshes_once_a_day_from_three_in_the_morning(business):
    job = next(j for j in PERIODIC_JOBS if j.name == "analytics-nightly-refresh")
    assert job.task_path == "dangol.analytics.tasks.nightly_refresh" and job.every == dt.timedelta(hours=1)
    assert services.refresh_if_due(actor=ACTOR, now=at("2025-07-01", 2, 59)) is None
    run = services.refresh_if_due(actor=ACTOR, now=at("2025-07-01", 3, 5))
    assert run is not None and run.as_of == dt.date(2025, 7, 1)
    assert services.refresh_if_due(actor=ACTOR, now=at("2025-07-01", 4, 5)) is None  # done for the day
    assert ModelRun.objects.count() == 1


def test_the_task_refreshes(business):
    from dangol.analytics.tasks import refresh_customer_metrics

    assert refresh_customer_metrics.call("2025-06-30").startswith("customers: 5, as of: 2025-06-30")
    assert CustomerMetrics.objects.count() == 5


def test_an_empty_business_refreshes_to_an_empty_snapshot(units):
    run = refresh()
    assert run.customers == 0 and not CustomerMetrics.objects.exists()
    assert BusinessUnit.objects.count() == 4 and Membership.objects.count() == 0


def test_a_malformed_setting_is_named(business, monkeypatch):
    monkeypatch.setenv("DANGOL_CLV_DISCOUNT_RATE_MONTHLY", "one percent")
    with pytest.raises(ValidationError, match="DANGOL_CLV_DISCOUNT_RATE_MONTHLY"):
        services.refresh_metrics(actor=ACTOR, as_of=AS_OF)
    monkeypatch.setenv("DANGOL_CLV_DISCOUNT_RATE_MONTHLY", "0.02")
    monkeypatch.setenv("DANGOL_CHURN_HORIZON_DAYS", "90")
    run = services.refresh_metrics(actor=ACTOR, as_of=AS_OF)
    assert run.discount_rate_monthly == 0.02 and run.details["churn_horizon_days"] == 90
