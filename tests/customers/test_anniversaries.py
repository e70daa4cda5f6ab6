import datetime as dt

from dangol.customers.anniversaries import next_occurrence, solar_date_in_year


def test_it_converts_a_lunar_new_year_birthday_to_its_solar_date():
    # 음력 1월 1일 (설날) fell on 2026-02-17 and falls on 2027-02-07 (KARI tables).
    assert solar_date_in_year(year=2026, month=1, day=1, is_lunar=True) == dt.date(2026, 2, 17)
    assert solar_date_in_year(year=2027, month=1, day=1, is_lunar=True) == dt.date(2027, 2, 7)


def test_it_finds_the_next_lunar_birthday_after_this_years_has_passed():
    assert next_occurrence(month=1, day=1, is_lunar=True, today=dt.date(2026, 11, 24)) == dt.date(2027, 2, 7)


def test_a_late_lunar_month_of_last_lunar_year_can_fall_in_this_solar_year():
    # 음력 12월 15일 of lunar year 2025 falls in February 2026.
    nxt = next_occurrence(month=12, day=15, is_lunar=True, today=dt.date(2026, 1, 1))
    assert nxt is not None and nxt.year == 2026 and nxt.month in (1, 2)


def test_solar_anniversaries_and_leap_days():
    assert next_occurrence(month=12, day=25, is_lunar=False, today=dt.date(2026, 11, 24)) == dt.date(2026, 12, 25)
    assert next_occurrence(month=3, day=1, is_lunar=False, today=dt.date(2026, 11, 24)) == dt.date(2027, 3, 1)
    assert solar_date_in_year(year=2027, month=2, day=29, is_lunar=False) == dt.date(2027, 2, 28)
    assert solar_date_in_year(year=2028, month=2, day=29, is_lunar=False) == dt.date(2028, 2, 29)


def test_a_leap_month_that_does_not_exist_this_year_falls_back_to_the_plain_month():
    plain = solar_date_in_year(year=2027, month=3, day=10, is_lunar=True)
    assert solar_date_in_year(year=2027, month=3, day=10, is_lunar=True, is_leap_month=True) is not None
    assert plain is not None
