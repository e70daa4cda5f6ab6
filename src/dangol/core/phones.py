"""Korean phone numbers: parse to E.164, show in national form, mask for lists."""
from __future__ import annotations

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _


def normalize_phone(raw: str) -> str:
    """Return the E.164 form (+821012345678) of a phone number in any common format, or raise ValidationError."""
    text = (raw or "").strip()
    if not text:
        raise ValidationError(_("Enter a phone number."), code="required")
    try:
        parsed = phonenumbers.parse(text, settings.DANGOL_PHONE_REGION)
    except phonenumbers.NumberParseException:
        raise ValidationError(_("“%(value)s” is not a phone number."), code="invalid", params={"value": text})
    if not phonenumbers.is_valid_number(parsed):
        raise ValidationError(_("“%(value)s” is not a valid phone number."), code="invalid", params={"value": text})
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def try_normalize_phone(raw: str) -> str | None:
    try:
        return normalize_phone(raw)
    except ValidationError:
        return None


def display_phone(e164: str) -> str:
    """010-1234-5678 for Korean numbers, the international form for others."""
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    if parsed.country_code == 82:
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def mask_phone(e164: str) -> str:
    """010-****-5678: the middle group hidden, the last four digits kept for the counter."""
    shown = display_phone(e164)
    groups = shown.replace(" ", "-").split("-")
    if len(groups) >= 3:
        middle = ["*" * len(g) for g in groups[1:-1]]
        return "-".join([groups[0], *middle, groups[-1]])
    digits = "".join(ch for ch in shown if ch.isdigit())
    return "*" * max(len(digits) - 4, 0) + digits[-4:]


def last_four(e164: str) -> str:
    digits = "".join(ch for ch in e164 if ch.isdigit())
    return digits[-4:]


def looks_like_phone_query(query: str) -> bool:
    """True when a search box entry is all digits and separators (a phone or its last four digits)."""
    stripped = query.strip()
    return bool(stripped) and all(ch.isdigit() or ch in "+-() ." for ch in stripped) and any(ch.isdigit() for ch in stripped)
