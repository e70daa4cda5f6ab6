"""Spam protection of the public request form, without a captcha or a third party:

- a honeypot field, hidden from people, that bots fill in (a filled one is answered like a success and writes nothing);
- a signed timestamp issued with the form: a form sent sooner than DANGOL_SERVICE_FORM_MIN_SECONDS after it was
  shown, or with a token that is forged or older than a day, is refused;
- a rate limit per client IP through the cache (DANGOL_SERVICE_FORM_PER_HOUR accepted requests per hour); with the
  default local-memory cache the count is per web process: a brake, not a wall.
"""
from __future__ import annotations

import time

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

SALT = "dangol.service.public-form"
MAX_AGE_S = 24 * 3600
WINDOW_S = 3600


def form_token(now: float | None = None) -> str:
    return signing.Signer(salt=SALT).sign_object({"t": int(now if now is not None else time.time())})


def check_form_token(token: str, now: float | None = None) -> None:
    """Raise ValidationError when the token is forged, too old, or the form came back too fast."""
    now = now if now is not None else time.time()
    try:
        issued = signing.Signer(salt=SALT).unsign_object(token or "")["t"]
        issued = int(issued)
    except (signing.BadSignature, KeyError, TypeError, ValueError, UnicodeDecodeError):
        raise ValidationError(_("The form has expired. Please send it again."), code="bad_token")
    if now - issued > MAX_AGE_S:
        raise ValidationError(_("The form has expired. Please send it again."), code="expired")
    if now - issued < settings.DANGOL_SERVICE_FORM_MIN_SECONDS:
        raise ValidationError(_("That was very fast. Please check your request and send it again."), code="too_fast")


def _key(ip: str) -> str:
    return f"service:form:{ip}"


def is_rate_limited(ip: str | None) -> bool:
    return (cache.get(_key(ip or "unknown")) or 0) >= settings.DANGOL_SERVICE_FORM_PER_HOUR


def count_request(ip: str | None) -> None:
    key = _key(ip or "unknown")
    if cache.add(key, 1, WINDOW_S):
        return
    try:
        cache.incr(key)
    except ValueError:
        cache.set(key, 1, WINDOW_S)
