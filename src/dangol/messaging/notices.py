"""Notices the law requires about consent (정보통신망법 §50(7)/(8), 시행령 §62의3):

- every consent, refusal and withdrawal of ad messages is confirmed to the customer within 14 days (sender, what and
  when, result) — ``confirm_consent_changes``;
- every customer with ad consent is reminded before each second anniversary of the consent (sender, that and when
  they consented, how to keep or withdraw it); no answer keeps the consent — ``send_reconfirmations``.

Both are idempotent (one notice per consent record and anniversary, unique in the database), recorded in
ConsentNotice with the message that carried them, and run by periodic jobs (apps.py)."""
from __future__ import annotations

import datetime as dt
import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from dangol.core.audit import Actor
from dangol.customers.models import Consent, ContactKind, ContactPoint, Customer, Purpose

from .compliance import SEOUL
from .models import Channel, ConsentNotice, Kind, NoticeKind
from .senders import sender_for

logger = logging.getLogger("dangol.messaging")

CONFIRM_WITHIN = dt.timedelta(days=14)
RECONFIRM_AHEAD = dt.timedelta(days=30)
CHANNEL_WORDS = {"sms": "문자(SMS)", "kakao": "카카오톡", "email": "이메일", "post": "우편", "phone": "전화"}
PURPOSE_WORDS = {Purpose.MARKETING: "광고성 정보", Purpose.NIGHT_MARKETING: "야간(21시~08시) 광고성 정보"}


def _add_years(at: dt.datetime, years: int) -> dt.datetime:
    try:
        return at.replace(year=at.year + years)
    except ValueError:  # 29 February
        return at.replace(year=at.year + years, day=28)


def _route(customer_id: int, channel: str) -> str | None:
    """The channel a notice goes by: email for email consents, else a text message; whatever address exists."""
    kinds = set(ContactPoint.objects.filter(customer_id=customer_id, is_primary=True).values_list("kind", flat=True))
    preferred = [Channel.EMAIL, Channel.SMS] if channel == Channel.EMAIL else [Channel.SMS, Channel.EMAIL]
    for candidate in preferred:
        if (candidate == Channel.EMAIL and ContactKind.EMAIL in kinds) or (candidate == Channel.SMS and ContactKind.PHONE in kinds):
            return candidate
    return None


def change_text(notice: ConsentNotice, sender_name: str, contact: str) -> tuple[str, str]:
    when = notice.consent_at.astimezone(SEOUL).strftime("%Y-%m-%d")
    what = f"{CHANNEL_WORDS.get(notice.channel, notice.channel)} {PURPOSE_WORDS.get(notice.purpose, notice.purpose)} 수신"
    result = "동의" if notice.granted else "거부(철회)"
    body = f"[{sender_name}] {when} 요청하신 {what} {result} 처리가 완료되었습니다. 문의 {contact}"
    return "수신동의 처리 결과 안내", body


def reconfirm_text(notice: ConsentNotice, sender_name: str, contact: str, optout: str) -> tuple[str, str]:
    when = notice.consent_at.astimezone(SEOUL).strftime("%Y-%m-%d")
    what = CHANNEL_WORDS.get(notice.channel, notice.channel)
    body = (f"[{sender_name}] 고객님은 {when}에 {what} 광고성 정보 수신에 동의하셨습니다. 동의를 유지하시려면 따로 하실 일이 "
            f"없으며, 철회하시려면 {optout}(무료) 또는 {contact}로 연락 주세요.")
    return "수신동의 확인 안내", body


def _deliver(notice: ConsentNotice) -> None:
    from . import services

    route = _route(notice.customer_id, notice.channel)
    if route is None:
        notice.result = "no_address"
        notice.sent_at = timezone.now()
        notice.save(update_fields=["result", "sent_at"])
        return
    customer = Customer.objects.get(pk=notice.customer_id)
    sender = sender_for(None)
    if notice.kind == NoticeKind.CHANGE:
        subject, body = change_text(notice, sender.name, sender.contact)
    else:
        subject, body = reconfirm_text(notice, sender.name, sender.contact, sender.optout_number)
    message = services.send(customer=customer, channel=route, kind=Kind.INFO, source=f"consent-notice:{notice.kind}",
                            occurrence=str(notice.pk), body=body, subject=subject, actor=Actor.system("scheduler"))
    notice.message = message
    notice.via = route
    notice.result = message.status
    notice.sent_at = timezone.now()
    notice.save(update_fields=["message", "via", "result", "sent_at"])


def confirm_consent_changes(now: dt.datetime | None = None) -> int:
    """Create and send the 14-day confirmation of every consent record of the last 14 days that has none yet."""
    now = now or timezone.now()
    have = ConsentNotice.objects.filter(kind=NoticeKind.CHANGE).values("consent_id")
    new = [ConsentNotice(customer_id=c.customer_id, kind=NoticeKind.CHANGE, consent_id=c.pk, channel=c.channel, purpose=c.purpose,
                         granted=c.granted, consent_at=c.at, due_by=c.at + CONFIRM_WITHIN)
           for c in Consent.objects.filter(at__gte=now - CONFIRM_WITHIN, at__lte=now, customer__erased_at__isnull=True,
                                          purpose__in=list(PURPOSE_WORDS)).exclude(channel="").exclude(pk__in=have)]
    ConsentNotice.objects.bulk_create(new, ignore_conflicts=True)
    return _send_pending(NoticeKind.CHANGE)


def send_reconfirmations(now: dt.datetime | None = None, years_back: int = 20) -> int:
    """Remind every customer whose ad consent (still in force) reaches a second anniversary in the next 30 days."""
    now = now or timezone.now()
    candidates = []
    for k in range(1, years_back // 2 + 1):
        lo, hi = _add_years(now, -2 * k), _add_years(now + RECONFIRM_AHEAD, -2 * k)
        candidates += list(Consent.objects.filter(purpose=Purpose.MARKETING, granted=True, at__gte=lo, at__lt=hi,
                                                  customer__erased_at__isnull=True, customer__merged_into__isnull=True))
    new = []
    for consent in candidates:
        latest = (Consent.objects.filter(customer_id=consent.customer_id, channel=consent.channel, purpose=Purpose.MARKETING)
                  .order_by("-at", "granted", "-id").first())
        if latest is None or not latest.granted:
            continue
        # The anniversary counts from the latest grant: a re-grant restarts the two years.
        years = 2
        anniversary = _add_years(latest.at, years)
        while anniversary < now:
            years += 2
            anniversary = _add_years(latest.at, years)
        if anniversary > now + RECONFIRM_AHEAD:
            continue
        new.append(ConsentNotice(customer_id=latest.customer_id, kind=NoticeKind.RECONFIRM, consent_id=latest.pk, channel=latest.channel,
                                 purpose=latest.purpose, granted=True, consent_at=latest.at, due_by=anniversary))
    ConsentNotice.objects.bulk_create(new, ignore_conflicts=True)
    return _send_pending(NoticeKind.RECONFIRM)


def _send_pending(kind: str) -> int:
    sent = 0
    for notice in ConsentNotice.objects.filter(kind=kind, sent_at__isnull=True).order_by("due_by")[:5000]:
        try:
            with transaction.atomic():
                _deliver(notice)
            sent += 1
        except (IntegrityError, Exception):  # noqa: BLE001 - one bad notice must not stop the others; retried next run
            logger.warning("consent notice %s could not be sent", notice.pk, exc_info=True)
    return sent
