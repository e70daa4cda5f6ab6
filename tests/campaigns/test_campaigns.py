"""Campaigns: drafting and approval rights, the reproducible holdout and split, the sandboxed template, the preview,
a real send through messaging with unique coupons, and the results' maths."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from dangol.campaigns import results, segments, services, templating
from dangol.campaigns.models import CampaignStatus, Recipient
from dangol.core.audit import Actor
from dangol.loyalty.models import Coupon
from dangol.messaging.models import Message

pytestmark = pytest.mark.django_db


def test_it_holds_out_the_same_customers_every_time():
    ids = np.arange(1, 200_001)
    first = services.holdout_mask(7, ids, 10)
    assert np.array_equal(first, services.holdout_mask(7, ids, 10))
    assert 0.095 < first.mean() < 0.105
    assert not np.array_equal(first, services.holdout_mask(8, ids, 10))  # another campaign, another group
    # A customer's group does not depend on who else is in the segment.
    assert np.array_equal(services.holdout_mask(7, ids[::3], 10), first[::3])
    assert services.holdout_mask(7, ids, 0).sum() == 0


def test_it_splits_variants_by_weight_independently_of_the_holdout():
    ids = np.arange(1, 100_001)
    codes = services.variant_of(7, ids, ["A", "B"], [70, 30])
    assert 0.69 < (codes == "A").mean() < 0.71
    held = services.holdout_mask(7, ids, 10)
    assert 0.68 < (codes[~held] == "A").mean() < 0.72


@pytest.mark.parametrize("evil", [
    "{{ name.__class__ }}", "{{ name|upper }}", "{% debug %}", "{% load static %}", "{{ settings.SECRET_KEY }}",
    "{{ request }}", "{# x #}", "{{ name }} }}", "{{ customer.phones }}", "{{name.__init__.__globals__}}",
])
def test_the_template_sandbox_refuses_anything_but_placeholders(evil):
    with pytest.raises(ValidationError):
        templating.variables_in(evil)


def test_the_template_renders_only_the_values_given():
    text = "{{ name }}님, {{coupon_code}} ({{ coupon_value }})"
    assert templating.variables_in(text) == {"name", "coupon_code", "coupon_value"}
    assert templating.render(text, {"name": "{{ tier }}", "coupon_code": "ABC"}) == "{{ tier }}님, ABC ()"


@pytest.fixture
def vip_segment(town, mina, units):
    return segments.create_segment(actor=Actor(user=mina), name="VIP", unit=units["seoul-hotel"],
                                   tree={"op": "and", "rules": [{"field": "member_of", "operator": "in", "value": ["seoul-hotel"]}]})


@pytest.fixture
def staff_at_hotel(units):
    from dangol.core.services import create_staff_user
    return create_staff_user(username="sol", password="x-very-long-pw", role="staff", units=[units["seoul-hotel"]])


def draft(user, segment, unit, **extra):
    return services.create_campaign(
        actor=Actor(user=user), name="Win-back", segment=segment, channel="sms", unit=unit,
        variants=[services.VariantInput(body="{{ name }}님, 쿠폰 {{ coupon_code }} ({{ coupon_value }})")],
        offer=services.OfferInput(kind="percent", value=10, valid_days=14), **extra)


def test_staff_drafts_and_only_a_manager_approves(vip_segment, staff_at_hotel, mina, units, django_capture_on_commit_callbacks):
    campaign = draft(staff_at_hotel, vip_segment, units["seoul-hotel"])
    services.submit_campaign(actor=Actor(user=staff_at_hotel), campaign=campaign)
    with pytest.raises(PermissionDenied):
        services.approve_campaign(actor=Actor(user=staff_at_hotel), campaign=campaign)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        approved = services.approve_campaign(actor=Actor(user=mina), campaign=campaign)
    assert approved.status == CampaignStatus.APPROVED and approved.approved_by == mina and len(callbacks) == 1
    with pytest.raises(ValidationError):
        services.approve_campaign(actor=Actor(user=mina), campaign=campaign)


def test_a_manager_of_another_unit_cannot_approve(vip_segment, mina, units):
    from dangol.core.services import create_staff_user
    other = create_staff_user(username="busan", password="x-very-long-pw", role="manager", units=[units["busan-hotel"]])
    campaign = draft(mina, vip_segment, units["seoul-hotel"])
    with pytest.raises(PermissionDenied):
        services.approve_campaign(actor=Actor(user=other), campaign=campaign)


@pytest.mark.parametrize("bad", [
    {"holdout_pct": 95}, {"attribution_days": 0}, {"recurrence": "hourly"}, {"recurrence": "daily"},
])
def test_it_refuses_bad_campaigns(vip_segment, mina, units, bad):
    with pytest.raises(ValidationError):
        draft(mina, vip_segment, units["seoul-hotel"], **bad)


def test_it_refuses_a_bad_offer_and_a_template_with_tags(vip_segment, mina, units):
    with pytest.raises(ValidationError):
        services.create_campaign(actor=Actor(user=mina), name="x", segment=vip_segment, channel="sms", unit=units["seoul-hotel"],
                                 variants=[services.VariantInput(body="hi")], offer=services.OfferInput(kind="percent", value=150))
    with pytest.raises(ValidationError):
        services.create_campaign(actor=Actor(user=mina), name="x", segment=vip_segment, channel="sms", unit=units["seoul-hotel"],
                                 variants=[services.VariantInput(body="{% debug %}")])
    with pytest.raises(ValidationError):
        services.create_campaign(actor=Actor(user=mina), name="x", segment=vip_segment, channel="sms", unit=units["bakery"],
                                 variants=[services.VariantInput(body="hi")])


def test_preview_renders_samples_and_the_compliance_outcome(vip_segment, mina, units):
    campaign = draft(mina, vip_segment, units["seoul-hotel"], holdout_pct=0)
    preview = services.preview_campaign(campaign=campaign, user=mina)
    assert preview["audience"] == 2 and preview["treated"] == 2
    assert {s["name"] for s in preview["samples"]} == {"김지수", "이민호"}
    assert all("SAMPLE0000" in s["body"] and "10%" in s["body"] for s in preview["samples"])
    compliance = preview["compliance"]
    assert compliance["total"] == 2 and compliance["block"] == 1  # 이민호 gave no SMS consent
    assert Message.objects.count() == 0 and Coupon.objects.count() == 0


def test_a_run_sends_once_with_unique_coupons_and_records_the_holdout(vip_segment, mina, units):
    campaign = draft(mina, vip_segment, units["seoul-hotel"], holdout_pct=0)
    services.approve_campaign(actor=Actor(user=mina), campaign=campaign)
    run = services.run_campaign(campaign_id=campaign.pk)
    assert run is not None and run.recipients == 2 and run.holdout == 0
    coupons = Coupon.objects.filter(source_ref=f"campaign:{campaign.pk}:1")
    assert coupons.count() == 2 and len(set(coupons.values_list("code", flat=True))) == 2
    messages = Message.objects.filter(source=f"campaign:{campaign.pk}")
    assert messages.count() == 2
    jisu = messages.get(customer__name="김지수")
    assert coupons.get(customer_id=jisu.customer_id).code in jisu.body and "김지수" in jisu.body
    assert services.run_campaign(campaign_id=campaign.pk) is None  # sent: nothing more
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT
    assert Recipient.objects.filter(run=run).count() == 2


def test_uplift_maths_on_constructed_data():
    rng = np.random.default_rng(1)
    treated = np.where(rng.random(20_000) < 0.12, 50_000, 0)
    holdout = np.where(rng.random(2_000) < 0.08, 50_000, 0)
    u = results.uplift(treated, holdout)
    expected = treated.mean() - holdout.mean()
    se = np.sqrt(treated.var(ddof=1) / len(treated) + holdout.var(ddof=1) / len(holdout))
    assert u.difference == pytest.approx(expected)
    assert u.low == pytest.approx(expected - 1.959964 * se) and u.high == pytest.approx(expected + 1.959964 * se)
    assert u.significant and 1000 < u.difference < 3000
    assert u.conversion_difference == pytest.approx((treated > 0).mean() - (holdout > 0).mean())
    same = results.uplift(np.array([0, 10, 0, 10]), np.array([0, 10, 0, 10]))
    assert same.difference == 0 and not same.significant
    assert results.uplift(np.array([1]), np.array([1, 2])) is None


def test_results_compare_recipients_with_the_holdout(vip_segment, mina, units, buy, town, settings):
    settings.DANGOL_MESSAGE_COST_KRW = {"sms": 20}
    campaign = draft(mina, vip_segment, units["seoul-hotel"], holdout_pct=50)
    services.approve_campaign(actor=Actor(user=mina), campaign=campaign)
    run = services.run_campaign(campaign_id=campaign.pk)
    rows = {r.customer_id: r for r in Recipient.objects.filter(run=run)}
    for customer in (town["jisu"], town["minho"]):
        buy(customer, "deluxe", at=timezone.now() + dt.timedelta(minutes=1))
    outcome = results.campaign_results(campaign, now=timezone.now() + dt.timedelta(hours=1))
    assert outcome.treated.customers + outcome.holdout.customers == 2
    assert outcome.treated.customers == sum(not r.is_holdout for r in rows.values())
    assert outcome.treated.revenue == 250_000 * outcome.treated.customers
    charged = Message.objects.filter(source=campaign.source).exclude(status="blocked").count()  # blocked ones cost nothing
    assert outcome.message_cost == 20 * charged
    assert outcome.coupons_issued == outcome.treated.customers and outcome.coupons_used == 0
    assert results.results_csv_rows(outcome)[0][0] == "group"


def test_a_scheduled_recurring_campaign_runs_once_per_occurrence(vip_segment, mina, units):
    start = timezone.now() + dt.timedelta(hours=1)
    campaign = draft(mina, vip_segment, units["seoul-hotel"], holdout_pct=50, send_at=start, recurrence="daily")
    services.approve_campaign(actor=Actor(user=mina), campaign=campaign)
    assert services.run_due_campaigns(now=timezone.now()) == 0  # not yet
    assert services.run_due_campaigns(now=start + dt.timedelta(minutes=1)) == 1
    assert services.run_due_campaigns(now=start + dt.timedelta(minutes=2)) == 0  # the next run is tomorrow
    assert services.run_due_campaigns(now=start + dt.timedelta(days=1, minutes=1)) == 1
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.APPROVED and campaign.runs.count() == 2
    first, second = [dict(Recipient.objects.filter(run=r).values_list("customer_id", "is_holdout")) for r in campaign.runs.order_by("started_at")]
    assert first == second  # the same customers are held out every time


def test_personal_values_fill_tier_points_and_a_cross_sell_placeholder(vip_segment, mina, units, town):
    campaign = services.create_campaign(
        actor=Actor(user=mina), name="p", segment=vip_segment, channel="sms", unit=units["seoul-hotel"], holdout_pct=0,
        variants=[services.VariantInput(body="{{ name }}:{{ tier }}:{{ points }}:{{ best_product }}:{{ unit }}")])
    bodies = {s["name"]: s["body"] for s in services.preview_campaign(campaign=campaign, user=mina)["samples"]}
    assert bodies["김지수"].startswith("김지수:VIP:14,500:") and bodies["김지수"].endswith(":한빛호텔 서울")
    assert bodies["이민호"].startswith("이민호:Gold:2,500:")


def test_staff_cannot_cancel_an_approved_campaign(vip_segment, staff_at_hotel, mina, units):
    campaign = draft(staff_at_hotel, vip_segment, units["seoul-hotel"], send_at=timezone.now() + dt.timedelta(days=1))
    services.approve_campaign(actor=Actor(user=mina), campaign=campaign)
    with pytest.raises(PermissionDenied):
        services.cancel_campaign(actor=Actor(user=staff_at_hotel), campaign=campaign)
    assert services.cancel_campaign(actor=Actor(user=mina), campaign=campaign).status == CampaignStatus.CANCELLED


def test_the_cost_counts_each_message_at_the_price_of_its_type(settings):
    """An LMS or MMS costs more than an SMS; a type without its own price costs its channel's; blocked ones nothing."""
    from dangol.campaigns.results import _message_counts
    from dangol.messaging.models import Message

    settings.DANGOL_MESSAGE_COST_KRW = {"sms": 20, "mms": 120, "kakao": 8}
    now = timezone.now()
    for i, (subtype, status) in enumerate([("sms", "sent"), ("sms", "queued"), ("lms", "delivered"), ("mms", "held"),
                                           ("mms", "failed"), ("mms", "blocked")]):
        Message.objects.create(idempotency_key=f"k{i}", source="cost", occurrence="1", channel="sms", subtype=subtype,
                               kind="ad", status=status, created_at=now)
    counts, clicks, cost = _message_counts(Message.objects.filter(source="cost"), "sms")
    assert cost == 2 * 20 + 1 * 20 + 2 * 120  # the LMS at the SMS price: no LMS price was set
    assert counts["blocked"] == 1 and clicks == 0


def test_roi_counts_the_discounts_of_the_coupons_used(vip_segment, mina, units, buy, town, settings):
    """ROI = (incremental revenue − messages − discounts) / (messages + discounts); a coupon used without a known
    discount is counted apart."""
    settings.DANGOL_MESSAGE_COST_KRW = {"sms": 20}
    campaign = draft(mina, vip_segment, units["seoul-hotel"], holdout_pct=0)
    services.approve_campaign(actor=Actor(user=mina), campaign=campaign)
    services.run_campaign(campaign_id=campaign.pk)
    coupons = list(Coupon.objects.filter(source_ref=f"campaign:{campaign.pk}:1").select_related("template"))
    from dangol.loyalty.services import use_coupon
    use_coupon(actor=Actor(user=mina), coupon=coupons[0], unit=units["seoul-hotel"], amount_krw=250_000)  # 10 %: 25,000
    use_coupon(actor=Actor(user=mina), coupon=coupons[1], unit=units["seoul-hotel"])  # a percentage without the amount
    outcome = results.campaign_results(campaign, now=timezone.now() + dt.timedelta(hours=1))
    assert outcome.coupons_used == 2 and outcome.discounts == 25_000 and outcome.coupons_unpriced == 1
    # Everyone was treated: no holdout, no uplift, no ROI — the figures are still reported.
    assert outcome.roi is None
    outcome.treated.uplift = results.Uplift(difference=100_000, low=0, high=0, treated_mean=0, holdout_mean=0,
                                            conversion_difference=0)
    outcome.incremental_revenue = 100_000 * outcome.treated.customers
    results._coupons(outcome, Coupon.objects.filter(pk__in=[c.pk for c in coupons]))
    cost = outcome.message_cost + 25_000
    assert outcome.roi == pytest.approx((outcome.incremental_revenue - cost) / cost)
    assert ["coupon_discounts_krw", 25_000] in results.results_csv_rows(outcome)
