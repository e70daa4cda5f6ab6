"""An offer's coupon is good at the business units the campaign names (issue 7: "units where valid"): at each of them,
refused elsewhere with the units named; by default where the campaign is sent from, or at every unit for a group
campaign; a manager cannot make a coupon good at a unit they do not work with."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from dangol.campaigns import segments, services
from dangol.campaigns.models import Campaign, Offer
from dangol.core.audit import Actor
from dangol.core.models import Role
from dangol.core.services import create_staff_user
from dangol.loyalty.models import Coupon, CouponStatus, CouponTemplate
from dangol.loyalty.services import coupon_problem, use_coupon
from dangol.loyalty.wallet import issue_coupons

from tests.helpers import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def jun(units):
    """A manager of both hotels."""
    return create_staff_user(username="jun", password=PASSWORD, role=Role.MANAGER,
                             units=[units["seoul-hotel"], units["busan-hotel"]])


@pytest.fixture
def hotel_segment(town, jun, units):
    return segments.create_segment(actor=Actor(user=jun), name="hotel", unit=units["seoul-hotel"],
                                   tree={"op": "and", "rules": [{"field": "member_of", "operator": "in", "value": ["seoul-hotel"]}]})


def send(user, segment, unit, offer_units=()):
    campaign = services.create_campaign(
        actor=Actor(user=user), name="Win-back", segment=segment, channel="sms", unit=unit, holdout_pct=0,
        variants=[services.VariantInput(body="쿠폰 {{ coupon_code }}")],
        offer=services.OfferInput(kind="amount", value=5_000, valid_days=14, units=tuple(offer_units)))
    services.approve_campaign(actor=Actor(user=user), campaign=campaign)
    run = services.run_campaign(campaign_id=campaign.pk)
    assert run is not None and run.recipients == 2
    return campaign, Coupon.objects.filter(source_ref=f"campaign:{campaign.pk}:1").select_related("template")


def test_a_template_good_at_two_units_is_refused_at_a_third_with_both_named(town, units, mina):
    template = CouponTemplate.objects.create(name="Hotels", kind="amount", value=1_000)
    template.units.set([units["seoul-hotel"], units["busan-hotel"]])
    [coupon_id] = issue_coupons(template=template, customer_ids=[town["jisu"].pk], source="campaign")
    coupon = Coupon.objects.select_related("template").get(pk=coupon_id)
    assert coupon_problem(coupon, unit=units["seoul-hotel"]) is None
    assert coupon_problem(coupon, unit=units["busan-hotel"]) is None
    problem = coupon_problem(coupon, unit=units["bakery"])  # unit names, whatever the language
    assert problem and "한빛호텔 서울" in problem["unit"][0] and "한빛호텔 부산" in problem["unit"][0]
    with pytest.raises(ValidationError):
        use_coupon(actor=Actor(user=mina), coupon=coupon, unit=units["bakery"])
    assert Coupon.objects.get(pk=coupon_id).status == CouponStatus.ACTIVE  # the refusal changed nothing
    everywhere = CouponTemplate.objects.create(name="Anywhere", kind="amount", value=1_000)
    [other_id] = issue_coupons(template=everywhere, customer_ids=[town["jisu"].pk], source="campaign")
    assert all(coupon_problem(Coupon.objects.get(pk=other_id), unit=u) is None for u in units.values())
    assert everywhere.units_label == "" and template.units_label == "한빛호텔 부산, 한빛호텔 서울"


def test_a_campaign_coupon_is_good_at_the_units_the_offer_names(hotel_segment, jun, units):
    campaign, coupons = send(jun, hotel_segment, units["seoul-hotel"], [units["seoul-hotel"], units["busan-hotel"]])
    template = coupons[0].template
    assert {u.code for u in template.units.all()} == {"seoul-hotel", "busan-hotel"}
    busan, bakery = units["busan-hotel"], units["bakery"]
    used = use_coupon(actor=Actor(user=jun), coupon=coupons[0], unit=busan)  # sent by Seoul, used in Busan
    assert used.status == CouponStatus.USED and used.used_unit == busan
    assert coupon_problem(coupons[1], unit=bakery)["unit"]


def test_without_units_the_coupon_is_good_where_the_campaign_is_sent_from(hotel_segment, jun, units):
    _campaign, coupons = send(jun, hotel_segment, units["seoul-hotel"])
    assert [u.code for u in coupons[0].template.units.all()] == ["seoul-hotel"]
    assert coupon_problem(coupons[0], unit=units["busan-hotel"])["unit"]


def test_a_group_campaign_without_units_gives_a_coupon_good_everywhere(town, alice, units):
    segment = segments.create_segment(actor=Actor(user=alice), name="all", unit=None,
                                      tree={"op": "and", "rules": [{"field": "member_of", "operator": "in", "value": ["seoul-hotel"]}]})
    _campaign, coupons = send(alice, segment, None)
    assert not coupons[0].template.units.exists()
    assert all(coupon_problem(coupons[0], unit=u) is None for u in units.values())


def test_a_manager_cannot_make_a_coupon_good_at_a_unit_of_someone_else(hotel_segment, jun, units):
    with pytest.raises(ValidationError) as refused:
        services.create_campaign(
            actor=Actor(user=jun), name="x", segment=hotel_segment, channel="sms", unit=units["seoul-hotel"],
            variants=[services.VariantInput(body="hi")],
            offer=services.OfferInput(kind="amount", value=5_000, units=(units["seoul-hotel"], units["bakery"])))
    assert "offer_units" in refused.value.message_dict
    assert not Campaign.objects.exists() and not Offer.objects.exists()  # nothing half-made
    with pytest.raises(ValidationError) as bad:
        services.create_campaign(
            actor=Actor(user=jun), name="x", segment=hotel_segment, channel="sms", unit=units["seoul-hotel"],
            variants=[services.VariantInput(body="hi")],
            offer=services.OfferInput(kind="amount", value=5_000, units=("seoul-hotel",)))
    assert "offer_units" in bad.value.message_dict


def test_the_campaign_form_offers_the_users_units_and_shows_them_on_the_campaign(client, hotel_segment, jun, units):
    client.force_login(jun)
    form = client.get(reverse("web:campaign_new"), HTTP_ACCEPT_LANGUAGE="en")
    choices = dict(form.context["form"].fields["offer_units"].choices)
    assert set(choices.values()) == {"한빛호텔 서울", "한빛호텔 부산"}  # not the bakery: jun does not work there
    data = {"name": "Win-back", "segment": hotel_segment.pk, "unit": units["seoul-hotel"].pk, "channel": "sms",
            "kind": "ad", "body_a": "{{ coupon_code }}", "holdout_pct": 10, "offer_kind": "amount", "offer_value": 5000,
            "offer_valid_days": 14, "attribution_days": 14, "share_a": 50}
    refused = client.post(reverse("web:campaign_new"), {**data, "offer_units": [units["bakery"].pk]}, HTTP_ACCEPT_LANGUAGE="en")
    assert refused.status_code == 200 and refused.context["form"].errors["offer_units"] and not Campaign.objects.exists()
    answer = client.post(reverse("web:campaign_new"), {**data, "offer_units": [units["seoul-hotel"].pk, units["busan-hotel"].pk]})
    campaign = Campaign.objects.get()
    assert answer.status_code == 302
    assert {u.code for u in campaign.offer.units.all()} == {"seoul-hotel", "busan-hotel"}
    detail = client.get(reverse("web:campaign_detail", args=[campaign.pk]), HTTP_ACCEPT_LANGUAGE="en")
    assert "한빛호텔 부산, 한빛호텔 서울" in detail.content.decode()


def test_an_automation_offer_is_good_at_its_unit(town, mina, units):
    from dangol.campaigns import automations
    automation = automations.save_automation(
        actor=Actor(user=mina), unit=units["seoul-hotel"], kind="winback", channel="sms", body="{{ coupon_code }}",
        offer=services.OfferInput(kind="percent", value=10))
    assert [u.code for u in automation.offer.units.all()] == ["seoul-hotel"]


@pytest.mark.django_db(transaction=True)
def test_the_migration_keeps_each_old_unit_as_the_only_member_of_its_set(units):
    """Templates and offers made before coupons could name several units keep their one unit, and "none" stays none."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before = [("loyalty", "0002_stamp_cards"), ("campaigns", "0003_segment_facts_triggers")]
    after = [("loyalty", "0003_coupon_units"), ("campaigns", "0004_coupon_units")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    Template, OldOffer = old.get_model("loyalty", "CouponTemplate"), old.get_model("campaigns", "Offer")
    bakery, anywhere = (Template.objects.create(name=n, kind="amount", value=1, valid_days=1, min_spend_krw=0, unit_id=u)
                        for n, u in [("bakery", units["bakery"].pk), ("anywhere", None)])
    offer = OldOffer.objects.create(kind="amount", value=1, valid_days=1, min_spend_krw=0, unit_id=units["busan-hotel"].pk)
    executor = MigrationExecutor(connection)
    executor.migrate(after)
    new = executor.loader.project_state(after).apps
    Template, NewOffer = new.get_model("loyalty", "CouponTemplate"), new.get_model("campaigns", "Offer")
    assert list(Template.objects.get(pk=bakery.pk).units.values_list("code", flat=True)) == ["bakery"]
    assert not Template.objects.get(pk=anywhere.pk).units.exists()
    assert list(NewOffer.objects.get(pk=offer.pk).units.values_list("code", flat=True)) == ["busan-hotel"]
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
