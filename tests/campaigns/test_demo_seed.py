"""The marketing demo's story holds on whatever data was generated: the win-back segment widens until guests match,
the campaign reaches them, and a second seed changes nothing."""
from __future__ import annotations

import pytest

from dangol.campaigns import demo
from dangol.campaigns.models import Automation, Campaign, Recipient, Segment

pytestmark = pytest.mark.django_db


def test_the_winback_segment_widens_until_someone_matches_and_the_campaign_reaches_them(town, mina, units):
    made = demo.seed(manager=mina)
    segment = Segment.objects.get(pk=made["segment"])
    # 김지수 (VIP, 강남구, last stay 200 days ago) is the only guest of this small world who fits: too few for the
    # "best tiers" version, so the demo falls back to the segment without a tier rule.
    assert segment.name == demo._SEGMENTS[-1][0]
    assert made["recipients"] + made["holdout"] == 1
    assert list(Recipient.objects.filter(run__campaign_id=made["campaign"]).values_list("customer__name", flat=True)) == ["김지수"]
    assert Automation.objects.filter(unit=units["seoul-hotel"]).count() == 4
    assert demo.seed(manager=mina) == {"skipped": True} and Campaign.objects.count() == 1


def test_with_enough_top_tier_guests_the_story_segment_is_kept(town, mina, units, make_customer, buy, tiers, monkeypatch):
    monkeypatch.setattr(demo, "MIN_AUDIENCE", 1)
    made = demo.seed(manager=mina)
    assert Segment.objects.get(pk=made["segment"]).name == demo._SEGMENTS[0][0]
