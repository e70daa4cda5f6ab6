"""Demo data of the service app, written through the real services (so timelines, messages, coupons and audit
records follow): traits of regular customers, six months of cases at every unit with their surveys, and the story of
the issue — a complaint logged at the bakery counter, escalated when overdue, resolved with a goodwill coupon and
closed; its survey comes back unhappy and opens a follow-up case.

Call ``seed()`` once the demo customers and staff exist; it does nothing when cases already exist."""
from __future__ import annotations

import datetime as dt
import random

from django.db import transaction
from django.utils import timezone

from dangol.core.audit import Actor
from dangol.core.models import BusinessUnit, User
from dangol.customers.models import Customer

from . import services
from .models import Case, CaseStatus, Survey, SurveyInvitation, SurveyQuestion

CASES_PER_UNIT = 24
TRAITS = {
    "bakery": [("allergy", "no nuts"), ("allergy", "gluten-free"), ("favourite", "baguette"), ("favourite", "croissant"),
               ("trait", "prefers a paper bag")],
    "seoul-hotel": [("room", "high floor, quiet side"), ("room", "twin beds"), ("allergy", "feather pillows"),
                    ("preference", "late check-out"), ("trait", "business traveller: fast check-in")],
    "busan-hotel": [("room", "sea view"), ("preference", "non-smoking floor"), ("allergy", "shellfish")],
    "restaurant": [("allergy", "shellfish"), ("preference", "window table"), ("favourite", "galbi-jjim")],
}
SUBJECTS = {
    "complaint": ["Waiting time", "Cold food", "Room not ready", "Rude answer on the phone", "Wrong bill"],
    "as": ["Cake box damaged", "Safe does not open", "Reservation change"],
    "inquiry": ["Opening hours", "Points balance", "Parking", "Gift vouchers"],
    "request": ["Birthday cake lettering", "Extra bed", "Receipt copy"],
}


def _customers_of(unit: BusinessUnit, count: int, rng: random.Random) -> list[Customer]:
    ids = list(Customer.objects.filter(memberships__unit=unit, merged_into__isnull=True, erased_at__isnull=True,
                                       contacts__kind="phone").order_by("id").values_list("id", flat=True)[:2000])
    picked = rng.sample(ids, min(count, len(ids)))
    return list(Customer.objects.filter(pk__in=picked).order_by("id"))


def _staff_of(unit: BusinessUnit) -> User | None:
    return User.objects.filter(units=unit, is_active=True).order_by("id").first() or User.objects.filter(role="admin").order_by("id").first()


def seed(*, now: dt.datetime | None = None, rng_seed: int = 42) -> dict:
    """Write the demo's service data (idempotent: skipped when any case exists). Returns counts."""
    if Case.objects.exists():
        return {"skipped": True}
    from dangol.loyalty.models import CouponKind, CouponTemplate

    now = now or timezone.now()
    rng = random.Random(rng_seed)
    counts = {"cases": 0, "traits": 0, "answers": 0}
    with transaction.atomic():
        Survey.objects.get_or_create(trigger="after_case", unit=None, defaults={"name": "After a case (CSAT)", "score_kind": "csat"})
        hotel = BusinessUnit.objects.filter(code="seoul-hotel").first()
        stay = None
        if hotel:
            stay, created = Survey.objects.get_or_create(name="After a stay (NPS)", defaults={
                "score_kind": "nps", "trigger": "manual", "unit": hotel, "valid_days": 30})
            if created:
                SurveyQuestion.objects.create(survey=stay, position=1, text="Would you stay with us again?", kind="yesno")
                SurveyQuestion.objects.create(survey=stay, position=2, text="What did you enjoy most?", kind="choice",
                                              choices="Room | Breakfast | Staff | Location")
        apology, _created = CouponTemplate.objects.get_or_create(
            name="With our apologies: a free coffee", defaults={"kind": CouponKind.GIFT, "value": 0, "valid_days": 60})

        for unit in BusinessUnit.objects.filter(is_active=True).order_by("code"):
            staff = _staff_of(unit)
            actor = Actor(user=staff, via="demo")
            customers = _customers_of(unit, CASES_PER_UNIT + 10, rng)
            for customer in customers[CASES_PER_UNIT:]:
                category, value = rng.choice(TRAITS.get(unit.code, TRAITS["bakery"]))
                services.add_trait(actor=actor, customer=customer, category=category, value=value,
                                   source=rng.choice(["counter", "phone", "observed"]), unit=unit,
                                   now=now - dt.timedelta(days=rng.randint(1, 300)))
                counts["traits"] += 1
            for customer in customers[:CASES_PER_UNIT]:
                case_type = rng.choice(["complaint", "complaint", "as", "inquiry", "request"])
                opened = now - dt.timedelta(days=rng.randint(0, 180), hours=rng.randint(0, 12))
                case = services.open_case(actor=actor, customer=customer, unit=unit, case_type=case_type,
                                          channel=rng.choice(["counter", "phone", "web", "message"]),
                                          priority=rng.choice(["low", "normal", "normal", "high"]),
                                          subject=rng.choice(SUBJECTS[case_type]), now=opened, confirm=False)
                counts["cases"] += 1
                age = now - opened
                if age < dt.timedelta(days=2):
                    continue  # still open: the queue and the overdue list have something
                took = dt.timedelta(hours=rng.randint(1, 72))
                services.change_status(actor=actor, case=case, to_status="in_progress", now=opened + took / 4)
                services.change_status(actor=actor, case=case, to_status="resolved", now=opened + took,
                                       resolution="Sorted out with the customer.")
                services.change_status(actor=actor, case=case, to_status="closed", now=opened + took + dt.timedelta(hours=1))
                invitation = SurveyInvitation.objects.filter(case=case).first()
                if invitation and rng.random() < 0.6:
                    score = rng.choices([1, 2, 3, 4, 5], weights=[1, 1, 2, 5, 6])[0]
                    services.answer_survey(invitation=invitation, score=score, now=opened + took + dt.timedelta(hours=5),
                                           comment=rng.choice(["", "", "Thank you for the quick answer.", "Took too long.",
                                                               "Very kind staff."]))
                    counts["answers"] += 1
            if stay is not None and unit == hotel:
                for i, customer in enumerate(customers[:15]):
                    at = now - dt.timedelta(days=rng.randint(1, 170))
                    invitation = services.invite(survey=stay, customer=customer, about=f"stay:{i}", unit=unit, staff=staff,
                                                 now=at)
                    services.answer_survey(invitation=invitation, score=rng.choices(range(11), weights=[1] * 6 + [2, 3, 4, 6, 6])[0],
                                           now=at + dt.timedelta(hours=3), answers={})
                    counts["answers"] += 1

        story = _story(now=now, apology=apology)
        counts.update(story)
    services.escalate_overdue(now=now)
    return counts


def _story(*, now: dt.datetime, apology) -> dict:
    """The issue's demo: logged at the bakery counter yesterday, overdue and escalated, resolved with a coupon,
    closed, and an unhappy survey answer that opens a follow-up case."""
    bakery = BusinessUnit.objects.filter(code="bakery").first()
    if bakery is None:
        return {}
    clerk = User.objects.filter(username="clerk").first() or _staff_of(bakery)
    customer = Customer.objects.filter(memberships__unit=bakery, merged_into__isnull=True, contacts__kind="phone").order_by("-id").first()
    if customer is None:
        return {}
    clerk_actor = Actor(user=clerk, via="demo")
    opened = now - dt.timedelta(days=2)
    case = services.open_case(actor=clerk_actor, customer=customer, unit=bakery, case_type="complaint", channel="counter",
                              subject="Waiting time", description="Waited 20 minutes at the till on a Saturday morning.",
                              now=opened)
    services.add_trait(actor=clerk_actor, customer=customer, category="allergy", value="no nuts", source="counter", unit=bakery,
                       now=opened)
    services.escalate_overdue(now=case.due_at + dt.timedelta(minutes=5))
    manager = User.objects.filter(role="admin").order_by("id").first()
    manager_actor = Actor(user=manager, via="demo")
    later = case.due_at + dt.timedelta(hours=1)
    services.change_status(actor=manager_actor, case=case, to_status="in_progress", now=later)
    services.give_goodwill_coupon(actor=manager_actor, case=case, template=apology, reason="Long wait at the till", now=later)
    services.change_status(actor=manager_actor, case=case, to_status="resolved", resolution="Apologised; a free coffee coupon.",
                           now=later + dt.timedelta(minutes=10))
    case = services.change_status(actor=manager_actor, case=case, to_status="closed", now=later + dt.timedelta(minutes=20))
    invitation = SurveyInvitation.objects.filter(case=case).first()
    if invitation:
        services.answer_survey(invitation=invitation, score=2, comment="Nice coupon, but nobody called me back.",
                               now=later + dt.timedelta(hours=2))
    return {"story_case": case.pk, "story_status": CaseStatus(case.status).value}
