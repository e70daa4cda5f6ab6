"""Email through a real SMTP server (aiosmtpd): HTML + text, the ad label, the RFC 8058 headers."""
from __future__ import annotations

import email
import email.policy
import socket

import pytest
from aiosmtpd.controller import Controller

from dangol.messaging import services as messaging
from dangol.messaging.delivery import dispatch


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, email.message_from_bytes(envelope.content, policy=email.policy.default)))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp(settings):
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.MESSAGING_PROVIDERS = {"sms": "file", "kakao": "file", "email": "smtp"}
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", controller.port, False
    settings.MESSAGING_EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    yield inbox
    controller.stop()


@pytest.mark.django_db
def test_an_email_ad_arrives_labelled_with_one_click_unsubscribe_headers(smtp, customer, client):
    ad = messaging.send(customer=customer, channel="email", kind="ad", source="campaign:3", occurrence="1", subject="주말 특가",
                        body="#{name}님, 주말에 크루아상 20% 할인", variables={"name": "김하늘"})
    info = messaging.send(customer=customer, channel="email", kind="info", source="order", occurrence="9", subject="주문 안내", body="준비 완료")
    assert dispatch(max_seconds=10)["sent"] == 2
    assert len(smtp.messages) == 2
    received = {m["Subject"]: (rcpt, m) for rcpt, m in smtp.messages}
    rcpt, mail = received["(광고)주말 특가"]
    assert rcpt == ["haneul@example.com"]
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = str(mail["List-Unsubscribe"]).strip().strip("<>")
    assert link.startswith("http") and "/api/v1/messaging/unsubscribe/" in link
    assert mail["Message-ID"].startswith("<") and mail["X-Dangol-Key"] == ad.idempotency_key
    text_part = mail.get_body(preferencelist=("plain",)).get_content()
    html_part = mail.get_body(preferencelist=("html",)).get_content()
    page = messaging.opt_out_link(customer_id=customer.pk, channel="email")
    assert "김하늘님, 주말에 크루아상 20% 할인" in text_part and page in text_part and page in html_part
    assert "href=" in html_part and "수신거부" in html_part
    _, info_mail = received["주문 안내"]
    assert "List-Unsubscribe" not in info_mail  # information carries no opt-out header
    # The header's link works as RFC 8058 says: a POST, no login.
    path = "/" + link.split("://", 1)[1].split("/", 1)[1]
    assert client.post(path, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded").status_code == 200
    ad.refresh_from_db()
    assert ad.status == "sent"


@pytest.mark.django_db
def test_a_refused_connection_is_retried_later_not_lost(customer, settings):
    settings.MESSAGING_PROVIDERS = {"sms": "file", "kakao": "file", "email": "smtp"}
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nobody listens
    settings.MESSAGING_EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    message = messaging.send(customer=customer, channel="email", kind="info", source="s", occurrence="1", subject="안내", body="안내")
    dispatch(max_seconds=5)
    message.refresh_from_db()
    assert message.status == "queued" and message.attempts == 1 and message.next_attempt_at
