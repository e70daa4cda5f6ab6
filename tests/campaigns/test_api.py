"""Segment endpoints: list, members (paginated, masked), counts, and a rule tree counted with bad input refused."""
from __future__ import annotations

import pytest

from dangol.campaigns import segments
from dangol.core.audit import Actor
from tests.api.conftest import bearer_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def hotel_segment(town, mina, units):
    return segments.create_segment(actor=Actor(user=mina), name="hotel", unit=units["seoul-hotel"],
                                   tree={"op": "and", "rules": [{"field": "sido", "operator": "in", "value": ["서울특별시"]}]})


def test_it_lists_segments_members_and_counts(hotel_segment, mina, bora):
    api = bearer_client(mina)
    listed = api.get("/api/v1/segments").json()
    assert [s["name"] for s in listed["results"]] == ["hotel"]
    members = api.get(f"/api/v1/segments/{hotel_segment.pk}/members?limit=1").json()
    assert members["count"] == 2 and len(members["results"]) == 1 and "*" in members["results"][0]["name"]
    assert api.get(f"/api/v1/segments/{hotel_segment.pk}/count").json() == {"count": 2}
    assert bearer_client(bora).get(f"/api/v1/segments/{hotel_segment.pk}/count").status_code == 404


def test_it_counts_a_rule_tree_and_refuses_bad_rules(town, mina):
    api = bearer_client(mina)
    tree = {"op": "and", "rules": [{"field": "tier", "operator": "in", "value": ["vip"]}]}
    assert api.post("/api/v1/segments/count", {"rules": tree, "unit": "seoul-hotel"}, format="json").json() == {"count": 1}
    bad = {"op": "and", "rules": [{"field": "name; DROP TABLE x", "operator": "in", "value": ["a"]}]}
    answer = api.post("/api/v1/segments/count", {"rules": bad}, format="json")
    assert answer.status_code == 400
    assert api.post("/api/v1/segments/count", {"rules": tree, "unit": "bakery"}, format="json").status_code == 403


def test_campaign_status_and_results_within_the_unit_scope(vip_campaign_sent, mina, bora, buy, town):
    campaign = vip_campaign_sent
    api = bearer_client(mina)
    listed = api.get("/api/v1/campaigns").json()
    assert [c["id"] for c in listed["results"]] == [campaign.pk]
    detail = api.get(f"/api/v1/campaigns/{campaign.pk}").json()
    assert detail["status"] == "sent" and detail["unit"] == "seoul-hotel" and detail["holdout_pct"] == 0
    result = api.get(f"/api/v1/campaigns/{campaign.pk}/results").json()
    assert (result["treated"]["customers"], result["holdout"]["customers"]) == (2, 0)
    assert result["coupons_issued"] == 2 and result["coupons_used"] == 0
    assert sum(result["messages"].values()) == 2 and result["holdout"]["uplift"] is None
    # Another unit's manager sees neither the campaign nor its results; an unknown id is a 404 too.
    other = bearer_client(bora)
    assert other.get("/api/v1/campaigns").json()["results"] == []
    for path in (f"/api/v1/campaigns/{campaign.pk}", f"/api/v1/campaigns/{campaign.pk}/results", "/api/v1/campaigns/999999"):
        assert other.get(path).status_code == 404


def test_results_of_a_campaign_not_sent_yet_are_a_404(vip_segment, mina, units):
    from tests.campaigns.test_campaigns import draft

    campaign = draft(mina, vip_segment, units["seoul-hotel"])
    api = bearer_client(mina)
    assert api.get(f"/api/v1/campaigns/{campaign.pk}").json()["status"] == "draft"
    answer = api.get(f"/api/v1/campaigns/{campaign.pk}/results")
    assert answer.status_code == 404 and answer.json()["code"] == "not_found"


@pytest.fixture
def vip_segment(town, mina, units):
    return segments.create_segment(actor=Actor(user=mina), name="VIP", unit=units["seoul-hotel"],
                                   tree={"op": "and", "rules": [{"field": "member_of", "operator": "in", "value": ["seoul-hotel"]}]})


@pytest.fixture
def vip_campaign_sent(vip_segment, mina, units):
    from dangol.campaigns import services
    from tests.campaigns.test_campaigns import draft

    campaign = draft(mina, vip_segment, units["seoul-hotel"], holdout_pct=0)
    services.approve_campaign(actor=Actor(user=mina), campaign=campaign)
    services.run_campaign(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    return campaign
