"""Outbound webhooks against a real HTTP receiver on 127.0.0.1: signature, retries with backoff, unit scope, log."""
from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from dangol.api import webhooks
from dangol.api.models import DeliveryStatus, WebhookDelivery
from dangol.core import events
from dangol.core.audit import Actor
from dangol.core.webhook_signatures import compute, signature_header, verify_dangol_signature, verify_hmac
from dangol.sales.services import LineInput, record_order


class Receiver:
    """A local endpoint that answers the status codes it is told to, and keeps what it received."""

    def __init__(self):
        self.received: list[dict] = []
        self.answers: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append({"headers": dict(self.headers), "body": body})
                code = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(code)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(autouse=True)
def _fast(settings):
    settings.DANGOL_WEBHOOK_TIMEOUT_SECONDS = 2


def sell(customer, unit, product):
    return record_order(actor=Actor.system("test"), unit=unit, customer=customer,
                        lines=[LineInput(product_id=product.pk, quantity=1)])


def due_later(delivery: WebhookDelivery) -> dt.datetime:
    return delivery.next_attempt_at + dt.timedelta(seconds=1)


def test_an_order_is_delivered_signed(receiver, units, products, make_customer, django_capture_on_commit_callbacks):
    endpoint = webhooks.create_endpoint(actor=Actor.system("t"), name="ERP", url=receiver.url, event_types=["order_recorded"])
    customer = make_customer("bakery", name="웹훅고객", phone="010-9753-1864")

    with django_capture_on_commit_callbacks(execute=False):
        order = sell(customer, units["bakery"], products["croissant"])
    delivery = WebhookDelivery.objects.get()
    assert webhooks.deliver(delivery.pk) == DeliveryStatus.SUCCEEDED

    [got] = receiver.received
    body = got["body"]
    assert verify_dangol_signature(endpoint.secret, body, got["headers"]["Dangol-Signature"])
    assert not verify_dangol_signature("another-secret", body, got["headers"]["Dangol-Signature"])
    payload = json.loads(body)
    assert payload["type"] == "order_recorded" and got["headers"]["Dangol-Event"] == "order_recorded"
    assert payload["data"]["order"] == {**payload["data"]["order"], "id": order.pk, "unit": "bakery", "total": 4500}
    text = body.decode()  # ids and amounts, no personal data (a bare "010" would match a timestamp's microseconds)
    assert "웹훅고객" not in text and not any(form in text for form in ("9753", "+821097531864", "01097531864"))
    delivery.refresh_from_db()
    assert delivery.attempts == 1 and delivery.last_status_code == 200 and delivery.delivered_at


def test_failures_are_retried_with_exponential_backoff_then_given_up(receiver, settings, units, products, make_customer):
    settings.DANGOL_WEBHOOK_MAX_ATTEMPTS = 4
    settings.DANGOL_WEBHOOK_RETRY_SECONDS = 30
    webhooks.create_endpoint(actor=Actor.system("t"), name="ERP", url=receiver.url, event_types=["*"])
    sell(make_customer("bakery"), units["bakery"], products["croissant"])
    delivery = WebhookDelivery.objects.get(event="order_recorded")
    receiver.answers = [500, 503, 404, 500]

    delays, now = [], timezone.now()
    for _ in range(3):
        assert webhooks.deliver(delivery.pk, now=now) == DeliveryStatus.RETRYING
        delivery.refresh_from_db()
        delays.append(round((delivery.next_attempt_at - timezone.now()).total_seconds()))
        assert webhooks.deliver(delivery.pk, now=now) is None  # not due yet: nothing sent
        now = due_later(delivery)
    assert delays == [30, 60, 120]
    from django_tasks_db.models import DBTaskResult

    retries = DBTaskResult.objects.filter(task_path="dangol.api.tasks.deliver_webhook").order_by("run_after")
    assert retries.count() == 3 and retries.last().run_after > timezone.now() + dt.timedelta(seconds=100)
    assert webhooks.deliver(delivery.pk, now=now) == DeliveryStatus.FAILED
    delivery.refresh_from_db()
    assert delivery.attempts == 4 and delivery.last_status_code == 500 and len(receiver.received) == 4


def test_a_retry_after_a_failure_succeeds_with_the_same_event_id(receiver, units, products, make_customer):
    webhooks.create_endpoint(actor=Actor.system("t"), name="ERP", url=receiver.url, event_types=["order_recorded"])
    sell(make_customer("bakery"), units["bakery"], products["croissant"])
    delivery = WebhookDelivery.objects.get()
    receiver.answers = [502]

    webhooks.deliver(delivery.pk)
    delivery.refresh_from_db()
    assert webhooks.deliver_due(now=due_later(delivery)) == 1

    first, second = (json.loads(r["body"]) for r in receiver.received)
    assert first["id"] == second["id"]
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.attempts == 2


def test_an_unreachable_endpoint_is_logged_and_retried(units, products, make_customer):
    webhooks.create_endpoint(actor=Actor.system("t"), name="down", url="http://127.0.0.1:9/nothing", event_types=["*"])
    sell(make_customer("bakery"), units["bakery"], products["croissant"])
    delivery = WebhookDelivery.objects.get()

    assert webhooks.deliver(delivery.pk) == DeliveryStatus.RETRYING
    delivery.refresh_from_db()
    assert delivery.last_status_code is None and delivery.last_error


def test_an_endpoint_scoped_to_units_gets_only_their_events(receiver, units, products, make_customer):
    hotel = webhooks.create_endpoint(actor=Actor.system("t"), name="hotel PMS", url=receiver.url, event_types=["*"],
                                     units=[units["seoul-hotel"]])
    everything = webhooks.create_endpoint(actor=Actor.system("t"), name="BI", url=receiver.url, event_types=["*"])

    sell(make_customer("bakery"), units["bakery"], products["croissant"])
    sell(make_customer("seoul-hotel"), units["seoul-hotel"], products["deluxe"])

    assert WebhookDelivery.objects.filter(endpoint=everything).count() == 2
    [only] = WebhookDelivery.objects.filter(endpoint=hotel)
    assert only.payload["order"]["unit"] == "seoul-hotel"


def test_an_endpoint_gets_only_the_events_it_asked_for(units, products, make_customer):
    webhooks.create_endpoint(actor=Actor.system("t"), name="merges only", url="https://example.invalid/", event_types=["customers_merged"])
    sell(make_customer("bakery"), units["bakery"], products["croissant"])
    assert not WebhookDelivery.objects.exists()


def test_a_rolled_back_write_sends_nothing(units, products, make_customer):
    from django.db import transaction

    webhooks.create_endpoint(actor=Actor.system("t"), name="ERP", url="https://example.invalid/", event_types=["*"])
    customer = make_customer("bakery")
    with pytest.raises(RuntimeError), transaction.atomic():
        sell(customer, units["bakery"], products["croissant"])
        raise RuntimeError
    assert not WebhookDelivery.objects.exists()


def test_events_of_other_apps_are_picked_up_generically_and_split_in_parts(units, make_customer):
    events.subscribe("case_closed", lambda **kw: None)  # an app that appears later
    webhooks.subscribe_to_events()
    webhooks.create_endpoint(actor=Actor.system("t"), name="BI", url="https://example.invalid/", event_types=["*"])
    bakery = webhooks.create_endpoint(actor=Actor.system("t"), name="bakery", url="https://example.invalid/",
                                      event_types=["tier_changed"], units=[units["bakery"]])
    customers = [make_customer("bakery" if i % 2 else "seoul-hotel") for i in range(6)]

    from dangol.loyalty.tiers import TierChangeNotice

    notices = [TierChangeNotice(customer_id=c.pk, from_tier=None, to_tier="silver", direction="up", at=timezone.now(),
                                cause="test") for c in customers]
    webhooks.PART_SIZE, saved = 4, webhooks.PART_SIZE
    try:
        events.emit("tier_changed", changes=notices)
    finally:
        webhooks.PART_SIZE = saved
    events.emit("case_closed", case_id=77, unit_id=units["bakery"].pk)

    parts = WebhookDelivery.objects.filter(event="tier_changed", endpoint__name="BI").order_by("id")
    assert [(d.payload["part"], d.payload["parts"], len(d.payload["changes"])) for d in parts] == [(1, 2, 4), (2, 2, 2)]
    scoped = [c["customer_id"] for d in WebhookDelivery.objects.filter(endpoint=bakery) for c in d.payload["changes"]]
    assert sorted(scoped) == sorted(c.pk for i, c in enumerate(customers) if i % 2)
    assert WebhookDelivery.objects.get(event="case_closed").payload == {"case_id": 77, "unit_id": units["bakery"].pk}


def test_a_broken_webhook_never_undoes_the_sale(monkeypatch, units, products, make_customer):
    webhooks.create_endpoint(actor=Actor.system("t"), name="ERP", url="https://example.invalid/", event_types=["*"])
    monkeypatch.setattr(webhooks, "build_parts", lambda *a, **k: 1 / 0)
    order = sell(make_customer("bakery"), units["bakery"], products["croissant"])
    assert order.pk and not WebhookDelivery.objects.exists()


def test_redeliver_from_the_admin(receiver, alice, client, units, products, make_customer):
    webhooks.create_endpoint(actor=Actor.system("t"), name="ERP", url=receiver.url, event_types=["*"])
    sell(make_customer("bakery"), units["bakery"], products["croissant"])
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.FAILED, next_attempt_at=None)
    client.force_login(alice)

    assert client.get("/admin/api/webhookdelivery/").status_code == 200
    assert client.get("/admin/api/webhookendpoint/").status_code == 200
    client.post("/admin/api/webhookdelivery/", {"action": "send_again", "_selected_action": [delivery.pk]})

    assert webhooks.deliver_due() == 1 and len(receiver.received) == 1


def test_managers_cannot_see_the_integration_admin(client, mina):
    client.force_login(mina)
    assert client.get("/admin/api/webhookendpoint/").status_code in (302, 403)
    assert client.get("/admin/api/apitoken/").status_code in (302, 403)


# --- the signature helpers (also used for inbound provider webhooks)

def test_the_signature_format_and_its_checks():
    header = signature_header("s3cret", b'{"a":1}', timestamp=1_700_000_000)
    body = b'{"a":1}'
    assert header == "t=1700000000,v1=" + compute("s3cret", 1_700_000_000, body)
    assert verify_dangol_signature("s3cret", b'{"a":1}', header, now=1_700_000_100)
    assert not verify_dangol_signature("s3cret", b'{"a":2}', header, now=1_700_000_100)  # body changed
    assert not verify_dangol_signature("s3cret", b'{"a":1}', header, now=1_700_001_000)  # too old: replay
    assert verify_dangol_signature("s3cret", b'{"a":1}', "t=1700000000,v1=deadbeef," + header.split(",")[1], now=1_700_000_000)
    for bad in ["", "t=x", "v1=abc", "t=1700000000", "garbage,,,"]:
        assert not verify_dangol_signature("s3cret", b"{}", bad, now=1_700_000_000)


def test_provider_hmacs_in_hex_and_base64():
    import base64
    import hashlib
    import hmac

    mac = hmac.new(b"k", b"body", hashlib.sha256).digest()
    assert verify_hmac("k", b"body", mac.hex())
    assert verify_hmac("k", b"body", "sha256=" + mac.hex(), prefix="sha256=")
    assert verify_hmac("k", b"body", base64.b64encode(mac).decode(), encoding="base64")
    assert not verify_hmac("k", b"other", mac.hex())
    for bad in ["", "zz", "not base64!", None]:
        assert not verify_hmac("k", b"body", bad)
        assert not verify_hmac("k", b"body", bad, encoding="base64")


def test_the_delivery_task_runs_after_the_commit(receiver, settings, units, products, make_customer,
                                                 django_capture_on_commit_callbacks):
    """The real path: the sale commits, the on-commit hook enqueues the task, a worker (here the immediate backend)
    sends the request."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend",
                                  "QUEUES": settings.TASK_QUEUES}}
    webhooks.create_endpoint(actor=Actor.system("t"), name="ERP", url=receiver.url, event_types=["order_recorded"])
    customer = make_customer("bakery")
    with django_capture_on_commit_callbacks(execute=True):
        sell(customer, units["bakery"], products["croissant"])

    assert len(receiver.received) == 1
    assert WebhookDelivery.objects.get().status == DeliveryStatus.SUCCEEDED
