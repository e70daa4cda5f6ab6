"""RFM scoring and naming, and the relationship-stage rules, as documented in their modules."""
from __future__ import annotations

import numpy as np

from dangol.analytics import rfm, stages
from dangol.analytics.models import RfmSegment


def test_quintile_scores_split_distinct_values_into_fifths():
    assert rfm.quintile_scores(np.arange(10)).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert rfm.quintile_scores(np.arange(10)[::-1]).tolist() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    assert rfm.quintile_scores(np.array([7])).tolist() == [1] and rfm.quintile_scores(np.array([])).tolist() == []


def test_ties_share_a_score_given_by_how_many_are_strictly_worse():
    # Six one-time buyers: all F = 1; the others by the share of buyers strictly below them.
    assert rfm.quintile_scores(np.array([1, 1, 1, 1, 1, 1, 2, 3, 4, 5])).tolist() == [1] * 6 + [4, 4, 5, 5]
    assert rfm.quintile_scores(np.array([3, 3, 3, 3])).tolist() == [1, 1, 1, 1]


def test_recency_counts_fewer_days_as_better():
    r, f, m = rfm.rfm_scores(np.array([0, 10, 100, 400, 30]), np.array([1, 2, 3, 4, 5]), np.array([5, 4, 3, 2, 1]))
    assert r.tolist() == [5, 4, 2, 1, 3] and f.tolist() == [1, 2, 3, 4, 5] and m.tolist() == [5, 4, 3, 2, 1]


def test_the_rule_table_names_every_cell_with_one_of_the_eleven_segments():
    named = {segment for row in rfm.SEGMENT_GRID for segment in row}
    assert named == set(RfmSegment) and len(RfmSegment) == 11
    r = np.repeat(np.arange(1, 6), 5)
    f = np.tile(np.arange(1, 6), 5)
    names = rfm.segments(r, f)
    assert names[(r == 5) & (f == 1)].tolist() == ["new"]
    assert set(names[(r >= 4) & (f >= 4)]) == {"champions"}
    assert names[(r == 1) & (f == 1)].tolist() == ["lost"] and names[(r == 1) & (f == 5)].tolist() == ["cant_lose"]
    assert names[(r == 4) & (f == 1)].tolist() == ["promising"] and names[(r == 3) & (f == 1)].tolist() == ["about_to_sleep"]
    table = {entry["segment"]: entry for entry in rfm.rule_table()}
    assert sorted(cell for entry in table.values() for cell in entry["cells"]) == [(a, b) for a in range(1, 6) for b in range(1, 6)]
    assert table["at_risk"]["cells"] == [(1, 3), (2, 3), (2, 4)]
    assert all(entry["label"] and entry["description"] for entry in table.values())


def test_stage_rules_in_order():
    suggested = stages.suggest(
        has_purchase=np.array([False, True, True, True, True, False]),
        purchase_days_last_year=np.array([0, 1, 5, 6, 2, 0]),
        advocate=np.array([False, False, False, False, True, True]),
    )
    # never bought → prospect (an advocacy signal without a purchase does not count); 6 days in a year → regular;
    # an advocacy signal wins over everything once the customer has bought.
    assert suggested.tolist() == ["prospect", "customer", "customer", "regular", "advocate", "prospect"]
    assert "partner" not in set(suggested) and stages.rule_table()[-1]["stage"] == "partner"
