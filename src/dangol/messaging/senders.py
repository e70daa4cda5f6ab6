"""Who an ad says it comes from, and the signed one-click unsubscribe tokens."""
from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core import signing

from .models import SenderProfile

UNSUBSCRIBE_SALT = "dangol.messaging.unsubscribe"


@dataclass(frozen=True)
class Sender:
    name: str
    contact: str
    optout_number: str
    sms_from: str
    email_from: str


def sender_for(unit) -> Sender:
    """The unit's own sender profile, else the group's (a profile without unit), else the settings' defaults."""
    profile = None
    if unit is not None:
        profile = SenderProfile.objects.filter(unit=unit).first()
    if profile is None:
        profile = SenderProfile.objects.filter(unit__isnull=True).first()
    defaults = settings.MESSAGING_SENDER
    if profile is None:
        return Sender(defaults["NAME"], defaults["CONTACT"], defaults["OPTOUT_NUMBER"], defaults["SMS_FROM"], settings.DEFAULT_FROM_EMAIL)
    return Sender(profile.name, profile.contact, profile.optout_number, profile.sms_from or defaults["SMS_FROM"],
                  profile.email_from or settings.DEFAULT_FROM_EMAIL)


def unsubscribe_token(*, customer_id: int, channel: str) -> str:
    """A signed, unexpiring token naming the customer and channel (no login needed to opt out, nothing guessable)."""
    # No timestamp: the link in the body and the List-Unsubscribe header are the same, and an old email still works.
    return signing.Signer(salt=UNSUBSCRIBE_SALT).sign(f"{customer_id}.{channel}")


def read_unsubscribe_token(token: str) -> tuple[int, str]:
    """(customer_id, channel) or raises django.core.signing.BadSignature."""
    value = signing.Signer(salt=UNSUBSCRIBE_SALT).unsign(token)
    customer_id, _, channel = value.partition(".")
    return int(customer_id), channel


def unsubscribe_url(token: str) -> str:
    from django.urls import reverse

    return settings.PUBLIC_BASE_URL + reverse("api:messaging_unsubscribe", kwargs={"token": token})


def opt_out_page_url(token: str) -> str:
    """The page a person opens from the link in a message (GET shows one button; the staff app's public page), or the
    RFC 8058 endpoint when the web app is not installed."""
    from django.urls import NoReverseMatch, reverse

    try:
        return settings.PUBLIC_BASE_URL + reverse("web:messaging_opt_out", kwargs={"token": token})
    except NoReverseMatch:
        return unsubscribe_url(token)
