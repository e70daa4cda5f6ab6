"""Everything Dangol holds about one customer, for the customer's right of access (개인정보보호법 §35): one dict of
sections, rendered as JSON and as a readable page.

Apps that hold personal data of their own (messages, cases, surveys…) add a section by subscribing to the
``customer_exported`` event: ``handler(customer=<Customer>, sections=<dict>)`` sets ``sections["<name>"] = [...]``
with plain JSON values."""
from __future__ import annotations

import datetime as dt

from django.utils import timezone

from dangol.core import events
from dangol.core.phones import display_phone
from dangol.customers.models import Customer

EXPORT_FORMAT = "dangol.customer-export/1"


def _when(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return timezone.localtime(value).isoformat()
    return value.isoformat()


def _who(user) -> str:
    return user.get_username() if user else ""


def build_export(customer: Customer) -> dict:
    """The customer's data as plain JSON values (strings, numbers, lists, dicts), newest first where it is a history."""
    from dangol.ingest.models import SourceRecord
    from dangol.loyalty import models as loyalty
    from dangol.sales.models import Order

    from .models import DataSubjectRequest

    c = Customer.objects.select_related("home_unit").get(pk=customer.pk)
    sections: dict = {
        "format": EXPORT_FORMAT,
        "exported_at": _when(timezone.now()),
        "profile": {
            "id": c.pk, "name": c.name, "gender": c.get_gender_display() if c.gender else "",
            "stage": c.get_stage_display(), "registered_at": c.home_unit.name if c.home_unit else "",
            "joined_at": _when(c.joined_at), "created_at": _when(c.created_at), "updated_at": _when(c.updated_at),
            "processing_suspended": c.processing_suspended, "erased_at": _when(c.erased_at),
            "tags": sorted(c.tags.values_list("name", flat=True)),
        },
        "contacts": [
            {"kind": p.get_kind_display(), "value": display_phone(p.value) if p.kind == "phone" else p.value,
             "label": p.label, "primary": p.is_primary, "added_at": _when(p.created_at)}
            for p in c.contacts.order_by("kind", "-is_primary", "id")
        ],
        "addresses": [
            {"sido": a.sido, "sigungu": a.sigungu, "line": a.line, "postal_code": a.postal_code, "primary": a.is_primary}
            for a in c.addresses.all()
        ],
        "anniversaries": [
            {"kind": a.get_kind_display(), "label": a.label, "year": a.year, "month": a.month, "day": a.day,
             "lunar": a.is_lunar, "leap_month": a.is_leap_month}
            for a in c.anniversaries.all()
        ],
        "preferences": [
            {"topic": p.topic, "value": p.value, "unit": p.unit.name if p.unit else "", "recorded_at": _when(p.recorded_at)}
            for p in c.preferences.select_related("unit")
        ],
        "memberships": [
            {"unit": m.unit.name, "since": _when(m.joined_at), "how": m.source}
            for m in c.memberships.select_related("unit").order_by("joined_at")
        ],
        "consents": [
            {"kind": x.get_kind_display(), "channel": x.get_channel_display() if x.channel else "",
             "purpose": x.get_purpose_display(), "granted": x.granted, "at": _when(x.at), "source": x.get_source_display(),
             "unit": x.unit.name if x.unit else "", "method": x.method, "evidence": x.evidence,
             "recorded_by": _who(x.recorded_by),
             "notice": ({"title": x.notice.title, "version": x.notice.version, "purpose": x.notice.purpose,
                         "items": x.notice.items, "retention": x.notice.retention} if x.notice else None)}
            for x in c.consents.select_related("unit", "recorded_by", "notice").order_by("-at", "-id")
        ],
        "orders": [
            {"id": o.pk, "kind": o.get_kind_display(), "unit": o.unit.name, "channel": o.get_channel_display(),
             "at": _when(o.ordered_at), "total_krw": o.total, "reference": o.external_ref,
             "lines": [{"product": line.product.name, "quantity": line.quantity, "unit_price_krw": line.unit_price,
                        "total_krw": line.line_total} for line in o.lines.all()]}
            for o in Order.objects.filter(customer=c).select_related("unit").prefetch_related("lines__product")
            .order_by("-ordered_at", "-id")
        ],
        "timeline": [
            {"kind": i.get_kind_display(), "at": _when(i.occurred_at), "unit": i.unit.name if i.unit else "",
             "summary": i.summary, "text": i.sensitive_text if i.sensitive else i.body, "sensitive": i.sensitive,
             "amount_krw": i.amount}
            for i in c.interactions.select_related("unit").order_by("-occurred_at", "-id")
        ],
        "loyalty": _loyalty_section(c, loyalty),
        "unit_ids": [{"unit": r.unit.name, "id": r.source_id}
                     for r in SourceRecord.objects.filter(customer=c).select_related("unit")],
        "privacy_requests": [
            {"kind": r.get_kind_display(), "status": r.get_status_display(), "received_at": _when(r.received_at),
             "due_at": _when(r.due_at), "completed_at": _when(r.completed_at), "outcome": r.outcome}
            for r in DataSubjectRequest.objects.filter(customer=c).order_by("-received_at")
        ],
    }
    events.emit("customer_exported", customer=c, sections=sections)
    return sections


def _loyalty_section(c: Customer, loyalty) -> dict:
    account = loyalty.Account.objects.filter(customer=c).select_related("tier").first()
    entries = list(loyalty.LedgerEntry.objects.filter(customer=c).select_related("unit").order_by("-at", "-id"))
    return {
        "member_number": account.member_number if account else "",
        "tier": account.tier.name if account and account.tier else "",
        "balance": sum(e.points for e in entries),
        "ledger": [{"kind": e.get_kind_display(), "points": e.points, "at": _when(e.at), "unit": e.unit.name if e.unit else "",
                    "reason": e.reason} for e in entries],
        "coupons": [{"code": k.code, "status": k.get_status_display(), "issued_at": _when(k.issued_at),
                     "expires_at": _when(k.expires_at), "used_at": _when(k.used_at)}
                    for k in loyalty.Coupon.objects.filter(customer=c).order_by("-issued_at")],
        "tier_changes": [{"from": t.from_tier.name if t.from_tier else "", "to": t.to_tier.name if t.to_tier else "",
                          "at": _when(t.at), "cause": t.get_cause_display()}
                         for t in loyalty.TierChange.objects.filter(customer=c).select_related("from_tier", "to_tier")],
    }
