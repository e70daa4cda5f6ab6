"""The demo seed: automations, the segment and a sent win-back campaign whose report can be read."""
from __future__ import annotations

import pytest

from dangol.campaigns import demo, results
from dangol.campaigns.models import Automation, Campaign

pytestmark = pytest.mark.django_db


def test_the_demo_seed_sends_a_winback_and_is_not_repeated(town, mina):
    made = demo.seed(manager=mina)
    assert made["recipients"] + made["holdout"] == 1  # 김지수: VIP in 강남구, last stay 200 days ago
    assert Automation.objects.filter(unit__code="seoul-hotel").count() == 4
    assert results.campaign_results(Campaign.objects.get()) is not None
    assert demo.seed(manager=mina) == {"skipped": True}
