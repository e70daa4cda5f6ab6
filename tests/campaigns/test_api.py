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
