"""Korean message text: byte counting as the carriers count it, EUC-KR checks, the legal ad labels, variables.

Call ``check_sms_text`` (or ``sms_type``) when a template or a body is written, so that an emoji is refused in the
editor, not at send time."""
from __future__ import annotations

import re
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

SMS_MAX_BYTES = 90
LMS_MAX_BYTES = 2000
LMS_SUBJECT_MAX_BYTES = 40
AD_PREFIX = "(광고)"
# Variants people type that the law does not accept: they are removed and the exact label is put in their place.
_AD_LABEL_VARIANTS = re.compile(r"^\s*[\(\[\{<（［【]\s*광\s*고\s*[\)\]\}>）］】]\s*")
_VARIABLE = re.compile(r"#\{([A-Za-z0-9_가-힣]+)\}")


def byte_length(text: str) -> int:
    """Bytes in CP949 (EUC-KR's superset used by Korean carriers): Hangul 2, ASCII 1. Unencodable text raises."""
    return len(text.encode("cp949"))


def unencodable_characters(text: str) -> list[str]:
    bad = []
    for ch in text:
        try:
            ch.encode("cp949")
        except UnicodeEncodeError:
            if ch not in bad:
                bad.append(ch)
    return bad


def check_sms_text(text: str, *, field: str = "body") -> None:
    """Raise ValidationError naming the characters an SMS/LMS cannot carry (emoji and other non-EUC-KR text)."""
    bad = unencodable_characters(text)
    if bad:
        raise ValidationError({field: [_("These characters cannot be sent by SMS (EUC-KR): %(chars)s") % {"chars": " ".join(bad)}]})


@dataclass(frozen=True)
class SmsShape:
    subtype: str  # "sms" | "lms"
    bytes: int
    limit: int


def sms_type(text: str) -> SmsShape:
    """SMS up to 90 bytes, else LMS up to 2,000 bytes; longer raises. For the editor's live counter too."""
    check_sms_text(text)
    size = byte_length(text)
    if size <= SMS_MAX_BYTES:
        return SmsShape("sms", size, SMS_MAX_BYTES)
    if size <= LMS_MAX_BYTES:
        return SmsShape("lms", size, LMS_MAX_BYTES)
    raise ValidationError({"body": [_("A text message holds at most 2,000 bytes (this one has %(n)d).") % {"n": size}]})


def strip_ad_label(text: str) -> str:
    return _AD_LABEL_VARIANTS.sub("", text, count=1)


def render_variables(text: str, variables: dict | None) -> str:
    """Replace #{name} (KakaoTalk's template syntax, used on every channel). A missing variable is an error."""
    variables = variables or {}
    missing = sorted({m for m in _VARIABLE.findall(text) if m not in variables})
    if missing:
        raise ValidationError({"variables": [_("Missing values for: %(names)s") % {"names": ", ".join(missing)}]})
    return _VARIABLE.sub(lambda m: str(variables[m.group(1)]), text)


def label_sms_ad(body: str, *, sender_name: str, contact: str, optout_number: str) -> str:
    """'(광고)' exactly first, then the sender; the sender's contact and '무료수신거부 080-…' last (정보통신망법 §50)."""
    return f"{AD_PREFIX}{sender_name}\n{strip_ad_label(body).strip()}\n문의 {contact}\n무료수신거부 {optout_number}"


def label_subject(subject: str) -> str:
    return f"{AD_PREFIX}{strip_ad_label(subject).strip()}"


def label_email_ad_text(body: str, *, sender_name: str, contact: str, unsubscribe_url: str) -> str:
    return (f"{strip_ad_label(body).strip()}\n\n--\n{sender_name} · {contact}\n"
            f"수신을 원하지 않으시면 여기를 누르세요 (unsubscribe): {unsubscribe_url}")


def label_post_ad(body: str, *, sender_name: str, contact: str) -> str:
    return f"{AD_PREFIX}{sender_name}\n{strip_ad_label(body).strip()}\n{sender_name} · {contact}"
