"""The demo's service data: written through the services, once."""
from __future__ import annotations

import pytest

from dangol.core.models import Role
from dangol.core.services import create_staff_user
from dangol.service import demo
from dangol.service.models import Case, SurveyResponse, Trait

from tests.helpers import PASSWORD

pytestmark = pytest.mark.django_db


def test_the_demo_seed_tells_the_story_and_runs_once(units, make_customer, alice):
    create_staff_user(username="clerk", password=PASSWORD, role=Role.STAFF, units=[units["bakery"]])
    for i in range(12):
        make_customer("bakery", name=f"손님{i}")
        make_customer("seoul-hotel", name=f"투숙객{i}")

    counts = demo.seed()

    story = Case.objects.get(pk=counts["story_case"])
    assert story.status == "closed" and story.goodwill.count() == 1 and story.escalated_at is not None
    follow_up = Case.objects.get(follow_up_of__invitation__case=story)
    assert follow_up.status == "new"
    assert Trait.objects.exists() and SurveyResponse.objects.count() >= counts["answers"] >= 1
    assert demo.seed() == {"skipped": True}
