"""Validate and normalise whole columns at once (polars), with a row-level error for every bad value.

The rules are the app's own (``customers.services.clean_customer_input``, ``core.phones.normalize_phone``,
``validate_email``), applied as column expressions so that a million rows take seconds, not an hour. Where a
vectorised rule cannot decide (a foreign phone number, an unusual email), the row's value goes through the app's
per-value function, so the result is the same as typing the value into the form — the tests check that parity.
"""
from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

import polars as pl
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _
from phonenumbers import PhoneMetadata

from dangol.core.phones import normalize_phone
from dangol.core.regions import SIDO

SEOUL = "Asia/Seoul"

# Error codes → message (English source, Korean through the catalogue). %(row)s is another line of the file.
MESSAGES = {
    "ragged": _("The row has a different number of fields than the header."),
    "name_missing": _("The name is missing."),
    "name_too_long": _("A name has at most 100 characters."),
    "key_missing": _("The row has no customer id, phone or email to match it by."),
    "phone_invalid": _("Not a valid phone number."),
    "email_invalid": _("Not a valid email address."),
    "gender_invalid": _("Not a gender (M/F, 남/여)."),
    "date_invalid": _("Not a date (write 1990-01-31, 1990.01.31, 19900131 or 90/01/31)."),
    "date_future": _("The date is in the future."),
    "date_too_old": _("The date is before 1900."),
    "flag_invalid": _("Not a yes/no value (Y/N, 동의/미동의, 1/0, O/X)."),
    "postal_invalid": _("A postal code has five digits."),
    "source_id_too_long": _("An id has at most 60 characters."),
    "night_without_marketing": _("Night-time advertising needs the advertising consent of SMS or KakaoTalk in the same row."),
    "duplicate_in_file": _("The same customer is already on row %(row)s of this file."),
    "order_no_missing": _("The order number is missing."),
    "order_no_too_long": _("An order number has at most 60 characters."),
    "datetime_invalid": _("Not a date and time (write 2024-03-01 14:30 or 2024.03.01)."),
    "sku_missing": _("The product code is missing."),
    "product_unknown": _("No product with this code at this business unit."),
    "quantity_invalid": _("The quantity must be a whole number other than 0."),
    "price_invalid": _("The price must be a whole number of won, 0 or more."),
    "kind_invalid": _("Not sale or refund (판매/반품)."),
    "channel_invalid": _("Not a sales channel (store, phone, web, app / 매장, 전화, 웹, 앱)."),
    "customer_unknown": _("No customer with this id or phone at this business unit."),
    "order_inconsistent": _("Another line of this order has a different date, customer or kind (row %(row)s)."),
    "order_line_rejected": _("Another line of this order was rejected (row %(row)s); an order is imported whole or not at all."),
    "order_exists": _("This order number was imported before with different lines; imported orders are not changed."),
    "refund_unknown": _("The refunded order is not in Dangol (neither in this file nor imported before)."),
    "refund_twice": _("This order has already been refunded."),
    "refund_too_large": _("The refund is larger than the order it refunds."),
}


@functools.cache
def message_pair(code: str, row: int | None = None) -> tuple[str, str]:
    """The reason in English and in Korean, for the error report."""
    params = {"row": row}
    texts = []
    for language in ("en", "ko"):
        with translation.override(language):
            texts.append(str(MESSAGES[code]) % params if "%(row)s" in str(MESSAGES[code]) else str(MESSAGES[code]))
    return texts[0], texts[1]


@dataclass
class Checked:
    """Normalised good rows, and one error row per bad value (``__row``, column, value, code, ref_row)."""

    good: pl.DataFrame
    errors: pl.DataFrame


ERROR_SCHEMA = {"__row": pl.Int64, "column": pl.Utf8, "value": pl.Utf8, "code": pl.Utf8, "ref_row": pl.Int64}


def empty_errors() -> pl.DataFrame:
    return pl.DataFrame(schema=ERROR_SCHEMA)


def error_rows(frame: pl.DataFrame, mask: pl.Expr, *, column: str, value: str | None, code: str,
               ref_row: pl.Expr | None = None) -> pl.DataFrame:
    """The error rows where ``mask`` holds; ``value`` is the source column to quote (None: no value)."""
    picked = frame.filter(mask)
    return picked.select(
        pl.col("__row"),
        pl.lit(column, dtype=pl.Utf8).alias("column"),
        (pl.col(value).cast(pl.Utf8).str.slice(0, 200) if value else pl.lit("", dtype=pl.Utf8)).alias("value"),
        pl.lit(code, dtype=pl.Utf8).alias("code"),
        (ref_row if ref_row is not None else pl.lit(None, dtype=pl.Int64)).cast(pl.Int64).alias("ref_row"),
    )


# --- text ---------------------------------------------------------------------------------------------------------

def clean_text(expr: pl.Expr) -> pl.Expr:
    """NFC, whitespace collapsed and trimmed: the form names are stored in."""
    return expr.fill_null("").str.normalize("NFC").str.replace_all(r"\s+", " ").str.strip_chars()


# --- phones -------------------------------------------------------------------------------------------------------

@functools.cache
def _korean_number_pattern() -> str:
    """A full-match pattern for valid Korean national numbers, built from phonenumbers' own metadata: the general
    pattern and one of the number types (what ``is_valid_number`` checks)."""
    meta = PhoneMetadata.metadata_for_region("KR")
    types = ["fixed_line", "mobile", "toll_free", "premium_rate", "shared_cost", "personal_number", "voip", "pager",
             "uan", "voicemail"]
    patterns = [getattr(meta, name).national_number_pattern for name in types
                if getattr(meta, name, None) is not None and getattr(meta, name).national_number_pattern]
    return f"^(?:{'|'.join(f'(?:{p})' for p in patterns)})$", f"^(?:{meta.general_desc.national_number_pattern})$"


def normalize_phones(raw: pl.Series) -> pl.Series:
    """E.164 for each value; "" for a blank one; null for a value that is not a valid phone number.

    Korean numbers in the usual shapes (010-1234-5678, 01012345678, +82 10…, 1012345678 from Excel that dropped the
    leading zero) are decided by column expressions; anything else by ``normalize_phone`` one distinct value at a time.
    """
    frame = pl.DataFrame({"raw": raw.fill_null("").str.strip_chars()})
    types_pattern, general_pattern = _korean_number_pattern()
    digits = pl.col("raw").str.replace_all(r"\D", "")
    plain = pl.col("raw").str.contains(r"^\+?[0-9\s\-().]+$")
    national = (
        pl.when(pl.col("raw").str.starts_with("+82")).then(digits.str.slice(2).str.strip_prefix("0"))
        .when(pl.col("raw").str.starts_with("+")).then(pl.lit(None, dtype=pl.Utf8))
        .when(digits.str.starts_with("00")).then(pl.lit(None, dtype=pl.Utf8))
        .when(digits.str.starts_with("0")).then(digits.str.slice(1))
        .when(digits.str.starts_with("82")).then(pl.lit(None, dtype=pl.Utf8))
        .otherwise(digits)
    )
    frame = frame.with_columns(national=pl.when(plain).then(national).otherwise(pl.lit(None, dtype=pl.Utf8)))
    # Carrier-selection prefixes (08x…) are parsed specially by phonenumbers: leave those to it.
    fast_ok = (pl.col("national").is_not_null() & ~pl.col("national").str.contains(r"^8(?:[1-46-8]|5)")
               & pl.col("national").str.contains(types_pattern) & pl.col("national").str.contains(general_pattern))
    frame = frame.with_columns(
        e164=pl.when(pl.col("raw") == "").then(pl.lit(""))
        .when(fast_ok).then(pl.lit("+82") + pl.col("national"))
        .otherwise(pl.lit(None, dtype=pl.Utf8))
    )
    undecided = frame.filter(pl.col("e164").is_null()).get_column("raw").unique().to_list()
    if undecided:
        decided = {value: _slow_phone(value) for value in undecided}
        frame = frame.with_columns(
            e164=pl.coalesce(pl.col("e164"), pl.col("raw").replace_strict(decided, default=None, return_dtype=pl.Utf8)))
    return frame.get_column("e164")


def _slow_phone(value: str) -> str | None:
    try:
        return normalize_phone(value)
    except ValidationError:
        return None


# --- emails -------------------------------------------------------------------------------------------------------

# Narrower than Django's validate_email: what matches here also passes it; the rest is checked by validate_email.
_SIMPLE_EMAIL = r"^[a-z0-9_%+\-]+(?:\.[a-z0-9_%+\-]+)*@(?:[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"


def normalize_emails(raw: pl.Series) -> pl.Series:
    """Lower-cased and trimmed; "" for blank; null for an invalid address."""
    frame = pl.DataFrame({"email": raw.fill_null("").str.strip_chars().str.to_lowercase()})
    frame = frame.with_columns(ok=(pl.col("email") == "") | (pl.col("email").str.contains(_SIMPLE_EMAIL)
                                                            & (pl.col("email").str.len_chars() <= 254)))
    unusual = frame.filter(~pl.col("ok")).get_column("email").unique().to_list()
    if unusual:
        good = {value: value for value in unusual if _valid_email(value)}
        frame = frame.with_columns(ok=pl.col("ok") | pl.col("email").is_in(list(good)))
    return frame.select(pl.when(pl.col("ok")).then(pl.col("email")).otherwise(None)).to_series()


def _valid_email(value: str) -> bool:
    try:
        validate_email(value)
    except ValidationError:
        return False
    return len(value) <= 254


# --- yes/no, gender -----------------------------------------------------------------------------------------------

YES = {"y", "yes", "1", "o", "true", "t", "동의", "예", "네", "수신", "수신동의", "ㅇ"}
NO = {"n", "no", "0", "x", "false", "f", "미동의", "비동의", "거부", "수신거부", "아니오", "아니요", "미수신"}
LUNAR_YES = YES | {"음", "음력", "lunar", "l", "윤", "윤달", "음력윤달", "leap"}  # a leap month is a lunar month
LUNAR_NO = NO | {"양", "양력", "solar", "s"}
LEAP = {"윤", "윤달", "음력윤달", "leap"}


def yes_no(expr: pl.Expr, *, yes: set[str] = YES, no: set[str] = NO) -> tuple[pl.Expr, pl.Expr]:
    """(value, invalid): value is True/False, null when blank; invalid marks a value that is neither."""
    text = expr.fill_null("").str.strip_chars().str.to_lowercase()
    value = pl.when(text.is_in(list(yes))).then(True).when(text.is_in(list(no))).then(False).otherwise(None)
    invalid = (text != "") & ~text.is_in(list(yes | no))
    return value, invalid


GENDERS = {"m": "M", "male": "M", "man": "M", "남": "M", "남자": "M", "남성": "M",
           "f": "F", "female": "F", "woman": "F", "여": "F", "여자": "F", "여성": "F"}


# --- dates --------------------------------------------------------------------------------------------------------

# The spaces after a separator stay, so that the space before a time survives a date written "2024. 3. 1. 14:30".
_DATE = r"^(?<y>\d{4}|\d{2})-\s*(?<m>\d{1,2})-\s*(?<d>\d{1,2})-?(?:[ T]\s*(?<rest>.*))?$"
# 14:30, 14:30:15, 14:30:15.5 (its "." rewritten to "-" with the date's separators), 오후 2:30 and 2:30 PM (Excel's
# 12-hour clock in Korean and English).
_TIME = r"^(?:(?<P>오전|오후|AM|PM|am|pm)\s*)?(?<H>\d{1,2}):(?<M>\d{2})(?::(?<S>\d{2})(?:[.\-]\d+)?)?(?:\s*(?<Q>AM|PM|am|pm))?$"


def date_parts(expr: pl.Expr, today: dt.date) -> pl.Expr:
    """A struct of y, m, d (Int32, null when the text is not in one of the common Korean date formats: 1990-01-31,
    1990.01.31, 1990/1/31, 19900131, 90/01/31, 900131, 1990년 1월 31일, with an optional time after a space) and rest
    (the time part). Two-digit years: up to this year's two digits → 20xx, else 19xx."""
    text = expr.fill_null("").str.strip_chars()
    # One shape for all: separators become "-", run-together digits are split, 년/월/일 are separators too.
    text = text.str.replace_all(r"\s*(?:[./\-]|년|월)", "-").str.replace(r"일(\s|$)", "$1")
    text = text.str.replace(r"^(\d{4})(\d{2})(\d{2})(\s|T|$)", "$1-$2-$3$4").str.replace(r"^(\d{2})(\d{2})(\d{2})$", "$1-$2-$3")
    groups = text.str.extract_groups(_DATE)
    y = groups.struct.field("y")
    year = y.cast(pl.Int32, strict=False)
    short = today.year % 100
    year = (pl.when(y.str.len_chars() == 2)
            .then(pl.when(year <= short).then(year + 2000).otherwise(year + 1900)).otherwise(year))
    return pl.struct(y=year, m=groups.struct.field("m").cast(pl.Int32, strict=False),
                     d=groups.struct.field("d").cast(pl.Int32, strict=False), rest=groups.struct.field("rest").fill_null(""))


def with_date(frame: pl.DataFrame, source: str, prefix: str, today: dt.date) -> pl.DataFrame:
    """Add {prefix}_y/_m/_d (null when not a date), _date (null when impossible), _seconds (time of day, 0 when none)
    and _time_bad, computing each intermediate column once (an expression reused in several places is evaluated
    again each time)."""
    frame = frame.with_columns(date_parts(pl.col(source), today).alias(f"{prefix}_parts"))
    frame = frame.with_columns(
        pl.col(f"{prefix}_parts").struct.field("y").alias(f"{prefix}_y"),
        pl.col(f"{prefix}_parts").struct.field("m").alias(f"{prefix}_m"),
        pl.col(f"{prefix}_parts").struct.field("d").alias(f"{prefix}_d"),
        pl.col(f"{prefix}_parts").struct.field("rest").alias(f"{prefix}_rest"),
    ).drop(f"{prefix}_parts")
    frame = frame.with_columns(time_parts(pl.col(f"{prefix}_rest")).alias(f"{prefix}_time_parts"))
    seconds, bad = time_of_day(pl.col(f"{prefix}_rest"), parts=pl.col(f"{prefix}_time_parts"))
    return frame.with_columns(
        pl.concat_str([pl.col(f"{prefix}_y").cast(pl.Utf8), pl.col(f"{prefix}_m").cast(pl.Utf8).str.zfill(2),
                       pl.col(f"{prefix}_d").cast(pl.Utf8).str.zfill(2)], separator="-")
        .str.to_date("%Y-%m-%d", strict=False).alias(f"{prefix}_date"),
        seconds.alias(f"{prefix}_seconds"), bad.alias(f"{prefix}_time_bad"),
    ).drop(f"{prefix}_time_parts")


def time_parts(rest: pl.Expr) -> pl.Expr:
    """The groups of a time of day: H, M, S, and P or Q for 오전/오후 or AM/PM."""
    return rest.str.strip_chars().str.extract_groups(_TIME)


def time_of_day(rest: pl.Expr, *, parts: pl.Expr | None = None) -> tuple[pl.Expr, pl.Expr]:
    """(seconds since midnight or 0 when no time, invalid flag). ``parts``: ``time_parts(rest)`` in a column already
    (each use of an expression evaluates it again, and the hours are used several times)."""
    groups = time_parts(rest) if parts is None else parts
    hours = groups.struct.field("H").cast(pl.Int32, strict=False)
    half = pl.coalesce(groups.struct.field("P"), groups.struct.field("Q")).str.to_lowercase()  # 오전/오후, AM/PM: 12-hour clock
    hours = (pl.when(half.is_null()).then(hours).when(hours > 12).then(None)
             .when(half.is_in(["오후", "pm"])).then(pl.when(hours < 12).then(hours + 12).otherwise(hours))
             .otherwise(pl.when(hours == 12).then(0).otherwise(hours)))
    minutes = groups.struct.field("M").cast(pl.Int32, strict=False)
    seconds = groups.struct.field("S").cast(pl.Int32, strict=False).fill_null(0)
    given = rest.str.strip_chars() != ""
    valid = hours.is_not_null() & (hours < 24) & (minutes < 60) & (seconds < 60)
    value = pl.when(given & valid).then(hours * 3600 + minutes * 60 + seconds).otherwise(0)
    return value, given & ~valid.fill_null(False)


def seoul_datetime(date: pl.Expr, seconds: pl.Expr) -> pl.Expr:
    """A Korean wall-clock date and time as an aware UTC datetime (Korea has no daylight saving time)."""
    return (date.cast(pl.Datetime("us")) + pl.duration(seconds=seconds)).dt.replace_time_zone(SEOUL).dt.convert_time_zone("UTC")


# --- addresses ----------------------------------------------------------------------------------------------------

@functools.cache
def _sido_lookup() -> dict[str, str]:
    return {alias.lower(): name for name, aliases in SIDO for alias in [name, *aliases]}


_ADDRESS = r"^(?<first>\S+)(?:\s+(?<district>\S+?(?:시|군|구))(?:\s+(?<ward>\S+구))?)?(?:\s+(?<rest>.*))?$"


def with_address(frame: pl.DataFrame, source: str) -> pl.DataFrame:
    """Add sido, sigungu and address_line from the free-text address column ``source``."""
    frame = frame.with_columns(clean_text(pl.col(source)).alias("_address_text"))
    frame = frame.with_columns(pl.col("_address_text").str.extract_groups(_ADDRESS).alias("_address_parts"))
    frame = frame.with_columns(
        *(pl.col("_address_parts").struct.field(name).fill_null("").alias(f"_address_{name}") for name in ("first", "district", "ward", "rest")))
    frame = frame.with_columns(
        _address_sido=pl.col("_address_first").str.to_lowercase().replace_strict(_sido_lookup(), default="", return_dtype=pl.Utf8),
        _address_with_ward=pl.col("_address_district").str.ends_with("시") & (pl.col("_address_ward") != ""),
    )
    known = pl.col("_address_sido") != ""
    sigungu = (pl.when(pl.col("_address_with_ward"))
               .then(pl.concat_str([pl.col("_address_district"), pl.col("_address_ward")], separator=" "))
               .otherwise(pl.col("_address_district")))
    line = (pl.when(pl.col("_address_with_ward") | (pl.col("_address_ward") == "")).then(pl.col("_address_rest"))
            .otherwise(pl.concat_str([pl.col("_address_ward"), pl.col("_address_rest")], separator=" ").str.strip_chars()))
    frame = frame.with_columns(
        sido=pl.col("_address_sido"),
        sigungu=pl.when(known).then(sigungu).otherwise(pl.lit("")).str.slice(0, 30),
        address_line=pl.when(known).then(line).otherwise(pl.col("_address_text")).str.slice(0, 200),
    )
    return frame.drop([c for c in frame.columns if c.startswith("_address_")])


def now_seoul_date() -> dt.date:
    return timezone.localdate()
