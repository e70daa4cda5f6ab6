"""Delivery reports (from the signed webhooks): delivered, failed with reason, opened, clicked."""
from __future__ import annotations

from collections import Counter

from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import Decision, Message, ProviderReceipt, Status
from .providers import ReportUpdate

# A report may settle a message that is sent, uncertain (we never learned the answer) or still claimed (the report
# outran our commit); a later "failed" never undoes "delivered".
SETTLEABLE = {"delivered": [Status.SENT, Status.UNCERTAIN, Status.CLAIMED, Status.FAILED],
              "failed": [Status.SENT, Status.UNCERTAIN, Status.CLAIMED]}


def _find(provider: str, update: ReportUpdate):
    qs = Message.objects.all()
    if update.idempotency_key:
        return qs.filter(idempotency_key=update.idempotency_key).first()
    if update.provider_message_id:
        return qs.filter(provider=provider, provider_message_id=update.provider_message_id).first()
    return None


def apply_reports(*, provider: str, updates: list[ReportUpdate]) -> dict:
    """Apply reports once each (a replayed report id changes nothing). Returns counts by outcome."""
    counts = Counter()
    now = timezone.now()
    for update in updates:
        with transaction.atomic():
            if update.report_id:
                try:
                    with transaction.atomic():
                        ProviderReceipt.objects.create(provider=provider, report_id=update.report_id[:120])
                except IntegrityError:
                    counts["duplicate"] += 1
                    continue
            message = _find(provider, update)
            if message is None:
                counts["unknown"] += 1
                continue
            at = update.at or now
            if update.status in SETTLEABLE:
                fields = {"status": update.status, "claim_token": ""}
                if update.status == "delivered":
                    fields["delivered_at"] = at
                    fields["reason"] = ""
                else:
                    fields["failed_at"] = at
                    fields["reason"] = "undelivered"
                    fields["detail"] = update.reason[:300]
                if message.sent_at is None and message.status in (Status.UNCERTAIN, Status.CLAIMED):
                    fields["sent_at"] = at
                changed = Message.objects.filter(pk=message.pk, status__in=SETTLEABLE[update.status]).update(**fields)
                if changed:
                    Decision.objects.create(message=message, customer_id=message.customer_id, channel=message.channel, kind=message.kind,
                                            stage="report", outcome=update.status, reason=update.reason[:40] or update.status, at=now)
                counts[update.status if changed else "ignored"] += 1
            elif update.status == "opened":
                Message.objects.filter(pk=message.pk, opened_at__isnull=True).update(opened_at=at)
                counts["opened"] += 1
            elif update.status == "clicked":
                Message.objects.filter(pk=message.pk, clicked_at__isnull=True).update(clicked_at=at)
                Message.objects.filter(pk=message.pk, opened_at__isnull=True).update(opened_at=at)
                counts["clicked"] += 1
            else:
                counts["ignored"] += 1
    return dict(counts)
