"""BG/NBD and Gamma-Gamma against the papers, on the CDNOW sample that the `lifetimes` package bundles.

Published maximum-likelihood estimates:
- Fader, Hardie & Lee (2005), "Counting your customers the easy way", Marketing Science 24(2), CDNOW sample of 2,357
  customers in weeks: r = 0.243, α = 4.414, a = 0.793, b = 2.426, LL = −9,582.4.
- Fader & Hardie (2013), "The Gamma-Gamma model of monetary value" (the 946 customers with repeat purchases):
  p = 6.25, q = 3.74, γ = 15.44.
`lifetimes` (archived, test-only here) serves as an independent implementation of the predictions.
"""
from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd
import pytest

from dangol.analytics import clv

lifetimes = pytest.importorskip("lifetimes")

BGNBD_PAPER = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
BGNBD_PAPER_LL = -9582.4
GAMMA_GAMMA_PAPER = {"p": 6.25, "q": 3.74, "gamma": 15.44}


def cdnow(name: str) -> pd.DataFrame:
    return pd.read_csv(resources.files("lifetimes.datasets").joinpath(name))


@pytest.fixture(scope="module")
def summary() -> pd.DataFrame:
    return cdnow("cdnow_customers_summary_with_transactions.csv")  # ID, x, t_x, T, zbar


def within(value: float, expected: float, tolerance: float) -> bool:
    return abs(value - expected) <= tolerance * abs(expected)


def test_it_reproduces_the_bgnbd_estimates_of_the_paper(summary):
    model = clv.fit_bgnbd(summary["x"], summary["t_x"], summary["T"])
    assert model.customers == 2357
    for name, expected in BGNBD_PAPER.items():
        assert within(getattr(model, name), expected, 0.01), (name, getattr(model, name), expected)
    assert model.ll == pytest.approx(BGNBD_PAPER_LL, abs=0.1)
    # The maximum: a step in any direction lowers the likelihood.
    for name in BGNBD_PAPER:
        for factor in (0.99, 1.01):
            moved = clv.BgNbd(**{**model.as_dict(), name: getattr(model, name) * factor})
            assert clv.bgnbd_log_likelihood(moved, summary["x"], summary["t_x"], summary["T"]) < model.ll


def test_it_reads_the_same_estimates_from_the_other_cdnow_file():
    frame = cdnow("cdnow_customers_summary.csv")  # frequency, recency, T
    model = clv.fit_bgnbd(frame["frequency"], frame["recency"], frame["T"])
    for name, expected in BGNBD_PAPER.items():
        assert within(getattr(model, name), expected, 0.01)


def test_it_reproduces_the_gamma_gamma_estimates_of_the_paper(summary):
    model = clv.fit_gamma_gamma(summary["x"], summary["zbar"])
    assert model.customers == 946  # the customers with repeat purchases
    for name, expected in GAMMA_GAMMA_PAPER.items():
        assert within(getattr(model, name), expected, 0.01), (name, getattr(model, name), expected)
    assert model.population_mean == pytest.approx(model.p * model.gamma / (model.q - 1))


def test_fits_agree_with_lifetimes_and_with_counts_as_weights(summary):
    ours = clv.fit_bgnbd(summary["x"], summary["t_x"], summary["T"])
    theirs = lifetimes.BetaGeoFitter().fit(summary["x"], summary["t_x"], summary["T"]).params_
    for name in BGNBD_PAPER:
        assert within(getattr(ours, name), theirs[name], 0.001)
    repeat = summary[summary["x"] > 0]
    gg = clv.fit_gamma_gamma(summary["x"], summary["zbar"])
    theirs_gg = lifetimes.GammaGammaFitter().fit(repeat["x"], repeat["zbar"]).params_
    assert within(gg.p, theirs_gg["p"], 0.001) and within(gg.q, theirs_gg["q"], 0.001)
    assert within(gg.gamma, theirs_gg["v"], 0.001)
    # Duplicated rows and one row with a count of two are the same data.
    doubled = clv.fit_bgnbd(np.tile(summary["x"], 2), np.tile(summary["t_x"], 2), np.tile(summary["T"], 2))
    weighted = clv.fit_bgnbd(summary["x"], summary["t_x"], summary["T"], weights=np.full(len(summary), 2.0))
    assert doubled.r == pytest.approx(weighted.r, rel=1e-6) and doubled.ll == pytest.approx(weighted.ll, rel=1e-9)
    assert doubled.r == pytest.approx(ours.r, rel=1e-4)


def test_predictions_match_lifetimes(summary):
    x, t_x, T, m = summary["x"], summary["t_x"], summary["T"], summary["zbar"]
    model = clv.fit_bgnbd(x, t_x, T)
    reference = lifetimes.BetaGeoFitter()
    reference.params_ = pd.Series(model.as_dict())[["r", "alpha", "a", "b"]]
    np.testing.assert_allclose(clv.probability_alive(model, x, t_x, T),
                               reference.conditional_probability_alive(x, t_x, T), rtol=1e-9)
    for horizon in (1, 39, 52, 104):
        np.testing.assert_allclose(clv.expected_purchases(model, horizon, x, t_x, T),
                                   reference.conditional_expected_number_of_purchases_up_to_time(horizon, x, t_x, T),
                                   rtol=1e-8)
    gg = clv.fit_gamma_gamma(x, m)
    spend_reference = lifetimes.GammaGammaFitter()
    spend_reference.params_ = pd.Series({"p": gg.p, "q": gg.q, "v": gg.gamma})
    np.testing.assert_allclose(clv.expected_average_spend(gg, x, m),
                               spend_reference.conditional_expected_average_profit(x, m), rtol=1e-9)


def test_lifetime_value_discounts_the_expected_monthly_purchases(summary):
    x, t_x, T, m = summary["x"], summary["t_x"], summary["T"], summary["zbar"]
    model = clv.fit_bgnbd(x, t_x, T)
    spend = clv.expected_average_spend(clv.fit_gamma_gamma(x, m), x, m)
    weeks_per_month = 52.1775 / 12
    undiscounted = clv.lifetime_value(model, x, t_x, T, spend, discount_rate_monthly=0.0,
                                      time_units_per_month=weeks_per_month)
    np.testing.assert_allclose(undiscounted, clv.expected_purchases(model, 12 * weeks_per_month, x, t_x, T) * spend,
                               rtol=1e-10)
    discounted = clv.lifetime_value(model, x, t_x, T, spend, discount_rate_monthly=0.02,
                                    time_units_per_month=weeks_per_month)
    assert np.all(discounted <= undiscounted) and discounted.sum() < 0.95 * undiscounted.sum()
    # Month by month, as lifetimes computes it (purchases in each month, discounted at the month's end).
    per_month = [clv.expected_purchases(model, k * weeks_per_month, x, t_x, T)
                 - clv.expected_purchases(model, (k - 1) * weeks_per_month, x, t_x, T) for k in range(1, 13)]
    by_hand = sum(p / 1.02 ** k for k, p in enumerate(per_month, start=1)) * spend
    np.testing.assert_allclose(discounted, by_hand, rtol=1e-10)


def test_daily_buyers_and_empty_input_do_not_break_the_predictions():
    model = clv.BgNbd(r=0.39, alpha=30.0, a=0.03, b=0.08, ll=0.0, customers=0)
    x = np.array([0.0, 1.0, 700.0, 2000.0])
    t_x = np.array([0.0, 10.0, 729.0, 3000.0])
    T = np.array([5.0, 700.0, 730.0, 3001.0])
    expected = clv.expected_purchases_at(model, [90, 365], x, t_x, T)
    assert np.all(np.isfinite(expected)) and np.all(expected >= 0)
    assert expected[1, 2] > expected[0, 2] > 50  # a daily buyer keeps buying daily
    assert clv.expected_purchases_at(model, [90], [], [], []).shape == (1, 0)
    assert np.all((clv.probability_alive(model, x, t_x, T) > 0) & (clv.probability_alive(model, x, t_x, T) <= 1))


@pytest.mark.parametrize("frequency, recency, T, monetary, message", [
    ([], [], [], None, "no customers"),
    ([1, -1], [2, 0], [3, 3], None, "cannot be negative"),
    ([1, 2], [4, 1], [3, 3], None, "recency cannot be greater than T"),
    ([0, 2], [1, 1], [3, 3], None, "without repeat purchases has recency 0"),
    ([1.5, 2], [1, 1], [3, 3], None, "whole number"),
    ([1, np.nan], [1, 1], [3, 3], None, "missing"),
    ([1, 2], [1, 1], [3, 3], [10, -2], "monetary_value cannot be negative"),
    ([1, 2], [1, 1], [3, 3], [10, 0], "positive monetary_value"),
])
def test_bad_summaries_are_refused_with_the_rows_named(frequency, recency, T, monetary, message):
    with pytest.raises(clv.ModelError, match=message):
        clv.check_summary(frequency, recency, T, monetary)


def test_data_that_cannot_identify_the_models_is_refused():
    with pytest.raises(clv.ModelError, match="nobody bought twice"):
        clv.fit_bgnbd([0, 0, 0], [0, 0, 0], [5, 6, 7])
    with pytest.raises(clv.ModelError, match="at least two customers"):
        clv.fit_gamma_gamma([0, 3], [0, 10.0])
    with pytest.raises(clv.ModelError, match="spends the same"):
        clv.fit_gamma_gamma([1, 3, 2], [10.0, 10.0, 10.0])
