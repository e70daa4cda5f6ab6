"""RFM scores (quintiles) and the named RFM segments.

Scores are computed among the customers with at least one purchase (the others have none):

- **R** on the days since the last purchase (fewer is better), **F** on the number of purchase days, **M** on the
  total spend net of refunds.
- A customer scores ``1 + ⌊5 × (share of buyers strictly worse)⌋``, so 5 means at least 80 % of buyers are strictly
  worse. Ties get the same score on every database (no arbitrary tie-breaking as with NTILE): all one-time buyers
  share F = 1, whatever their number.

Segments are named from R and F — the loyalty behaviour; M is kept as its own score and drives value (CLV,
profit) rather than the name, so that one big first purchase does not make a newcomer "loyal". The rule table,
R down the side and F across (``SEGMENT_GRID``, also served by ``selectors.segment_rules()``):

    R \\ F   1               2                    3                4            5
    5       new             potential_loyalist   loyal            champions    champions
    4       promising       potential_loyalist   loyal            champions    champions
    3       about_to_sleep  need_attention       need_attention   loyal        loyal
    2       hibernating     hibernating          at_risk          at_risk      cant_lose
    1       lost            lost                 at_risk          cant_lose    cant_lose
"""
from __future__ import annotations

import numpy as np
from django.utils.translation import gettext_lazy as _
from scipy import stats

from .models import RfmSegment

S = RfmSegment
# SEGMENT_GRID[r - 1][f - 1]
SEGMENT_GRID: tuple[tuple[RfmSegment, ...], ...] = (
    (S.LOST, S.LOST, S.AT_RISK, S.CANT_LOSE, S.CANT_LOSE),  # R = 1
    (S.HIBERNATING, S.HIBERNATING, S.AT_RISK, S.AT_RISK, S.CANT_LOSE),  # R = 2
    (S.ABOUT_TO_SLEEP, S.NEED_ATTENTION, S.NEED_ATTENTION, S.LOYAL, S.LOYAL),  # R = 3
    (S.PROMISING, S.POTENTIAL_LOYALIST, S.LOYAL, S.CHAMPIONS, S.CHAMPIONS),  # R = 4
    (S.NEW, S.POTENTIAL_LOYALIST, S.LOYAL, S.CHAMPIONS, S.CHAMPIONS),  # R = 5
)

DESCRIPTIONS = {
    S.CHAMPIONS: _("Bought recently, buy often: reward them, ask for reviews and referrals."),
    S.LOYAL: _("Buy regularly: up-sell, invite to the loyalty programme."),
    S.POTENTIAL_LOYALIST: _("Recent customers with a second visit: offer membership, recommend."),
    S.NEW: _("First purchase very recently: welcome, help them come back."),
    S.PROMISING: _("Recent first-time buyers: build awareness, a small offer."),
    S.NEED_ATTENTION: _("Average recency and frequency: limited-time offers, recommendations."),
    S.ABOUT_TO_SLEEP: _("One purchase a while ago: share what is popular before they forget you."),
    S.AT_RISK: _("Used to buy often, not for a long time: personal reminder, win-back offer."),
    S.CANT_LOSE: _("The most frequent buyers of old, gone quiet: call them, find out why."),
    S.HIBERNATING: _("Few purchases, long ago: include in seasonal offers only."),
    S.LOST: _("One or two purchases, the longest ago: do not spend much to win back."),
}


def quintile_scores(values: np.ndarray) -> np.ndarray:
    """Scores 1–5 where a higher value is better: 1 + ⌊5 × (count strictly lower) / n⌋, as int8."""
    values = np.asarray(values)
    if values.size == 0:
        return np.zeros(0, dtype=np.int8)
    strictly_lower = stats.rankdata(values, method="min") - 1
    return (1 + (5 * strictly_lower) // values.size).astype(np.int8)


def rfm_scores(recency_days: np.ndarray, purchase_days: np.ndarray, monetary_total: np.ndarray) -> tuple[np.ndarray, ...]:
    """(R, F, M) of buyers; recency is negated because fewer days since the last purchase is better."""
    return (quintile_scores(-np.asarray(recency_days)), quintile_scores(purchase_days), quintile_scores(monetary_total))


_GRID_VALUES = np.array([[segment.value for segment in row] for row in SEGMENT_GRID], dtype=object)


def segments(r_scores: np.ndarray, f_scores: np.ndarray) -> np.ndarray:
    """Segment values for arrays of R and F scores (1–5), by table lookup."""
    return _GRID_VALUES[np.asarray(r_scores, dtype=int) - 1, np.asarray(f_scores, dtype=int) - 1]


def rule_table() -> list[dict]:
    """The table as data: one entry per segment with the (R, F) cells it covers, its label and a description."""
    cells: dict[str, list[tuple[int, int]]] = {segment.value: [] for segment in RfmSegment}
    for r, row in enumerate(SEGMENT_GRID, start=1):
        for f, segment in enumerate(row, start=1):
            cells[segment.value].append((r, f))
    return [{"segment": segment.value, "label": str(segment.label), "cells": cells[segment.value],
             "r_scores": sorted({r for r, _ in cells[segment.value]}), "f_scores": sorted({f for _, f in cells[segment.value]}),
             "description": str(DESCRIPTIONS[segment])} for segment in RfmSegment]
