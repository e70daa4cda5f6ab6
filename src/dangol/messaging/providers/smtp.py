"""Email through Django's SMTP backend: HTML + text, and for ads the RFC 8058 one-click unsubscribe headers.

SMTP has no idempotency key. A connection refused is retried (nothing accepted); a refused recipient fails; an error
after the DATA command may have been accepted, so the message becomes ``uncertain`` and is reconciled from bounce or
delivery reports, never resent blindly. The Message-ID is derived from the idempotency key so that a receiving
system can spot a duplicate."""
from __future__ import annotations

import hashlib
import smtplib
import socket

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection

from . import ProviderUnavailable, Result, parse_json_report


def message_id_for(key: str) -> str:
    domain = settings.DEFAULT_FROM_EMAIL.rsplit("@", 1)[-1] or "dangol"
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"


class SmtpProvider:
    name = "smtp"
    honours_idempotency_key = False

    def connection(self):
        return get_connection(getattr(settings, "MESSAGING_EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend"),
                              fail_silently=False)

    def build(self, m, from_email: str) -> EmailMultiAlternatives:
        from ..models import Kind
        from ..services import unsubscribe_link

        headers = {"Message-ID": message_id_for(m.idempotency_key), "X-Dangol-Key": m.idempotency_key}
        if m.kind == Kind.AD and m.customer_id:
            link = unsubscribe_link(customer_id=m.customer_id, channel=m.channel)
            headers["List-Unsubscribe"] = f"<{link}>"
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        email = EmailMultiAlternatives(subject=m.subject, body=m.body, from_email=from_email, to=[m.to_address], headers=headers)
        if m.html:
            email.attach_alternative(m.html, "text/html")
        return email

    def send_batch(self, messages, *, batch_key: str = "") -> list[Result]:
        from ..senders import sender_for

        connection = self.connection()
        try:
            connection.open()
        except (ConnectionError, socket.error, smtplib.SMTPConnectError) as exc:
            raise ProviderUnavailable(str(exc)) from exc
        results = []
        try:
            for i, m in enumerate(messages):
                try:
                    connection.send_messages([self.build(m, sender_for(m.unit).email_from)])
                    results.append(Result(m.pk, "sent", provider_message_id=message_id_for(m.idempotency_key)))
                except smtplib.SMTPRecipientsRefused as exc:
                    results.append(Result(m.pk, "failed", detail=str(exc)[:300]))
                except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
                    code = getattr(exc, "smtp_code", 0) or 0
                    results.append(Result(m.pk, "retry" if 400 <= code < 500 else "failed", detail=str(exc)[:300]))
                except (smtplib.SMTPException, OSError) as exc:
                    # Lost mid-conversation: this one may have been accepted, the rest were never tried.
                    results.append(Result(m.pk, "uncertain", detail=str(exc)[:300]))
                    results.extend(Result(rest.pk, "retry", detail="connection lost") for rest in messages[i + 1:])
                    break
        finally:
            try:
                connection.close()
            except Exception:  # noqa: BLE001
                pass
        return results

    def parse_report(self, request):
        return parse_json_report(request)
