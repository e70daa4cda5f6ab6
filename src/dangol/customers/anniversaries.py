"""The next solar date of a yearly anniversary, converting lunar dates with korean-lunar-calendar."""
from __future__ import annotations

import calendar
import datetime as dt

from korean_lunar_calendar import KoreanLunarCalendar


def solar_date_in_year(*, year: int, month: int, day: int, is_lunar: bool, is_leap_month: bool = False) -> dt.date | None:
    """The solar date on which the anniversary falls in the given (lunar or solar) year, or None out of range."""
    if not is_lunar:
        if month == 2 and day == 29 and not calendar.isleap(year):
            return dt.date(year, 2, 28)  # leap-day birthdays are kept on 28 February in common years
        try:
            return dt.date(year, month, day)
        except ValueError:
            return None
    converter = KoreanLunarCalendar()
    # A leap month or a 30th day does not exist every year; fall back to the plain month, then to day 29.
    for leap, lunar_day in ((is_leap_month, day), (False, day), (False, min(day, 29))):
        if converter.setLunarDate(year, month, lunar_day, leap):
            return dt.date(converter.solarYear, converter.solarMonth, converter.solarDay)
    return None


def next_occurrence(*, month: int, day: int, is_lunar: bool, is_leap_month: bool = False, today: dt.date) -> dt.date | None:
    """The first solar date on or after ``today`` on which the anniversary is celebrated."""
    # A lunar date of lunar year Y falls between late January of Y and February of Y+1, so look one year back.
    for year in (today.year - 1, today.year, today.year + 1):
        candidate = solar_date_in_year(year=year, month=month, day=day, is_lunar=is_lunar, is_leap_month=is_leap_month)
        if candidate and candidate >= today:
            return candidate
    return None


def validate_date_parts(*, year: int | None, month: int, day: int, is_lunar: bool) -> str | None:
    """An error message for impossible dates, or None."""
    if not 1 <= month <= 12:
        return "month"
    limit = 30 if is_lunar else calendar.monthrange(year or 2000, month)[1]
    if not 1 <= day <= limit:
        return "day"
    if year is not None and not 1900 <= year <= 2100:
        return "year"
    return None
