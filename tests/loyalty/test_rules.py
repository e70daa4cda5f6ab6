"""The program's arithmetic, without the database: member numbers, expiry dates, earn rates and multipliers,
proportional reversal and first-in-first-out spending."""
from __future__ import annotations

import datetime as dt
import zoneinfo

import numpy as np

from dangol.loyalty import rules

SEOUL = zoneinfo.ZoneInfo("Asia/Seoul")


def seconds(*args) -> int:
    return int(dt.datetime(*args, tzinfo=SEOUL).timestamp())


def test_it_computes_the_luhn_check_digit_of_known_numbers():
    assert rules.luhn_digit(np.array([[7, 9, 9, 2, 7, 3, 9, 8, 7, 1]]))[0] == 3
    assert rules.luhn_digit(np.array([[4, 5, 3, 9, 1, 4, 8, 8, 0, 3, 4, 3, 6, 4, 6]]))[0] == 7
    assert rules.is_member_number("000000000000") is True and rules.is_member_number("000000000001") is False
    number = rules.new_member_numbers(1)[0]
    assert rules.is_member_number(number)


def test_it_draws_member_numbers_that_a_typo_gives_away():
    numbers = rules.new_member_numbers(2000)
    assert len(set(numbers)) == 2000
    assert all(len(n) == 12 and n.isdigit() and n[0] != "0" and rules.is_member_number(n) for n in numbers)
    number = numbers[0]
    swapped = number[:3] + str((int(number[3]) + 1) % 10) + number[4:]
    assert not rules.is_member_number(swapped)  # one wrong digit is always caught


def test_it_reads_a_member_number_as_typed_or_scanned():
    number = rules.new_member_numbers(1)[0]
    shown = rules.display_member_number(number)
    assert shown.count(" ") == 2
    assert rules.normalize_member_number(shown) == number
    assert rules.normalize_member_number("-".join([number[:4], number[4:8], number[8:]])) == number
    assert rules.normalize_member_number(number[:-1]) == ""
    assert rules.normalize_member_number("") == ""
    assert rules.normalize_member_number("abc") == ""


def test_codes_avoid_letters_that_look_alike():
    codes = rules.new_codes(500, 8)
    assert all(len(c) == 8 and not set(c) & set("01OIL") for c in codes)


def test_points_expire_at_the_end_of_the_same_day_months_later_in_seoul():
    earned = np.array([seconds(2025, 3, 15, 10, 0), seconds(2025, 1, 31, 23, 30), seconds(2024, 2, 29, 12, 0),
                       seconds(2025, 6, 1, 0, 30)])
    expires = rules.expiry_seconds(earned, 12)
    as_dates = [dt.datetime.fromtimestamp(int(s), SEOUL) for s in expires]
    assert as_dates[0] == dt.datetime(2026, 3, 16, 0, 0, tzinfo=SEOUL)  # the end of 15 March 2026
    assert as_dates[1] == dt.datetime(2026, 2, 1, 0, 0, tzinfo=SEOUL)  # 23:30 in Seoul is still 31 January
    assert as_dates[2] == dt.datetime(2025, 3, 1, 0, 0, tzinfo=SEOUL)  # 29 February → the last day of February
    assert as_dates[3] == dt.datetime(2026, 6, 2, 0, 0, tzinfo=SEOUL)
    one_month = rules.expiry_seconds(np.array([seconds(2025, 1, 31, 9, 0)]), 1)
    assert dt.datetime.fromtimestamp(int(one_month[0]), SEOUL) == dt.datetime(2025, 3, 1, tzinfo=SEOUL)  # end of 28 Feb


def test_points_follow_the_unit_rate_the_category_and_the_best_promotion():
    config = rules.EarnConfig(default_rate_bp=100, unit_rates={2: 300}, category_pct={7: 200, 8: 0},
                              promotions=[rules.Promo(None, None, seconds(2025, 12, 1), seconds(2026, 1, 1), 200),
                                          rules.Promo(1, 7, seconds(2025, 12, 20), seconds(2025, 12, 26), 300)])
    outside, december, christmas = seconds(2025, 11, 30, 12), seconds(2025, 12, 10), seconds(2025, 12, 24)
    amount = np.array([10_000, 10_000, 10_000, 10_000, 10_000, 10_000, 10_000, 9_999])
    unit = np.array([1, 2, 1, 1, 1, 1, 1, 1])
    category = np.array([5, 5, 7, 8, 5, 7, 7, 5])
    at = np.array([outside, outside, outside, outside, december, december, christmas, outside])
    points = rules.line_points(amount, unit, category, at, config)
    # 1 %; 3 % at unit 2; ×2 category; category at 0 earns nothing; ×2 in December; ×2 ×2; promotions do not stack
    # (×3 beats ×2), the category still counts; rounded down.
    assert points.tolist() == [100, 300, 200, 0, 200, 400, 600, 99]


def test_a_line_worth_billions_does_not_overflow():
    config = rules.EarnConfig(default_rate_bp=10_000, category_pct={1: 1000},
                              promotions=[rules.Promo(None, None, 0, 2**40, 1000)])
    points = rules.line_points(np.array([5 * 10**12]), np.array([1]), np.array([1]), np.array([10]), config)
    assert points[0] == 5 * 10**12 * 100


def test_orders_add_their_categories_then_the_tier_multiplier_applies():
    starts, totals = rules.order_points(np.array([10, 10, 11, 12, 12]), np.array([50, 41, 7, 3, 4]), np.array([150, 100, 110]))
    assert starts.tolist() == [0, 2, 3]
    assert totals.tolist() == [136, 7, 7]  # (50 + 41) × 1.5 = 136.5 → 136; 7 × 1.1 = 7.7 → 7


def test_a_refund_takes_back_points_in_proportion_never_more_than_is_left():
    assert rules.reversal_points(90, 0, -9000, 9000) == 90
    assert rules.reversal_points(90, 0, -4500, 9000) == 45
    assert rules.reversal_points(91, 0, -4500, 9000) == 46  # 45.5, rounded half up
    assert rules.reversal_points(90, 80, -9000, 9000) == 10
    assert rules.reversal_points(90, 90, -9000, 9000) == 0
    assert rules.reversal_points(90, 0, -100, 0) == 90  # a free sale: everything it earned


def test_spending_takes_the_first_lots_first():
    lots = [[1, 30], [2, 50], [3, 100]]
    assert rules.consume_fifo(lots, 60) == 60
    assert lots == [[1, 0], [2, 20], [3, 100]]
    assert rules.consume_fifo(lots, 500) == 120
    assert lots == [[1, 0], [2, 0], [3, 0]]
