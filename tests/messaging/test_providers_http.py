"""The NHN-style HTTP provider against the local provider server: SMS/LMS, AlimTalk with its SMS fallback, brand
messages, idempotency keys across a crash, and signed delivery-report webhooks."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from django.urls import reverse

from dangol.messaging import services as messaging
from dangol.messaging.delivery import claim_batch, dispatch, reconcile
from dangol.messaging.models import Message
from dangol.messaging.providers import get_provider
from dangol.messaging.testing import LocalProvider
from dangol.api.views_messaging import sign


@pytest.fixture
def provider(settings):
    with LocalProvider(refuse_alimtalk_to={"01077770000"}) as local:
        settings.MESSAGING_PROVIDERS = {"sms": "nhn", "kakao": "nhn", "email": "file"}
        settings.MESSAGING_NHN = {"SMS_URL": local.url, "ALIMTALK_URL": local.url, "SMS_APP_KEY": "app", "ALIMTALK_APP_KEY": "app",
                                  "SECRET_KEY": "secret", "KAKAO_SENDER_KEY": "sender", "TIMEOUT": 5}
        yield local


@pytest.mark.django_db
def test_sms_lms_alimtalk_and_brand_messages_reach_the_provider(provider, customer, make_customer, clock):
    refused = make_customer(name="카톡없음", phone="010-7777-0000", consents=[("sms", "marketing", True)])
    short = messaging.send(customer=customer, channel="sms", kind="ad", source="c", occurrence="1", body="할인")
    long = messaging.send(customer=customer, channel="sms", kind="info", source="c", occurrence="2", body="안내 " * 40, subject="공지")
    alim = [messaging.send(customer=c, channel="kakao", kind="info", source="order", occurrence="1", template_code="ORDER_READY",
                           body="#{name}님 주문이 준비되었습니다", variables={"name": c.name}) for c in (customer, refused)]
    brand = messaging.send(customer=customer, channel="kakao", kind="ad", source="c", occurrence="3", body="신상 출시")
    counts = dispatch(max_seconds=10)
    assert counts["sent"] == 5
    delivered = provider.deliveries
    assert delivered[str(short.pk)]["text"].startswith("(광고)") and "/ad-sms" in delivered[str(short.pk)]["path"]
    assert "/sender/mms" in delivered[str(long.pk)]["path"] and delivered[str(long.pk)]["subject"] == "공지"
    assert delivered[str(alim[0].pk)]["kind"] == "alimtalk"
    assert delivered[str(alim[1].pk)]["kind"] == "sms" and delivered[str(alim[1].pk)]["text"] == "카톡없음님 주문이 준비되었습니다"
    assert delivered[str(brand.pk)]["kind"] == "friendtalk" and delivered[str(brand.pk)]["text"].startswith("(광고)")
    for m in (short, long, *alim, brand):
        m.refresh_from_db()
        assert m.status == "sent"
    assert alim[1].provider_message_id.startswith("sms-fallback:")
    assert len(provider.deliveries) == 5 and not provider.repeats


@pytest.mark.django_db
def test_a_batch_accepted_before_a_crash_is_resent_under_the_same_key_and_delivered_once(provider, customer, make_customer, clock, settings):
    people = [customer] + [make_customer(name=f"고객{i}") for i in range(4)]
    for c in people:
        messaging.send(customer=c, channel="sms", kind="info", source="notice", occurrence="1", body="영업시간 안내")
    batch = claim_batch(size=10, now=clock.now, token="tok1")
    get_provider("nhn").send_batch(batch, batch_key="tok1")  # accepted... and the worker dies before recording
    assert set(Message.objects.values_list("status", flat=True)) == {"claimed"}
    clock.advance(seconds=settings.MESSAGING_CLAIM_SECONDS + 1)
    result = reconcile()
    assert result["lost"] == 5 and result["resent"] == 5
    assert set(Message.objects.values_list("status", flat=True)) == {"sent"}
    assert len(provider.deliveries) == 5 and len(provider.repeats) == 5  # the repeat was recognised, nothing sent twice
    assert Message.objects.filter(decisions__stage="reconcile", decisions__reason="same_idempotency_key").count() == 5


@pytest.mark.django_db
def test_without_an_idempotency_key_an_uncertain_message_waits_for_its_report(customer, clock, settings, client):
    settings.MESSAGING_PROVIDERS = {"sms": "file", "kakao": "file", "email": "smtp"}
    message = messaging.send(customer=customer, channel="email", kind="info", source="s", occurrence="1", body="안내", subject="안내")
    claim_batch(size=10, now=clock.now, token="tok")
    clock.advance(seconds=settings.MESSAGING_CLAIM_SECONDS + 1)
    assert reconcile() == {"lost": 1, "resent": 0, "expired": 0}
    message.refresh_from_db()
    assert message.status == "uncertain"
    body = json.dumps({"reports": [{"id": "r1", "key": message.idempotency_key, "status": "delivered"}]}).encode()
    url = reverse("api:messaging_report", kwargs={"provider": "smtp"})
    assert client.post(url, body, content_type="application/json", HTTP_X_DANGOL_SIGNATURE=sign(body)).status_code == 200
    message.refresh_from_db()
    assert message.status == "delivered" and message.delivered_at


@pytest.mark.django_db
def test_an_uncertain_message_without_report_fails_after_the_wait(customer, clock, settings):
    settings.MESSAGING_PROVIDERS = {"sms": "file", "kakao": "file", "email": "smtp"}
    message = messaging.send(customer=customer, channel="email", kind="info", source="s", occurrence="1", body="안내", subject="안내")
    claim_batch(size=10, now=clock.now, token="tok")
    clock.advance(hours=settings.MESSAGING_REPORT_WAIT_HOURS + 1)
    reconcile()
    message.refresh_from_db()
    assert (message.status, message.reason) == ("failed", "no_report")


@pytest.mark.django_db(transaction=True)
def test_signed_webhooks_from_the_provider_update_messages(provider, customer, live_server, clock):
    message = messaging.send(customer=customer, channel="sms", kind="info", source="s", occurrence="1", body="안내")
    other = messaging.send(customer=customer, channel="sms", kind="info", source="s", occurrence="2", body="안내2")
    dispatch(max_seconds=10)
    message.refresh_from_db()
    other.refresh_from_db()
    url = live_server.url + reverse("api:messaging_report", kwargs={"provider": "nhn"})
    reports = [{"id": "1", "message_id": message.provider_message_id, "status": "delivered", "at": "2026-11-24T01:00:05+00:00"},
               {"id": "2", "message_id": other.provider_message_id, "status": "failed", "reason": "number not in service"}]
    assert provider.post_reports(url, "wrong-secret", reports) == 403
    assert provider.post_reports(url, "test-secret", reports) == 200
    assert provider.post_reports(url, "test-secret", reports) == 200  # a replay changes nothing
    message.refresh_from_db()
    other.refresh_from_db()
    assert message.status == "delivered" and message.delivered_at == dt.datetime(2026, 11, 24, 1, 0, 5, tzinfo=dt.timezone.utc)
    assert (other.status, other.reason, other.detail) == ("failed", "undelivered", "number not in service")
    assert message.decisions.filter(stage="report").count() == 1


@pytest.mark.django_db
def test_email_opens_and_clicks_are_recorded(customer, client):
    message = messaging.send(customer=customer, channel="email", kind="info", source="s", occurrence="1", body="안내", subject="안내")
    body = json.dumps({"reports": [{"id": "o", "key": message.idempotency_key, "status": "opened"},
                                   {"id": "c", "key": message.idempotency_key, "status": "clicked"}]}).encode()
    url = reverse("api:messaging_report", kwargs={"provider": "file"})
    assert client.post(url, body, content_type="application/json", HTTP_X_DANGOL_SIGNATURE="sha256=00").status_code == 403
    assert client.post(url, body, content_type="application/json", HTTP_X_DANGOL_SIGNATURE=sign(body)).json() == {"opened": 1, "clicked": 1}
    message.refresh_from_db()
    assert message.opened_at and message.clicked_at


@pytest.mark.django_db
def test_one_click_unsubscribe_withdraws_consent_and_stops_queued_ads(customer, client):
    from dangol.customers.services import current_consents

    queued = messaging.send(customer=customer, channel="email", kind="ad", source="c", occurrence="1", body="할인", subject="세일")
    url = messaging.unsubscribe_link(customer_id=customer.pk, channel="email")
    path = url.split("://", 1)[1].split("/", 1)[1]
    assert client.get("/" + path).status_code == 200  # a GET (link scanners) changes nothing
    assert current_consents(customer)[("email", "marketing")] is True
    response = client.post("/" + path, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert current_consents(customer)[("email", "marketing")] is False
    queued.refresh_from_db()
    assert (queued.status, queued.reason) == ("blocked", "refused")
    assert client.post("/" + path[:-3] + "xyz/").status_code in (404, 405)
    assert messaging.unsubscribe(url.rsplit("/", 1)[1])["already"] is True


@pytest.mark.django_db
def test_a_lost_answer_makes_the_batch_uncertain_and_it_is_resent_under_its_key(provider, customer, make_customer, clock):
    people = [customer, make_customer(name="정하나")]
    for c in people:
        messaging.send(customer=c, channel="sms", kind="info", source="n", occurrence="1", body="안내")
    provider.fail_after_accepting = 1
    assert dispatch(max_seconds=5)["uncertain"] == 2
    assert set(Message.objects.values_list("status", flat=True)) == {"uncertain"}
    assert reconcile()["resent"] == 2
    assert set(Message.objects.values_list("status", flat=True)) == {"sent"}
    assert len(provider.deliveries) == 2 and len(provider.repeats) == 2


@pytest.mark.django_db
def test_a_provider_that_is_down_gets_the_batch_later_with_backoff(settings, customer, clock):
    settings.MESSAGING_PROVIDERS = {"sms": "nhn", "kakao": "nhn", "email": "file"}
    settings.MESSAGING_NHN = {**settings.MESSAGING_NHN, "SMS_URL": "http://127.0.0.1:9"}  # nobody listens
    message = messaging.send(customer=customer, channel="sms", kind="info", source="n", occurrence="1", body="안내")
    dispatch(max_seconds=5)
    message.refresh_from_db()
    assert (message.status, message.attempts) == ("queued", 1)
    assert message.next_attempt_at == clock.now + dt.timedelta(seconds=30)
    clock.advance(seconds=31)
    dispatch(max_seconds=5)
    message.refresh_from_db()
    assert message.attempts == 2 and message.next_attempt_at == clock.now + dt.timedelta(seconds=60)
