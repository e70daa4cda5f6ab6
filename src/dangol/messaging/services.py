"""The one door out: every message to a customer goes through ``send`` (or ``send_bulk`` for campaigns).

``send`` validates, decides (compliance.decide), labels ads, writes the outbox row and its decision, and asks the
delivery engine to dispatch after commit. The outbox row's idempotency key (source | customer | channel |
occurrence) is unique in the database: calling ``send`` again with the same key returns the same Message.

Statuses: queued (waiting for a worker, maybe until ``next_attempt_at``) · held (night: released at 08:00) · blocked
(``reason`` says why) · claimed (a worker is sending it) · sent (the provider accepted it) · delivered · failed ·
uncertain (a worker died between the provider and our commit: reconciled, never resent blindly).
"""
from __future__ import annotations

import datetime as dt
import html as html_lib
import logging
import time
import uuid
from typing import Iterable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from dangol.core import audit
from dangol.core.audit import Actor
from dangol.customers.models import Customer

from . import compliance, text
from .models import Channel, Decision, Kind, Message, Status, Subtype, Suppression
from .senders import Sender, opt_out_page_url, read_unsubscribe_token, sender_for, unsubscribe_token, unsubscribe_url

logger = logging.getLogger("dangol.messaging")

NOT_DISPATCHED = {Channel.POST: "print", Channel.PHONE: "call"}  # handed over by printing / the call list
_VERDICT_STATUS = {compliance.SEND: Status.QUEUED, compliance.HOLD: Status.HELD, compliance.BLOCK: Status.BLOCKED}


def idempotency_key(*, source: str, customer_id: int | None, channel: str, occurrence: str) -> str:
    return f"{source}|{customer_id or '-'}|{channel}|{occurrence}"


def provider_name(channel: str) -> str:
    return NOT_DISPATCHED.get(channel) or settings.MESSAGING_PROVIDERS.get(channel, "file")


def subtype_for(channel: str, kind: str, template_code: str = "") -> str:
    """The channel's concrete type before sizing (SMS may still become LMS): Kakao info is AlimTalk, Kakao ads are
    brand messages — an ad with an AlimTalk template code stays AlimTalk and is blocked by the compliance engine."""
    if channel == Channel.KAKAO:
        return Subtype.ALIMTALK if (template_code or kind == Kind.INFO) else Subtype.BRAND
    return {Channel.SMS: Subtype.SMS, Channel.EMAIL: Subtype.EMAIL, Channel.POST: Subtype.POST, Channel.PHONE: Subtype.PHONE}[channel]


def _validate_call(*, channel, kind, source, occurrence, template_code, subtype=None):
    errors = {}
    if channel not in Channel.values:
        errors["channel"] = [_("Unknown channel.")]
    if kind not in Kind.values:
        errors["kind"] = [_("A message is an ad or information.")]
    if not source or len(source) > 100:
        errors["source"] = [_("Say who sends (at most 100 characters).")]
    if occurrence is None or len(str(occurrence)) > 60:
        errors["occurrence"] = [_("The occurrence has at most 60 characters.")]
    if channel == Channel.KAKAO and kind == Kind.INFO and not template_code:
        errors["template_code"] = [_("AlimTalk needs its approved template code.")]
    if errors:
        raise ValidationError(errors)


class Rendered:
    __slots__ = ("subtype", "subject", "body", "html")

    def __init__(self, subtype, subject, body, html=""):
        self.subtype, self.subject, self.body, self.html = subtype, subject, body, html


def render(*, channel: str, kind: str, subtype: str, body: str, subject: str, variables: dict | None, sender: Sender,
           customer_id: int | None, html: str = "", image=None) -> Rendered:
    """The final text as the customer will see it: variables filled in, ads labelled, SMS sized (with a picture:
    MMS, the LMS limits for the text). Raises ValidationError for text a channel cannot carry (nothing is written
    then)."""
    if image is not None and channel != Channel.SMS:
        raise ValidationError({"image": [_("Only a text message (MMS) carries a picture.")]})
    body = text.render_variables(body or "", variables)
    subject = text.render_variables(subject or "", variables)
    html = text.render_variables(html or "", variables) if html else ""
    is_ad = kind == Kind.AD
    if channel in (Channel.SMS, Channel.KAKAO, Channel.EMAIL) and not body.strip():
        raise ValidationError({"body": [_("Write the message first.")]})
    if channel == Channel.SMS or subtype == Subtype.BRAND:
        if is_ad:
            body = text.label_sms_ad(body, sender_name=sender.name, contact=sender.contact, optout_number=sender.optout_number)
        if channel == Channel.KAKAO:
            return Rendered(subtype, "", body)  # Kakao carries any Unicode; size is the provider's business
        shape = text.sms_type(body)
        if image is not None or shape.subtype == Subtype.LMS:
            subject = subject or sender.name
            text.check_sms_text(subject, field="subject")
            if text.byte_length(subject) > text.LMS_SUBJECT_MAX_BYTES:
                raise ValidationError({"subject": [_("An LMS subject has at most 40 bytes.")]})
        else:
            subject = ""
        return Rendered(Subtype.MMS if image is not None else shape.subtype, subject, body)
    if channel == Channel.EMAIL:
        if not subject.strip():
            raise ValidationError({"subject": [_("An email needs a subject.")]})
        if is_ad:
            subject = text.label_subject(subject)
            url = opt_out_page_url(unsubscribe_token(customer_id=customer_id or 0, channel=channel))
            body = text.label_email_ad_text(body, sender_name=sender.name, contact=sender.contact, unsubscribe_url=url)
            footer = (f'<hr><p style="font-size:12px;color:#666">{html_lib.escape(sender.name)} · {html_lib.escape(sender.contact)}<br>'
                      f'<a href="{html_lib.escape(url)}">수신거부 (unsubscribe)</a></p>')
        else:
            footer = ""
        if not html:
            html = "<p>" + html_lib.escape(text.strip_ad_label(body) if not is_ad else body.split("\n\n--\n")[0]).replace("\n", "<br>") + "</p>"
        return Rendered(subtype, subject[:200], body, html + footer)
    if channel == Channel.POST and is_ad:
        body = text.label_post_ad(body, sender_name=sender.name, contact=sender.contact)
    return Rendered(subtype, subject[:200], body)


def _record(message: Message | None, *, customer_id, channel, kind, stage, outcome, reason, at) -> Decision:
    return Decision(message=message, customer_id=customer_id, channel=channel, kind=kind, stage=stage, outcome=outcome,
                    reason=reason, at=at)


def send(*, customer: Customer, channel: str, kind: str, source: str, occurrence: str, body: str = "", subject: str = "",
         unit=None, template_code: str = "", variables: dict | None = None, actor: Actor | None = None,
         not_before: dt.datetime | None = None, html: str = "", image=None) -> Message:
    """Queue one message to one customer, lawfully, once.

    Returns the Message: ``status`` queued | held (night, released at 08:00) | blocked (``reason``: no_consent,
    refused, suppressed, capped, processing_suspended, erased, merged, no_address, alimtalk_ad); delivery moves it
    on to sent | delivered | failed. The same (source, customer, channel, occurrence) returns the same Message.
    ``body``/``subject`` are the plain text (#{name} variables filled from ``variables``); ads get "(광고)", the
    sender and the opt-out added here. ``kind="info"`` on Kakao is AlimTalk and needs ``template_code``.
    ``not_before`` schedules it later; ``image`` (a ``MessageImage``, see ``messaging.images``) makes an SMS an MMS.
    Raises ValidationError on bad input, writing nothing."""
    occurrence = str(occurrence)
    if customer is None or customer.pk is None:
        raise ValidationError({"customer": [_("Choose a customer.")]})
    key = idempotency_key(source=source, customer_id=customer.pk, channel=channel, occurrence=occurrence)
    existing = Message.objects.filter(idempotency_key=key).first()
    if existing is not None:
        return existing
    _validate_call(channel=channel, kind=kind, source=source, occurrence=occurrence, template_code=template_code)
    subtype = subtype_for(channel, kind, template_code)
    now = timezone.now()
    sender = sender_for(unit)
    rendered = render(channel=channel, kind=kind, subtype=subtype, body=body, subject=subject, variables=variables,
                      sender=sender, customer_id=customer.pk, html=html, image=image)
    facts = compliance.facts_for([customer.pk], channel=channel, now=now).get(customer.pk) or compliance.Facts(customer.pk, erased=True)
    verdict = compliance.decide(facts, channel=channel, kind=kind, subtype=subtype, now=now)
    to_address = compliance.addresses_for([customer.pk], channel).get(customer.pk, "")
    status = _VERDICT_STATUS[verdict.outcome]
    next_at = verdict.release_at if status == Status.HELD else not_before
    message = Message(
        idempotency_key=key, source=source, occurrence=occurrence, customer=customer, unit=unit, channel=channel,
        subtype=rendered.subtype, kind=kind, template_code=template_code, variables=variables or {},
        to_address=to_address if status != Status.BLOCKED else "", subject=rendered.subject, body=rendered.body, html=rendered.html,
        image=image, status=status, reason=verdict.reason if status != Status.QUEUED else "", provider=provider_name(channel),
        next_attempt_at=next_at, created_by=actor.user if actor else None, created_at=now,
    )
    try:
        with transaction.atomic():
            message.save()
            _record(message, customer_id=customer.pk, channel=channel, kind=kind, stage="send", outcome=verdict.outcome,
                    reason=verdict.reason, at=now).save()
    except IntegrityError:
        return Message.objects.get(idempotency_key=key)  # a concurrent call with the same key won
    if status == Status.QUEUED and channel not in NOT_DISPATCHED:
        transaction.on_commit(kick_dispatch)
    return message


def send_test(*, actor: Actor, channel: str, to_address: str, body: str, subject: str = "", kind: str = Kind.AD, unit=None,
              template_code: str = "", variables: dict | None = None, image=None) -> Message:
    """A test send to a staff member's own phone or email: labelled exactly as the customers will see it, no consent
    check (recorded as ``staff_test``). Needs a signed-in staff user."""
    from dangol.core.phones import try_normalize_phone

    if actor is None or actor.user is None or not actor.user.is_active:
        raise ValidationError({"actor": [_("Only staff can send tests.")]})
    if channel not in (Channel.SMS, Channel.KAKAO, Channel.EMAIL):
        raise ValidationError({"channel": [_("Tests go by SMS, KakaoTalk or email.")]})
    _validate_call(channel=channel, kind=kind, source="test", occurrence="", template_code=template_code)
    if channel == Channel.EMAIL:
        from django.core.validators import validate_email

        validate_email(to_address)
    else:
        to_address = try_normalize_phone(to_address) or ""
        if not to_address:
            raise ValidationError({"to_address": [_("Enter a valid phone number.")]})
    subtype = subtype_for(channel, kind, template_code)
    now = timezone.now()
    rendered = render(channel=channel, kind=kind, subtype=subtype, body=body, subject=subject, variables=variables,
                      sender=sender_for(unit), customer_id=None, image=image)
    with transaction.atomic():
        message = Message.objects.create(
            idempotency_key=idempotency_key(source=f"test:{actor.user.pk}", customer_id=None, channel=channel, occurrence=uuid.uuid4().hex),
            source=f"test:{actor.user.pk}", occurrence=now.isoformat()[:60], unit=unit, channel=channel, subtype=rendered.subtype,
            kind=kind, template_code=template_code, variables=variables or {}, to_address=to_address, subject=rendered.subject,
            body=rendered.body, html=rendered.html, image=image, provider=provider_name(channel), is_test=True,
            created_by=actor.user, created_at=now)
        _record(message, customer_id=None, channel=channel, kind=kind, stage="send", outcome="send", reason="staff_test", at=now).save()
        audit.record(actor=actor, action="message.test_send", obj=message, fields=["to_address"])
        transaction.on_commit(kick_dispatch)
    return message


def send_bulk(*, rows: Iterable[dict], channel: str, kind: str, source: str, occurrence: str, unit=None,
              actor: Actor | None = None, body: str = "", subject: str = "", template_code: str = "",
              chunk_size: int | None = None, image=None) -> dict:
    """Queue one message per row, set-based (a 200k-recipient campaign is a few statements per 20,000 rows).

    ``rows``: dicts with ``customer_id`` and optionally ``body``, ``subject``, ``variables`` (else the call's
    ``body``/``subject``). Compliance is decided in SQL (``compliance.annotate_decisions``, the twin of ``decide``),
    each created message gets its ``send`` Decision row. Rows whose key exists already are left alone (idempotent).
    Returns counts: total, created, existing, queued, held, blocked and ``by_reason`` (of the created messages).
    Bad input (unknown customers, text a channel cannot carry) raises ValidationError before anything is written.
    Outside a transaction every chunk of ``chunk_size`` (20,000) rows commits on its own so that delivery starts while
    the rest is queued; a re-run after a crash resumes where it stopped (see ``messaging.bulk``). Inside the caller's
    transaction, all of it stays in that transaction."""
    from . import bulk

    return bulk.send_bulk(rows=rows, channel=channel, kind=kind, source=source, occurrence=occurrence, unit=unit, actor=actor,
                          body=body, subject=subject, template_code=template_code, chunk_size=chunk_size, image=image)


# The outbox columns send_bulk writes (messaging.bulk), in this order.
_MESSAGE_COLUMNS = ["idempotency_key", "source", "occurrence", "customer_id", "unit_id", "channel", "subtype", "kind", "template_code",
                    "variables", "to_address", "subject", "body", "html", "status", "reason", "detail", "provider",
                    "provider_message_id", "attempts", "next_attempt_at", "claim_token", "is_test", "created_by_id", "created_at",
                    "image_id"]


def preview(*, customer_ids, channel: str, kind: str, now: dt.datetime | None = None, template_code: str = "") -> dict:
    """What would happen if these customers were sent to now, without writing anything: counts of send, hold and
    block, and ``by_reason``. ``customer_ids`` may be a list or a queryset of ids (stays in SQL)."""
    from django.db.models import Count

    _validate_call(channel=channel, kind=kind, source="preview", occurrence="", template_code=template_code or "-")
    now = now or timezone.now()
    qs = compliance.annotate_decisions(Customer.objects.filter(pk__in=customer_ids), channel=channel, kind=kind,
                                       subtype=subtype_for(channel, kind, template_code), now=now)
    result = {"total": 0, "send": 0, "hold": 0, "block": 0, "by_reason": {}}
    for outcome, reason, n in qs.order_by().values_list("m_outcome", "m_reason").annotate(n=Count("id")).values_list("m_outcome", "m_reason", "n"):
        result["total"] += n
        result[outcome] += n
        result["by_reason"][reason] = result["by_reason"].get(reason, 0) + n
    return result


# --- reactions ----------------------------------------------------------------------------------------------------

def on_consent_changed(*, consent, **_ignored) -> None:
    """A refusal or withdrawal stops that channel's queued and held ads at once (in the same transaction)."""
    from dangol.customers.models import Purpose

    if consent.granted:
        return
    statuses = [Status.QUEUED, Status.HELD]
    qs = Message.objects.filter(customer_id=consent.customer_id, channel=consent.channel, kind=Kind.AD, status__in=statuses)
    reason = "refused"
    if consent.purpose == Purpose.NIGHT_MARKETING:
        return  # the dispatcher's last check holds night ads of a customer without night consent
    ids = list(qs.values_list("id", flat=True))
    if not ids:
        return
    now = timezone.now()
    Message.objects.filter(pk__in=ids, status__in=statuses).update(status=Status.BLOCKED, reason=reason, to_address="")
    Decision.objects.bulk_create([Decision(message_id=mid, customer_id=consent.customer_id, channel=consent.channel, kind=Kind.AD,
                                           stage="withdrawal", outcome="block", reason=reason, at=now) for mid in ids])


def on_customer_erased(*, customer_id, **_ignored) -> None:
    """Scrub the personal text of an erased customer's messages; nothing queued for them is sent any more."""
    Message.objects.filter(customer_id=customer_id, status__in=[Status.QUEUED, Status.HELD, Status.CLAIMED]).update(
        status=Status.BLOCKED, reason="erased")
    Message.objects.filter(customer_id=customer_id).update(to_address="", subject="", body="", html="", variables={})
    Suppression.objects.filter(customer_id=customer_id).update(address="")


def on_customers_merged(*, survivor, merged, merge=None, moved=None, **_ignored) -> None:
    """Queued messages of a merged duplicate are not sent (the survivor's own sends are the ones that count)."""
    Message.objects.filter(customer_id=merged.pk, status__in=[Status.QUEUED, Status.HELD]).update(status=Status.BLOCKED, reason="merged")


def unsubscribe(token: str, *, channel: str | None = None, ip: str | None = None) -> dict:
    """One-click opt-out (no login): withdraws the ad consent of the token's customer and channel at once, which
    blocks every queued ad of that channel. Idempotent. Raises ValidationError for a bad token.
    Returns {"customer_id", "channel", "already": bool}."""
    from django.core import signing

    from dangol.customers.models import ConsentSource, Purpose
    from dangol.customers.services import current_consents, set_consent

    try:
        customer_id, token_channel = read_unsubscribe_token(token)
    except signing.BadSignature:
        raise ValidationError({"token": [_("This unsubscribe link is not valid.")]})
    channel = channel or token_channel
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None or channel not in Channel.values:
        raise ValidationError({"token": [_("This unsubscribe link is not valid.")]})
    with transaction.atomic():
        state = current_consents(customer)
        already = state.get((channel, Purpose.MARKETING)) is False
        if not already:
            set_consent(actor=Actor(user=None, ip=ip, via="unsubscribe"), customer=customer, channel=channel,
                        purpose=Purpose.MARKETING, granted=False, unit=None, source=ConsentSource.WEB,
                        method="one-click unsubscribe link")
    return {"customer_id": customer_id, "channel": channel, "already": already}


def unsubscribe_link(*, customer_id: int, channel: str = Channel.EMAIL) -> str:
    """The RFC 8058 one-click URL for a customer and channel (the List-Unsubscribe header: a POST unsubscribes)."""
    return unsubscribe_url(unsubscribe_token(customer_id=customer_id, channel=channel))


def opt_out_link(*, customer_id: int, channel: str = Channel.EMAIL) -> str:
    """The opt-out page a person opens from the message itself (no login, one button)."""
    return opt_out_page_url(unsubscribe_token(customer_id=customer_id, channel=channel))


def mark_handed_over(*, message_ids: Iterable[int], actor: Actor) -> int:
    """Post and phone messages are handed over by the printing batch or the call list, not by a provider: mark the
    queued ones sent. Returns how many."""
    now = timezone.now()
    return Message.objects.filter(pk__in=list(message_ids), channel__in=list(NOT_DISPATCHED), status=Status.QUEUED).update(
        status=Status.SENT, sent_at=now)


# --- delivery kick ------------------------------------------------------------------------------------------------

_last_kick = 0.0


def kick_dispatch(force: bool = False) -> None:
    """Ask a worker to dispatch soon: at most one enqueue every few seconds per process (a periodic job kicks too);
    ``force`` enqueues anyway (send_bulk after its last chunk)."""
    global _last_kick
    if not force and time.monotonic() - _last_kick < 5:
        return
    _last_kick = time.monotonic()
    try:
        from .tasks import dispatch_messages

        dispatch_messages.enqueue()
    except Exception:  # noqa: BLE001 - a broker hiccup must not fail the send; the periodic kick catches up
        logger.warning("could not enqueue the message dispatch", exc_info=True)


# --- settings staff manage (the pages are messaging-ops's) ------------------------------------------------------

@transaction.atomic
def add_suppression(*, actor: Actor, reason: str, address: str = "", customer: Customer | None = None, channel: str = "") -> Suppression:
    """Put an address (phone in any Korean form, or email) or a whole customer on the global suppression list."""
    from dangol.core.phones import try_normalize_phone

    address = (address or "").strip()
    if channel and channel not in Channel.values:
        raise ValidationError({"channel": [_("Unknown channel.")]})
    if address:
        address = address.lower() if "@" in address else (try_normalize_phone(address) or "")
        if not address:
            raise ValidationError({"address": [_("Enter a phone number or an email address.")]})
    if not address and customer is None:
        raise ValidationError({"address": [_("Enter a phone number or an email address.")]})
    entry = Suppression.objects.create(address=address, customer=customer, channel=channel, reason=(reason or "")[:200],
                                       created_by=actor.user)
    if customer is not None:
        Message.objects.filter(customer=customer, status__in=[Status.QUEUED, Status.HELD], **({"channel": channel} if channel else {})).update(
            status=Status.BLOCKED, reason="suppressed", to_address="")
    audit.record(actor=actor, action="messaging.suppress", obj=entry, fields=["address" if address else "customer"])
    return entry


@transaction.atomic
def remove_suppression(*, actor: Actor, suppression: Suppression) -> None:
    audit.record(actor=actor, action="messaging.unsuppress", obj=suppression, fields=["address"])
    suppression.delete()


@transaction.atomic
def set_frequency_cap(*, actor: Actor, channel: str, max_messages: int | None, period_days: int = 7):
    """At most ``max_messages`` ads per customer on ``channel`` within ``period_days``; ``None`` removes the cap."""
    from .models import FrequencyCap

    if channel not in Channel.values:
        raise ValidationError({"channel": [_("Unknown channel.")]})
    if max_messages is None:
        FrequencyCap.objects.filter(channel=channel).delete()
        return None
    if not (1 <= int(max_messages) <= 1000) or not (1 <= int(period_days) <= 365):
        raise ValidationError({"max_messages": [_("Between 1 and 1,000 messages within 1 to 365 days.")]})
    cap, _created = FrequencyCap.objects.update_or_create(channel=channel, defaults={"max_messages": max_messages, "period_days": period_days})
    audit.record(actor=actor, action="messaging.frequency_cap", obj=cap, fields=["max_messages", "period_days"])
    return cap


@transaction.atomic
def set_sender_profile(*, actor: Actor, unit, name: str, contact: str, optout_number: str, sms_from: str = "", email_from: str = ""):
    """The sender an ad names (unit=None: the group's). The opt-out number must be a free 080 number."""
    from .models import SenderProfile

    errors = {}
    if not (name or "").strip():
        errors["name"] = [_("Name the sender.")]
    if not (contact or "").strip():
        errors["contact"] = [_("Give a contact number.")]
    if not (optout_number or "").replace("-", "").startswith("080"):
        errors["optout_number"] = [_("The free opt-out number is an 080 number.")]
    try:
        text.check_sms_text(name or "", field="name")
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    profile, _created = SenderProfile.objects.update_or_create(unit=unit, defaults={
        "name": name.strip()[:60], "contact": contact.strip()[:20], "optout_number": optout_number.strip()[:20],
        "sms_from": (sms_from or "").strip()[:20], "email_from": (email_from or "").strip()})
    audit.record(actor=actor, action="messaging.sender_profile", obj=profile, fields=["name", "contact", "optout_number"])
    return profile
