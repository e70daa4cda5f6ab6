"""The member card link: signed, time-limited, no login.

The token is the member number signed with Django's TimestampSigner under a salt of its own (a token of another
part of the app never opens a card) and checked against the program's validity. A client that sends many wrong
tokens is answered 404 for every token for a while, so that probing gains nothing (the counter is per web process,
like the API's throttle: a brake, not a wall — the tokens themselves cannot be forged).
"""
from __future__ import annotations

import datetime as dt

from django.core import signing
from django.core.cache import cache
from django.urls import reverse

from .models import Program

SALT = "dangol.loyalty.member-card"
BAD_TOKEN_LIMIT = 20  # wrong tokens per client and window
BAD_TOKEN_WINDOW_S = 600


def card_token(member_number: str) -> str:
    return signing.TimestampSigner(salt=SALT).sign_object({"m": member_number})


def card_path(member_number: str) -> str:
    return reverse("web:loyalty_card", kwargs={"token": card_token(member_number)})


def read_card_token(token: str, *, max_age: dt.timedelta | None = None) -> str | None:
    """The member number of a valid, unexpired token, or None."""
    if not token or len(token) > 300:
        return None
    if max_age is None:
        max_age = dt.timedelta(days=Program.current().card_link_days)
    try:
        value = signing.TimestampSigner(salt=SALT).unsign_object(token, max_age=max_age)
    except (signing.BadSignature, ValueError, TypeError, UnicodeDecodeError):
        return None
    number = value.get("m") if isinstance(value, dict) else None
    return number if isinstance(number, str) and number.isdigit() else None


def _key(client: str) -> str:
    return f"loyalty:card:bad:{client}"


def client_is_blocked(client: str | None) -> bool:
    return bool(client) and (cache.get(_key(client)) or 0) >= BAD_TOKEN_LIMIT


def count_bad_token(client: str | None) -> None:
    if not client:
        return
    key = _key(client)
    if cache.add(key, 1, BAD_TOKEN_WINDOW_S):
        return
    try:
        cache.incr(key)
    except ValueError:
        cache.set(key, 1, BAD_TOKEN_WINDOW_S)
