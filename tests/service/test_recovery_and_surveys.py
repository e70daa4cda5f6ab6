"""Complaint recovery through loyalty, surveys (invitation after closure, once per invitation, detractors and
promoters), staff knowledge (traits) and the erasure of a customer's texts."""
from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from dangol.core import events
from dangol.core.audit import Actor
from dangol.customers.models import Interaction
from dangol.loyalty.models import Coupon, LedgerEntry
from dangol.messaging.models import Message
from dangol.service import selectors, services
from dangol.service.models import (
    Case,
    CaseEntry,
    Goodwill,
    Survey,
    SurveyInvitation,
    SurveyQuestion,
    SurveyResponse,
    Trait,
)

pytestmark = pytest.mark.django_db


# --- goodwill -----------------------------------------------------------------------------------------------------------

def test_staff_give_a_small_goodwill_coupon_recorded_on_the_case_and_in_the_wallet(bora, case, coupons):
    goodwill = services.give_goodwill_coupon(actor=Actor(user=bora), case=case, template=coupons["small"], reason="Stale bread")

    coupon = Coupon.objects.get(pk=goodwill.coupon_id)
    assert coupon.customer_id == case.customer_id and coupon.source == "manual" and coupon.source_ref == f"case:{case.pk}"
    assert goodwill.reason == "Stale bread" and goodwill.given_by == bora
    assert case.entries.filter(kind="goodwill").count() == 1
    assert Interaction.objects.filter(ref_type="service.case", ref_id=case.pk, summary__contains="Sorry 5,000").exists()


def test_a_big_coupon_or_points_need_a_manager_and_nothing_is_written(bora, case, coupons, row_counts):
    before = row_counts()
    with pytest.raises(PermissionDenied):
        services.give_goodwill_coupon(actor=Actor(user=bora), case=case, template=coupons["big"], reason="Very stale")
    with pytest.raises(PermissionDenied):  # loyalty's own rule: only managers and admins adjust points
        services.give_goodwill_points(actor=Actor(user=bora), case=case, points=500, reason="Very stale")
    assert row_counts() == before


def test_a_manager_gives_goodwill_points_through_the_loyalty_ledger(jun, case):
    goodwill = services.give_goodwill_points(actor=Actor(user=jun), case=case, points=1000, reason="Waited too long")
    entry = LedgerEntry.objects.get(pk=goodwill.ledger_entry_id)
    assert entry.points == 1000 and entry.kind == "adjust" and "Waited too long" in entry.reason
    assert Goodwill.objects.get(case=case).points == 1000


@pytest.mark.parametrize("points, reason, field", [(0, "fine reason", "points"), (-5, "fine reason", "points"),
                                                    ("lots", "fine reason", "points"), (10**9, "fine reason", "points"),
                                                    (100, " ", "reason")])
def test_bad_goodwill_input_is_refused(jun, case, row_counts, points, reason, field):
    before = row_counts()
    with pytest.raises(ValidationError) as error:
        services.give_goodwill_points(actor=Actor(user=jun), case=case, points=points, reason=reason)
    assert field in error.value.message_dict
    assert row_counts() == before


def test_a_coupon_of_another_unit_or_an_inactive_one_is_refused(jun, case, coupons):
    with pytest.raises(ValidationError):
        services.give_goodwill_coupon(actor=Actor(user=jun), case=case, template=coupons["hotel"], reason="Sorry")
    coupons["small"].is_active = False
    coupons["small"].save()
    with pytest.raises(ValidationError):
        services.give_goodwill_coupon(actor=Actor(user=jun), case=case, template=coupons["small"], reason="Sorry")


# --- surveys ------------------------------------------------------------------------------------------------------------

def close(case, user):
    for status in ("in_progress", "resolved", "closed"):
        case = services.change_status(actor=Actor(user=user), case=case, to_status=status)
    return case


def test_closing_a_case_sends_the_survey_once_with_a_signed_link(bora, case):
    seen = []

    def handler(case):
        seen.append(case.pk)

    events.subscribe("case_closed", handler)
    try:
        close(case, bora)
    finally:
        events._handlers["case_closed"].remove(handler)

    invitation = SurveyInvitation.objects.get(case=case)
    assert invitation.about == f"case:{case.pk}" and invitation.staff == bora
    message = Message.objects.get(pk=invitation.message_id)
    assert message.kind == "info" and message.source == f"survey:{invitation.survey_id}"
    token = message.body.rsplit("/s/", 1)[1].strip().rstrip("/")
    assert services.read_survey_token(token) == invitation.pk
    assert services.read_survey_token(token[:-2] + "xx") is None
    assert seen == [case.pk]
    # Reopening and closing again asks nothing twice.
    case = services.reopen(actor=Actor(user=bora), case=case)
    for status in ("resolved", "closed"):
        case = services.change_status(actor=Actor(user=bora), case=case, to_status=status)
    assert SurveyInvitation.objects.filter(case=case).count() == 1


def test_a_survey_is_answered_once(bora, case):
    close(case, bora)
    invitation = SurveyInvitation.objects.get(case=case)
    response = services.answer_survey(invitation=invitation, score=4, comment="Kind staff")
    assert (response.score, response.score_kind, response.unit_id, response.staff_id) == (4, "csat", case.unit_id, bora.pk)
    with pytest.raises(ValidationError) as error:
        services.answer_survey(invitation=invitation, score=5)
    assert error.value.message_dict == {"survey": ["This survey has already been answered. Thank you!"]}
    assert SurveyResponse.objects.count() == 1


@pytest.mark.parametrize("score", [0, 6, "five", None, ""])
def test_an_out_of_range_csat_score_is_refused_and_nothing_written(bora, case, score, row_counts):
    close(case, bora)
    invitation = SurveyInvitation.objects.get(case=case)
    before = row_counts()
    with pytest.raises(ValidationError) as error:
        services.answer_survey(invitation=invitation, score=score)
    assert "score" in error.value.message_dict
    assert row_counts() == before
    assert SurveyInvitation.objects.get(pk=invitation.pk).answered_at is None


def test_an_expired_invitation_cannot_be_answered(bora, case):
    close(case, bora)
    invitation = SurveyInvitation.objects.get(case=case)
    with pytest.raises(ValidationError):
        services.answer_survey(invitation=invitation, score=5, now=invitation.expires_at + dt.timedelta(seconds=1))


def test_a_detractor_opens_a_follow_up_case_in_the_units_queue(bora, case):
    close(case, bora)
    invitation = SurveyInvitation.objects.get(case=case)
    response = services.answer_survey(invitation=invitation, score=2, comment="Nobody called me back")

    follow_up = Case.objects.get(follow_up_of=response)
    assert follow_up.case_type == "complaint" and follow_up.priority == "high" and follow_up.assignee is None
    assert follow_up.unit_id == case.unit_id and follow_up.customer_id == case.customer_id
    assert "Nobody called me back" in follow_up.description and f"#{case.pk}" in follow_up.description
    assert follow_up in selectors.my_queue(bora)


@pytest.mark.parametrize("kind, score, detractor, promoter", [
    ("nps", 6, True, False), ("nps", 7, False, False), ("nps", 9, False, True),
    ("csat", 2, True, False), ("csat", 3, False, False), ("csat", 5, False, True),
])
def test_detractors_and_promoters_by_kind(bora, customer, units, kind, score, detractor, promoter):
    survey = Survey.objects.create(name="NPS", score_kind=kind, trigger="manual")
    invitation = services.invite(survey=survey, customer=customer, about="manual:1", unit=units["bakery"])
    response = services.answer_survey(invitation=invitation, score=score)
    assert Case.objects.filter(follow_up_of=response).exists() == detractor
    since = timezone.now() - dt.timedelta(days=1)
    assert (customer.pk in set(selectors.promoter_customer_ids(since=since))) == promoter


def test_custom_questions_are_checked(customer, units):
    survey = Survey.objects.create(name="Stay", score_kind="nps", trigger="manual")
    again = SurveyQuestion.objects.create(survey=survey, text="Would you stay again?", kind="yesno", required=True)
    room = SurveyQuestion.objects.create(survey=survey, text="Room", kind="choice", choices="Deluxe | Suite")
    invitation = services.invite(survey=survey, customer=customer, about="manual:2", unit=units["bakery"])
    with pytest.raises(ValidationError) as error:
        services.answer_survey(invitation=invitation, score=10, answers={str(room.pk): "Cave"})
    assert set(error.value.message_dict) == {f"q{again.pk}", f"q{room.pk}"}
    response = services.answer_survey(invitation=invitation, score=10, answers={str(again.pk): "yes", str(room.pk): "Suite"})
    assert response.answers == {str(again.pk): "yes", str(room.pk): "Suite"}


def test_a_survey_after_a_purchase_is_scheduled_a_day_later(customer, buy, settings):
    survey = Survey.objects.create(name="After a purchase", score_kind="nps", trigger="after_purchase")
    order = buy(customer, "croissant")  # order_recorded → the active purchase survey
    invitation = SurveyInvitation.objects.get(survey=survey, customer=customer)
    assert invitation.about == f"order:{order.pk}"
    message = Message.objects.get(pk=invitation.message_id)
    assert message.next_attempt_at == order.ordered_at + dt.timedelta(hours=24)
    assert services.invite_after_purchase(order=order) == invitation  # callable again: the same invitation


@pytest.fixture
def buy(products):
    from dangol.sales.services import LineInput, record_order

    def purchase(customer, product="croissant"):
        item = products[product]
        return record_order(actor=Actor.system("test"), unit=item.unit, customer=customer,
                            lines=[LineInput(product_id=item.pk, quantity=1, unit_price=None)], at=timezone.now())

    return purchase


def test_survey_results_per_unit_staff_and_month(bora, alice, customer, units):
    csat = Survey.objects.create(name="CSAT", score_kind="csat", trigger="manual")
    nps = Survey.objects.create(name="NPS", score_kind="nps", trigger="manual")
    for i, score in enumerate([5, 4, 1]):
        services.answer_survey(invitation=services.invite(survey=csat, customer=customer, about=f"m:{i}", unit=units["bakery"], staff=bora),
                               score=score, comment="Great" if score == 5 else "")
    for i, score in enumerate([10, 9, 8, 3]):
        services.answer_survey(invitation=services.invite(survey=nps, customer=customer, about=f"n:{i}", unit=units["bakery"]), score=score)
    now = timezone.now()
    results = selectors.survey_results(alice, since=now - dt.timedelta(days=1), until=now + dt.timedelta(minutes=1))
    assert results.total.csat_avg == round(10 / 3, 2) and results.total.csat_satisfied_pct == round(200 / 3, 1)
    assert results.total.nps == 25.0  # 2 promoters, 1 detractor of 4
    assert [s.label for s in results.by_unit] == [units["bakery"].name]
    assert {s.label for s in results.by_staff} == {"bora", "—"}
    assert [r.comment for r in results.comments] == ["Great"]
    assert len(results.by_month) == 1 and results.by_month[0].answers == 7
    assert results.csat_distribution[0] == (1, 1, 100.0)


# --- knowledge ----------------------------------------------------------------------------------------------------------

def test_traits_are_recorded_once_and_exposed_to_segments_and_messages(bora, customer, make_customer, units):
    actor = Actor(user=bora)
    services.add_trait(actor=actor, customer=customer, category="allergy", value="  no   nuts ", source="counter", unit=units["bakery"])
    services.add_trait(actor=actor, customer=customer, category="allergy", value="no nuts", source="phone", unit=units["bakery"])
    services.add_trait(actor=actor, customer=customer, category="favourite", value="baguette", source="observed", unit=None)
    other = make_customer("bakery", name="박서준")
    services.add_trait(actor=actor, customer=other, category="favourite", value="croissant", source="counter", unit=None)

    assert Trait.objects.filter(customer=customer).count() == 2
    assert set(selectors.customer_ids_with_trait(category="allergy")) == {customer.pk}
    assert set(selectors.customer_ids_with_trait(contains="CROISS")) == {other.pk}
    variables = selectors.trait_variables([customer.pk, other.pk])
    assert variables[customer.pk]["allergy"] == "no nuts"
    assert variables[customer.pk]["traits"] == "Allergy / dietary: no nuts; Favourite product: baguette"
    trait = Trait.objects.get(customer=customer, category="allergy")
    services.remove_trait(actor=actor, trait=trait)
    assert set(selectors.customer_ids_with_trait(category="allergy")) == set()


def test_bad_traits_are_refused(bora, customer, row_counts):
    before = row_counts()
    with pytest.raises(ValidationError) as error:
        services.add_trait(actor=Actor(user=bora), customer=customer, category="mood", value=" ", source="rumour", unit=None)
    assert set(error.value.message_dict) == {"category", "value", "source"}
    assert row_counts() == before


# --- erasure and merges --------------------------------------------------------------------------------------------------

def test_an_erased_customers_case_texts_traits_and_survey_comments_are_scrubbed(bora, jun, case, coupons):
    services.add_entry(actor=Actor(user=bora), case=case, kind="note", body="Lives next to the bakery")
    services.give_goodwill_coupon(actor=Actor(user=jun), case=case, template=coupons["small"], reason="Stale bread again")
    services.add_trait(actor=Actor(user=bora), customer=case.customer, category="allergy", value="gluten", source="counter", unit=None)
    close(case, bora)
    services.answer_survey(invitation=SurveyInvitation.objects.get(case=case), score=1, comment="My name is 김하늘")

    events.emit("customer_erased", customer_id=case.customer_id)

    for c in Case.objects.filter(customer=case.customer):
        assert "bread" not in c.subject.lower() and c.description == "" and "하늘" not in c.description
    assert set(CaseEntry.objects.filter(case__customer=case.customer).values_list("body", flat=True)) == {""}
    assert not Trait.objects.filter(customer=case.customer).exists()
    assert set(SurveyResponse.objects.values_list("comment", flat=True)) == {""}
    assert not Goodwill.objects.filter(reason__contains="Stale").exists()
    assert not Interaction.objects.filter(customer=case.customer, ref_type="service.case", summary__contains="bread").exists()


def test_a_merge_moves_cases_and_traits_and_the_undo_moves_them_back(bora, case, make_customer):
    other = make_customer("bakery", name="김하늘", phone="010-2222-4444")
    services.add_trait(actor=Actor(user=bora), customer=other, category="room", value="quiet", source="counter", unit=None)
    other_case = services.open_case(actor=Actor(user=bora), customer=other, unit=case.unit, case_type="inquiry", channel="phone",
                                    subject="Opening hours")
    survey = Survey.objects.create(name="NPS", score_kind="nps", trigger="manual")
    answer = services.answer_survey(invitation=services.invite(survey=survey, customer=other, about="m:1", unit=case.unit), score=8)
    moved: dict = {}
    services.on_customers_merged(survivor=case.customer, merged=other, merge=None, moved=moved)
    assert Case.objects.get(pk=other_case.pk).customer_id == case.customer_id
    assert Trait.objects.get(value="quiet").customer_id == case.customer_id
    assert SurveyResponse.objects.get(pk=answer.pk).customer_id == case.customer_id
    assert set(moved) == {"service_cases", "service_traits", "service_invitations"}
    services.on_customers_unmerged(survivor=case.customer, merged=other, merge=None, moved=moved)
    assert Case.objects.get(pk=other_case.pk).customer_id == other.pk
    assert Trait.objects.get(value="quiet").customer_id == other.pk
    assert SurveyResponse.objects.get(pk=answer.pk).customer_id == other.pk
    nothing: dict = {}
    services.on_customers_merged(survivor=case.customer, merged=make_customer("bakery", name="빈손"), merge=None, moved=nothing)
    assert nothing == {}
