"""The 14-day confirmation of every consent change and the 2-year re-confirmation."""
from __future__ import annotations

import datetime as dt

import pytest

from dangol.core.audit import Actor
from dangol.customers.models import Consent
from dangol.customers.services import set_consent
from dangol.messaging.models import ConsentNotice, Message
from dangol.messaging.notices import confirm_consent_changes, send_reconfirmations

pytestmark = pytest.mark.django_db


def test_every_consent_and_withdrawal_is_confirmed_once_within_14_days(customer, clock):
    set_consent(actor=Actor.system("t"), customer=customer, channel="sms", purpose="marketing", granted=False, unit=None, source="web")
    assert confirm_consent_changes() == 4  # three grants at registration, one withdrawal
    assert confirm_consent_changes() == 0
    withdrawal = ConsentNotice.objects.get(granted=False)
    assert withdrawal.via == "sms" and withdrawal.sent_at and withdrawal.due_by - withdrawal.consent_at == dt.timedelta(days=14)
    message = withdrawal.message
    assert message.kind == "info" and message.status == "queued"  # information: goes although ads are refused
    assert "거부(철회)" in message.body and "2026-11-24" in message.body and "문자(SMS)" in message.body
    email_notice = ConsentNotice.objects.get(channel="email")
    assert email_notice.via == "email" and email_notice.message.subject == "수신동의 처리 결과 안내"


def test_old_consents_are_not_confirmed_again(customer, clock):
    clock.advance(days=15)
    assert confirm_consent_changes() == 0


def test_the_two_year_reconfirmation_is_sent_before_the_anniversary_and_keeps_consent(customer, clock):
    assert send_reconfirmations() == 0
    clock.advance(days=2 * 365 - 20)
    assert send_reconfirmations() == 3  # sms, email, kakao consents
    assert send_reconfirmations() == 0
    notice = ConsentNotice.objects.filter(kind="reconfirm", channel="sms").get()
    assert notice.due_by.date() == dt.date(2028, 11, 24) and notice.message.kind == "info"
    assert "동의하셨습니다" in notice.message.body and "080-" in notice.message.body
    assert Consent.objects.filter(customer=customer, granted=True).count() == 3  # no answer keeps the consent
    clock.advance(days=2 * 365)
    assert send_reconfirmations() == 3  # and again before the fourth anniversary


def test_a_withdrawn_consent_gets_no_reconfirmation(customer, clock):
    set_consent(actor=Actor.system("t"), customer=customer, channel="sms", purpose="marketing", granted=False, unit=None, source="web")
    clock.advance(days=2 * 365 - 20)
    assert send_reconfirmations() == 2
    assert not ConsentNotice.objects.filter(kind="reconfirm", channel="sms").exists()
    assert Message.objects.filter(source="consent-notice:reconfirm").count() == 2
