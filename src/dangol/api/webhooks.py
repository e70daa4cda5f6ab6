"""Outbound webhooks: the app's events, signed and delivered to the endpoints that asked for them, retried with
exponential backoff, every attempt in the delivery log.

Subscription: ``subscribe_to_events()`` (from ``ApiConfig.ready()``) hooks a handler on every event of
``dangol.core.events`` named in ``EVENTS`` or in ``DANGOL_WEBHOOK_EXTRA_EVENTS``, and on every event another app has
subscribed to by then (the api app is loaded last), so new events of other apps reach webhooks without a change here.
The handler runs inside the emitting transaction: a write that rolls back sends nothing; the deliveries are
enqueued after the commit.

Request sent to an endpoint::

    POST <url>
    Content-Type: application/json
    Dangol-Event: order_recorded
    Dangol-Delivery: <delivery id>
    Dangol-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

    {"id": "<event id>", "type": "order_recorded", "created": "<ISO 8601 UTC>", "data": {...}}

The payload carries ids, codes, amounts and times, never names, phone numbers or emails: the receiver fetches what it
needs through the API with its own token. A 2xx answer within DANGOL_WEBHOOK_TIMEOUT_SECONDS is a success; anything
else is retried after 30 s, 60 s, 120 s… (DANGOL_WEBHOOK_RETRY_SECONDS, doubled, at most
DANGOL_WEBHOOK_RETRY_MAX_SECONDS), DANGOL_WEBHOOK_MAX_ATTEMPTS times in all. Receivers should treat the event id as
an idempotency key: a delivery may arrive twice (a timeout after the receiver had already processed it).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import secrets
import urllib.error
import urllib.request
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from dangol.core import audit, events
from dangol.core.audit import Actor
from dangol.core.models import BusinessUnit
from dangol.core.webhook_signatures import SIGNATURE_HEADER, signature_header

from .models import DeliveryStatus, WebhookDelivery, WebhookEndpoint

logger = logging.getLogger("dangol.webhooks")

# Events of the apps, documented for receivers. Case events are named by the service app (case_opened, case_closed…).
EVENTS = {
    "order_recorded": "A sale or a refund was recorded (counter, API, POS).",
    "orders_imported": "An order file was imported: the unit, how many orders and their id range.",
    "customers_merged": "Two customer records were merged; `merged` no longer exists.",
    "customers_unmerged": "A merge was undone.",
    "tier_changed": "Customers moved up or down a loyalty tier (in parts of at most 500).",
    "referral_rewarded": "A referral was rewarded.",
    "points_expiring_soon": "Customers have points about to expire.",
    "customer_erased": "A customer was anonymised at their request or by retention.",
    "case_opened": "A service case was opened.",
    "case_updated": "A service case changed status.",
    "case_closed": "A service case was closed.",
}
PART_SIZE = 500
MAX_ERROR = 300


# --- endpoints (admin)

def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def validate_endpoint(*, url: str, event_types) -> None:
    if not url.startswith(("https://", "http://")):
        raise ValidationError({"url": [_("The URL must start with https:// (or http:// inside your network).")]})
    unknown = [e for e in event_types or [] if e != "*" and not isinstance(e, str)]
    if not event_types or unknown:
        raise ValidationError({"event_types": [_("List the events to send, or [\"*\"] for all.")]})


@transaction.atomic
def create_endpoint(*, actor: Actor, name: str, url: str, event_types, units=(), secret: str = "") -> WebhookEndpoint:
    validate_endpoint(url=url, event_types=event_types)
    endpoint = WebhookEndpoint.objects.create(name=name, url=url, secret=secret or new_secret(), event_types=list(event_types))
    endpoint.units.set(units)
    audit.record(actor=actor, action="webhook.create", obj=endpoint, fields=["url", "event_types", "units"])
    return endpoint


# --- payloads: ids and amounts only

def _plain(value, depth: int = 0):
    """JSON-safe form of an event argument without personal data: model rows become {"type", "id"}."""
    if depth > 4:
        return None
    if isinstance(value, models.Model):
        return {"type": value._meta.label_lower, "id": value.pk}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v, depth + 1) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return {"type": type(value).__name__}


def _order(order) -> dict:
    return {"id": order.pk, "unit": order.unit.code, "customer": order.customer_id, "kind": order.kind,
            "channel": order.channel, "total": order.total, "ordered_at": order.ordered_at.isoformat(),
            "refund_of": order.refund_of_id, "external_ref": order.external_ref}


def _customer_units(customer_ids) -> dict[int, set[int]]:
    from django.apps import apps

    membership = apps.get_model("customers", "Membership")
    units: dict[int, set[int]] = {}
    for customer_id, unit_id in membership.objects.filter(customer_id__in=list(customer_ids)).values_list("customer_id", "unit_id"):
        units.setdefault(customer_id, set()).add(unit_id)
    return units


@dataclasses.dataclass
class Part:
    """One delivery's data, and the units it concerns (None: no unit; only unscoped endpoints get it)."""

    data: dict
    units: set[int] | None
    items_units: list[set[int]] | None = None  # per item of data["items"], to filter for scoped endpoints


def build_parts(event: str, payload: dict) -> list[Part]:
    if event == "order_recorded":
        order = payload["order"]
        return [Part({"order": _order(order)}, {order.unit_id})]
    if event == "orders_imported":
        ids = list(payload.get("order_ids") or [])
        unit = BusinessUnit.objects.filter(pk=payload["unit_id"]).values_list("code", flat=True).first()
        return [Part({"unit": unit, "order_count": len(ids), "first_order_id": min(ids) if ids else None,
                      "last_order_id": max(ids) if ids else None}, {payload["unit_id"]})]
    if event in ("customers_merged", "customers_unmerged"):
        survivor, merged = payload["survivor"], payload["merged"]
        units = set().union(*_customer_units([survivor.pk, merged.pk]).values()) if survivor else set()
        return [Part({"survivor": survivor.pk, "merged": merged.pk, "merge": getattr(payload.get("merge"), "pk", None)}, units)]
    # Generic: the arguments as plain data; a long list is split into parts with the units of each item.
    data = {k: _plain(v) for k, v in payload.items() if k not in ("actor", "moved")}
    list_keys = [k for k, v in data.items() if isinstance(v, list) and v and isinstance(v[0], dict)]
    units = _units_of(payload)
    if len(list_keys) != 1:
        return [Part(data, units)]
    key = list_keys[0]
    items = data.pop(key)
    customer_ids = {item.get("customer_id") for item in items if isinstance(item.get("customer_id"), int)}
    by_customer = _customer_units(customer_ids) if customer_ids else {}
    parts = []
    chunks = [items[i:i + PART_SIZE] for i in range(0, len(items), PART_SIZE)]
    for index, chunk in enumerate(chunks, 1):
        item_units = [by_customer.get(item.get("customer_id"), set()) for item in chunk]
        part_units = set().union(*item_units) | (units or set())
        parts.append(Part({**data, key: chunk, "part": index, "parts": len(chunks)}, part_units or units, item_units))
    return parts


def _units_of(payload: dict) -> set[int] | None:
    units: set[int] = set()
    customer_ids = set()
    for key, value in payload.items():
        if key == "unit_id" and isinstance(value, int):
            units.add(value)
        elif key == "customer_id" and isinstance(value, int):
            customer_ids.add(value)
        elif isinstance(value, models.Model):
            if isinstance(getattr(value, "unit_id", None), int):
                units.add(value.unit_id)
            if value._meta.label_lower == "customers.customer":
                customer_ids.add(value.pk)
            elif isinstance(getattr(value, "customer_id", None), int):
                customer_ids.add(value.customer_id)
    if customer_ids:
        units |= set().union(*_customer_units(customer_ids).values()) if customer_ids else set()
    return units or None


# --- fan-out

def on_event(event: str, **payload) -> int:
    """Create the deliveries of one event (inside the emitter's transaction) and send them after the commit."""
    endpoints = [e for e in WebhookEndpoint.objects.filter(is_active=True).prefetch_related("units") if e.wants(event)]
    if not endpoints:
        return 0
    parts = build_parts(event, payload)
    rows = []
    for part in parts:
        event_id = uuid.uuid4().hex
        for endpoint in endpoints:
            scope = {u.pk for u in endpoint.units.all()}
            data = part.data
            if scope:
                if not part.units or not (part.units & scope):
                    continue
                if part.items_units is not None:
                    key = next(k for k, v in data.items() if isinstance(v, list) and k not in ("part", "parts"))
                    kept = [item for item, units in zip(data[key], part.items_units) if units & scope]
                    if not kept:
                        continue
                    data = {**data, key: kept}
            rows.append(WebhookDelivery(endpoint=endpoint, event=event, event_id=event_id, payload=data,
                                        next_attempt_at=timezone.now()))
    created = WebhookDelivery.objects.bulk_create(rows)
    ids = [d.pk for d in created if d.pk]
    if ids:
        transaction.on_commit(lambda: _enqueue(ids))
    return len(rows)


def _enqueue(ids: list[int]) -> None:
    from . import tasks

    for delivery_id in ids:
        try:
            tasks.deliver_webhook.enqueue(delivery_id)
        except Exception:  # noqa: BLE001 - the periodic sweep sends it when the queue is back
            logger.warning("could not enqueue webhook delivery %s; the sweep will send it", delivery_id)


def _handler(event: str):
    def handle(**payload):
        # In a savepoint, and never raising: a webhook problem must not undo the sale or the merge that emitted it.
        try:
            with transaction.atomic():
                on_event(event, **payload)
        except Exception:  # noqa: BLE001
            logger.exception("webhook fan-out failed for event %s", event)

    handle.__name__ = f"webhooks_{event}"
    return handle


_HANDLERS: dict = {}


def subscribe_to_events() -> list[str]:
    names = set(EVENTS) | set(getattr(settings, "DANGOL_WEBHOOK_EXTRA_EVENTS", []))
    names |= set(getattr(events, "_handlers", {}))  # events other apps listen to: they exist
    for name in sorted(names):
        handler = _HANDLERS.setdefault(name, _handler(name))
        events.subscribe(name, handler)
    return sorted(names)


# --- sending

def retry_delay(attempts: int) -> dt.timedelta:
    base = settings.DANGOL_WEBHOOK_RETRY_SECONDS
    return dt.timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), settings.DANGOL_WEBHOOK_RETRY_MAX_SECONDS))


def request_body(delivery: WebhookDelivery) -> bytes:
    return json.dumps({"id": delivery.event_id, "type": delivery.event, "created": delivery.created_at.isoformat(),
                       "data": delivery.payload}, cls=DjangoJSONEncoder, ensure_ascii=False, separators=(",", ":")).encode()


def deliver(delivery_id: int, *, now: dt.datetime | None = None) -> str | None:
    """One attempt of one delivery. Returns its new status, or None when it was not due (or another worker has it)."""
    now = now or timezone.now()
    lease = now + dt.timedelta(seconds=settings.DANGOL_WEBHOOK_TIMEOUT_SECONDS * 3 + 30)
    # Claim with a conditional UPDATE: of a retry task and the sweep running at once, one sends and the other finds
    # nothing due; a worker that dies mid-request leaves the lease to expire and the sweep tries again.
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id, status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING], next_attempt_at__lte=now,
    ).update(next_attempt_at=lease)
    if not claimed:
        return None
    delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    endpoint = delivery.endpoint
    body = request_body(delivery)
    status_code, error = None, ""
    if not endpoint.is_active:
        error = "endpoint deactivated"
    else:
        request = urllib.request.Request(endpoint.url, data=body, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": "Dangol-Webhooks/1",
            "Dangol-Event": delivery.event, "Dangol-Delivery": str(delivery.pk),
            SIGNATURE_HEADER: signature_header(endpoint.secret, body),
        })
        try:
            with urllib.request.urlopen(request, timeout=settings.DANGOL_WEBHOOK_TIMEOUT_SECONDS) as response:  # noqa: S310 - admin-set URL
                status_code = response.status
        except urllib.error.HTTPError as exc:
            status_code, error = exc.code, f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            error = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
    delivery.attempts += 1
    delivery.last_status_code = status_code
    delivery.last_error = error[:MAX_ERROR]
    finished = timezone.now()
    if status_code is not None and 200 <= status_code < 300:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at, delivery.last_error = DeliveryStatus.SUCCEEDED, finished, None, ""
    elif delivery.attempts >= settings.DANGOL_WEBHOOK_MAX_ATTEMPTS or not endpoint.is_active:
        delivery.status, delivery.next_attempt_at = DeliveryStatus.FAILED, None
    else:
        delivery.status, delivery.next_attempt_at = DeliveryStatus.RETRYING, finished + retry_delay(delivery.attempts)
    delivery.save(update_fields=["attempts", "last_status_code", "last_error", "status", "delivered_at", "next_attempt_at"])
    if delivery.status == DeliveryStatus.RETRYING:
        _enqueue_retry(delivery)
    return delivery.status


def _enqueue_retry(delivery: WebhookDelivery) -> None:
    from . import tasks

    try:
        tasks.deliver_webhook.using(run_after=delivery.next_attempt_at).enqueue(delivery.pk)
    except Exception:  # noqa: BLE001 - a backend without deferred tasks, or a queue outage: the sweep retries
        pass


def deliver_due(*, now: dt.datetime | None = None, limit: int = 200) -> int:
    """The sweep (every minute): every delivery whose time has come and that no worker holds."""
    now = now or timezone.now()
    due = list(WebhookDelivery.objects.filter(status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING],
                                              next_attempt_at__lte=now).order_by("next_attempt_at")
               .values_list("pk", flat=True)[:limit])
    return sum(1 for pk in due if deliver(pk, now=now) is not None)


@transaction.atomic
def redeliver(*, actor: Actor, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a failed (or any) delivery again now, from the admin."""
    delivery.status, delivery.next_attempt_at = DeliveryStatus.RETRYING, timezone.now()
    delivery.save(update_fields=["status", "next_attempt_at"])
    audit.record(actor=actor, action="webhook.redeliver", obj=delivery)
    transaction.on_commit(lambda: _enqueue([delivery.pk]))
    return delivery


def prune_deliveries(*, days: int = 90) -> int:
    cutoff = timezone.now() - dt.timedelta(days=days)
    return WebhookDelivery.objects.filter(created_at__lt=cutoff, status__in=[DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED]).delete()[0]
