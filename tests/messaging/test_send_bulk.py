"""send_bulk's set-based path (messaging.bulk): the same outcome as send() row by row, one decision per message,
bad input refused before anything is written, chunks committed one by one (delivery starts meanwhile) and a re-run
after a crash resuming where it stopped."""
from __future__ import annotations

from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from dangol.core.audit import Actor
from dangol.customers.models import Customer
from dangol.messaging import bulk
from dangol.messaging import services as messaging
from dangol.messaging.models import Decision, Message, SenderProfile, Suppression

FIELDS = ["status", "reason", "to_address", "subtype", "subject", "body", "html", "next_attempt_at", "variables", "provider", "kind",
          "unit_id", "template_code"]


@pytest.fixture
def crowd(make_customer, clock):
    """Customers for every rule: consent, none, refused, night consent, suppressed, erased, merged, no phone, suspended."""
    c = {
        "consent": make_customer(name="동의", email="a@example.com", consents=[("sms", "marketing", True), ("email", "marketing", True)]),
        "none": make_customer(name="무동의", email="b@example.com"),
        "refused": make_customer(name="거부", consents=[("sms", "marketing", False)]),
        "night": make_customer(name="야간", consents=[("sms", "marketing", True), ("sms", "night_marketing", True)]),
        "suppressed": make_customer(name="차단", consents=[("sms", "marketing", True)]),
        "erased": make_customer(name="삭제", consents=[("sms", "marketing", True)]),
        "merged": make_customer(name="병합", consents=[("sms", "marketing", True)]),
        "nophone": make_customer(name="번호없음", phone="", email="c@example.com", consents=[("sms", "marketing", True)]),
        "suspended": make_customer(name="정지", consents=[("sms", "marketing", True)]),
        "post": make_customer(name="우편", sido="서울특별시", sigungu="마포구", address_line="월드컵로 1", postal_code="03900",
                              consents=[("post", "marketing", True)]),
    }
    Suppression.objects.create(customer=c["suppressed"], reason="asked")
    Customer.objects.filter(pk=c["erased"].pk).update(erased_at=timezone.now())
    Customer.objects.filter(pk=c["merged"].pk).update(merged_into=c["consent"])
    Customer.objects.filter(pk=c["suspended"].pk).update(processing_suspended=True)
    return {k: Customer.objects.get(pk=v.pk) for k, v in c.items()}


def _row(m: Message) -> dict:
    return {f: getattr(m, f) for f in FIELDS}


@pytest.mark.parametrize("channel,kind,when", [("sms", "ad", "2026-11-24 10:00"), ("sms", "ad", "2026-11-24 22:30"),
                                               ("sms", "info", "2026-11-24 22:30"), ("email", "ad", "2026-11-24 10:00"),
                                               ("post", "ad", "2026-11-24 10:00")])
def test_same_messages_and_decisions_as_send(crowd, units, clock, channel, kind, when):
    clock.set(when)
    SenderProfile.objects.create(unit=units["bakery"], name="한빛 베이커리", contact="02-123-4567", optout_number="080-123-4567")
    body, subject = "#{name}님, 주말 특가 #{pct}% 할인 " + "가" * (30 if channel == "sms" else 0), "주말 특가"
    customers = list(crowd.values())
    rows = [{"customer_id": c.pk, "variables": {"name": c.name, "pct": i}} for i, c in enumerate(customers)]
    counts = messaging.send_bulk(rows=rows, channel=channel, kind=kind, source="campaign:bulk", occurrence="1", unit=units["bakery"],
                                 body=body, subject=subject, chunk_size=4)
    for i, c in enumerate(customers):
        one = messaging.send(customer=c, channel=channel, kind=kind, source="campaign:one", occurrence="1", unit=units["bakery"],
                             body=body, subject=subject, variables={"name": c.name, "pct": i})
        many = Message.objects.get(source="campaign:bulk", customer=c)
        expected = _row(one)
        if channel == "email" and kind == "ad":  # the unsubscribe link is signed with a timestamped salt: compare the rest
            expected["body"], expected["html"] = expected["body"].split("http")[0], expected["html"].split("http")[0]
            got = _row(many)
            got["body"], got["html"] = got["body"].split("http")[0], got["html"].split("http")[0]
        else:
            got = _row(many)
        assert got == expected, c.name
        d_one, d_many = one.decisions.get(), many.decisions.get()
        assert (d_many.stage, d_many.outcome, d_many.reason, d_many.customer_id, d_many.channel, d_many.kind) == \
            (d_one.stage, d_one.outcome, d_one.reason, d_one.customer_id, d_one.channel, d_one.kind)
    statuses = {s: Message.objects.filter(source="campaign:bulk", status=s).count() for s in ("queued", "held", "blocked")}
    assert counts["created"] == len(customers) and counts["existing"] == 0 and counts["total"] == len(customers)
    assert {k: counts[k] for k in statuses} == statuses
    blocked = Message.objects.filter(source="campaign:bulk", status="blocked")
    assert sum(counts["by_reason"].values()) == blocked.count() + statuses["held"]


def test_ads_are_labelled_and_held_at_night(crowd, clock):
    clock.set("2026-11-24 22:30")
    messaging.send_bulk(rows=[{"customer_id": crowd["consent"].pk}, {"customer_id": crowd["night"].pk}], channel="sms", kind="ad",
                        source="campaign:n", occurrence="1", body="[광고] 할인")
    held = Message.objects.get(customer=crowd["consent"], source="campaign:n")
    assert held.status == "held" and held.reason == "night" and held.next_attempt_at is not None and held.body.startswith("(광고)")
    assert "무료수신거부" in held.body and "[광고]" not in held.body
    assert Message.objects.get(customer=crowd["night"], source="campaign:n").status == "queued"


def test_duplicate_rows_make_one_message(crowd):
    c = crowd["consent"]
    counts = messaging.send_bulk(rows=[{"customer_id": c.pk}, {"customer_id": str(c.pk)}], channel="sms", kind="info",
                                 source="notice:1", occurrence="1", body="안내")
    assert counts["total"] == 2 and counts["created"] == 1
    assert Message.objects.filter(source="notice:1").count() == 1 and Decision.objects.filter(message__source="notice:1").count() == 1


def test_actor_and_variables_are_kept(crowd, admin_user):
    c = crowd["consent"]
    messaging.send_bulk(rows=[{"customer_id": c.pk, "variables": {"name": "탭\t역슬래시\\ \"따옴표\"\n줄"}}], channel="email", kind="info",
                        source="notice:2", occurrence="1", subject="안내", body="#{name}", actor=Actor(user=admin_user))
    m = Message.objects.get(source="notice:2")
    assert m.variables == {"name": "탭\t역슬래시\\ \"따옴표\"\n줄"} and m.body.startswith("탭\t역슬래시\\ \"따옴표\"\n줄")
    assert m.created_by_id == admin_user.pk and m.to_address == "a@example.com"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("bad", [{"customer_id": 99_999_999}, {"customer_id": "x"}, {"body": "😀"}])
def test_bad_input_in_the_last_chunk_writes_nothing(crowd, bad):
    rows = [{"customer_id": c.pk} for c in crowd.values()]
    rows.append({**bad, "customer_id": bad.get("customer_id", crowd["consent"].pk)})
    if "body" in bad:
        rows = [{"customer_id": c.pk} for c in crowd.values() if c.pk != crowd["consent"].pk] + [rows[-1]]
    with pytest.raises(ValidationError):
        messaging.send_bulk(rows=rows, channel="sms", kind="info", source="notice:bad", occurrence="1", body="안내", chunk_size=2)
    assert not Message.objects.filter(source="notice:bad").exists() and not Decision.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_chunks_commit_and_a_rerun_after_a_crash_resumes(crowd):
    """Outside a transaction each chunk commits (and kicks the workers): a crash in chunk 3 keeps chunks 1–2 queued; the
    same call again writes the rest once — no second message, no second decision."""
    rows = [{"customer_id": c.pk, "variables": {"n": i}} for i, c in enumerate(crowd.values())]
    call = dict(rows=rows, channel="sms", kind="info", source="notice:crash", occurrence="1", body="#{n}번 안내", chunk_size=3)
    real = bulk._write_chunk
    calls = []

    def crash_on_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("killed")
        return real(*args, **kwargs)

    with mock.patch.object(bulk, "_write_chunk", crash_on_third), mock.patch.object(messaging, "kick_dispatch") as kick:
        with pytest.raises(RuntimeError):
            messaging.send_bulk(**call)
    assert Message.objects.filter(source="notice:crash").count() == 6 and Decision.objects.count() == 6
    assert kick.call_args_list == [mock.call(), mock.call(), mock.call(force=True)]  # after each committed chunk, then once more
    with mock.patch.object(messaging, "kick_dispatch") as kick:
        counts = messaging.send_bulk(**call)
    assert counts["existing"] == 6 and counts["created"] == len(rows) - 6
    assert kick.call_args_list[-1] == mock.call(force=True)
    messages = Message.objects.filter(source="notice:crash")
    assert messages.count() == len(rows) and Decision.objects.count() == len(rows)
    assert sorted(messages.values_list("customer_id", flat=True)) == sorted(c.pk for c in crowd.values())
    assert set(Decision.objects.values_list("message_id", flat=True)) == set(messages.values_list("pk", flat=True))
    again = messaging.send_bulk(**call)
    assert again["created"] == 0 and again["existing"] == len(rows) and Decision.objects.count() == len(rows)


@pytest.mark.django_db(transaction=True)
def test_inside_a_callers_transaction_everything_rolls_back_together(crowd):
    rows = [{"customer_id": c.pk} for c in crowd.values()]
    with mock.patch.object(messaging, "kick_dispatch") as kick:
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                messaging.send_bulk(rows=rows, channel="sms", kind="info", source="notice:tx", occurrence="1", body="안내", chunk_size=2)
                assert Message.objects.filter(source="notice:tx").count() == len(rows)
                raise RuntimeError("the campaign run failed")
        assert kick.call_count == 0
    assert not Message.objects.filter(source="notice:tx").exists() and not Decision.objects.exists()
    with mock.patch.object(messaging, "kick_dispatch") as kick:
        with transaction.atomic():
            messaging.send_bulk(rows=rows, channel="sms", kind="info", source="notice:tx", occurrence="1", body="안내", chunk_size=2)
            assert kick.call_count == 0  # the workers are asked only once the caller commits
        assert kick.call_count == 1
