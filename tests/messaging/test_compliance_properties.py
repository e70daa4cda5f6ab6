"""Property-based tests of the compliance engine: the rules hold over random customers, consents, clocks and kinds,
and the SQL twin (send_bulk, preview, dispatch) decides exactly like the Python rule book."""
from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from django.test import override_settings
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from dangol.core.models import BusinessUnit
from dangol.customers.models import Address, Consent, ContactPoint, Customer
from dangol.messaging import compliance, text
from dangol.messaging.compliance import Facts, decide, is_night
from dangol.messaging.models import FrequencyCap, Message, Suppression
from dangol.messaging.senders import Sender
from dangol.messaging.services import render, subtype_for
from dangol.sales.models import Order

CHANNELS = ["sms", "kakao", "email", "post", "phone"]
KINDS = ["ad", "info"]
BASE = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)
clocks = st.integers(min_value=0, max_value=14 * 24 * 60).map(lambda m: BASE + dt.timedelta(minutes=m))
tristate = st.sampled_from([True, False, None])

facts_strategy = st.builds(
    Facts, customer_id=st.just(1), erased=st.booleans(), merged=st.booleans(), processing_suspended=st.booleans(),
    has_address=st.booleans(), suppressed=st.booleans(), marketing=tristate, night=tristate,
    last_order_at=st.none() | clocks.map(lambda c: c - dt.timedelta(days=200)) | clocks, capped=st.booleans())


def subtype_strategy(channel, kind):
    if channel == "kakao":
        return st.sampled_from(["alimtalk", "brand"])
    return st.just(subtype_for(channel, kind, ""))


@st.composite
def cases(draw):
    channel, kind = draw(st.sampled_from(CHANNELS)), draw(st.sampled_from(KINDS))
    return draw(facts_strategy), channel, kind, draw(subtype_strategy(channel, kind)), draw(clocks), draw(st.booleans())


@given(cases())
@hsettings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_rules_hold_for_every_customer_clock_and_kind(case):
    facts, channel, kind, subtype, now, exception_on = case
    with override_settings(MESSAGING_TRANSACTION_EXCEPTION=exception_on):
        verdict = decide(facts, channel=channel, kind=kind, subtype=subtype, now=now)
    assert verdict.outcome in ("send", "hold", "block")
    if verdict.outcome != "block":
        assert not (facts.erased or facts.merged or facts.suppressed or not facts.has_address)
    if kind == "ad" and verdict.outcome != "block":
        # no ad without current consent (or the exception, only when turned on, only within 6 months, never after a refusal)
        assert facts.marketing is True or (exception_on and facts.marketing is None and facts.last_order_at is not None
                                           and facts.last_order_at >= compliance.months_before(now, 6))
        assert facts.marketing is not False and not facts.processing_suspended and not facts.capped
        assert not (channel == "kakao" and subtype == "alimtalk")  # AlimTalk never an ad
    if kind == "ad" and verdict.outcome == "send" and channel in ("sms", "kakao", "phone") and is_night(now, subtype):
        assert facts.night is True  # none at night without night consent
    if verdict.outcome == "hold":
        assert verdict.reason == "night" and verdict.release_at > now
        assert verdict.release_at.astimezone(compliance.SEOUL).time() == dt.time(8, 0)
        assert verdict.release_at - now <= dt.timedelta(hours=11, minutes=10)
    if kind == "ad" and facts.marketing is False:
        assert verdict.outcome == "block"  # refusal wins
    if kind == "info" and not (facts.erased or facts.merged or facts.suppressed or not facts.has_address):
        assert verdict == compliance.Verdict("send", "info")


@given(st.text(alphabet=st.characters(codec="cp949", exclude_categories=["Cs", "Cc"]), min_size=1, max_size=300),
       st.text(alphabet=st.characters(codec="cp949", exclude_categories=["Cs", "Cc"]), min_size=1, max_size=20))
@hsettings(max_examples=400, deadline=None)
def test_every_ad_is_labelled(body, subject):
    sender = Sender("한빛 베이커리", "02-123-4567", "080-123-4567", "0212345678", "shop@example.com")
    if not body.strip() or not subject.strip():
        return
    try:
        sms = render(channel="sms", kind="ad", subtype="sms", body=body, subject="", variables={}, sender=sender, customer_id=1)
    except Exception as exc:  # only too long, or a #{variable} we were not given
        assert "2,000" in str(exc) or "variables" in str(exc) or "subject" in str(exc)
    else:
        assert sms.body.startswith("(광고)한빛 베이커리") and sms.body.endswith("무료수신거부 080-123-4567")
        assert text.byte_length(sms.body) <= 2000
        assert sms.subtype == ("sms" if text.byte_length(sms.body) <= 90 else "lms")
    try:
        email = render(channel="email", kind="ad", subtype="email", body=body, subject=subject, variables={}, sender=sender, customer_id=1)
    except Exception as exc:
        assert "variables" in str(exc)
    else:
        assert email.subject.startswith("(광고)") and "unsubscribe" in email.body and "unsubscribe" in email.html


# --- parity of the SQL twin ----------------------------------------------------------------------------------------

consent_event = st.tuples(st.sampled_from(["sms", "kakao", "email"]), st.sampled_from(["marketing", "night_marketing"]),
                          st.booleans(), st.integers(min_value=0, max_value=3))  # few distinct times: ties happen
person = st.fixed_dictionaries({
    "erased": st.booleans(), "merged": st.booleans(), "suspended": st.booleans(), "phone": st.booleans(), "email": st.booleans(),
    "address": st.booleans(), "consents": st.lists(consent_event, max_size=5), "suppress": st.sampled_from(["", "customer", "address"]),
    "order_days_ago": st.none() | st.integers(min_value=0, max_value=400), "recent_ads": st.integers(min_value=0, max_value=3),
})


@pytest.mark.django_db
@given(people=st.lists(person, min_size=1, max_size=6), channel=st.sampled_from(CHANNELS), kind=st.sampled_from(KINDS),
       now=clocks, exception_on=st.booleans(), cap=st.none() | st.integers(min_value=1, max_value=3), brand=st.booleans())
@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_sql_and_python_decide_alike(people, channel, kind, now, exception_on, cap, brand):
    with override_settings(MESSAGING_TRANSACTION_EXCEPTION=exception_on):
        _parity(people, channel, kind, now, cap, brand)


def _parity(people, channel, kind, now, cap, brand):
    subtype = "brand" if channel == "kakao" and kind == "ad" and brand else subtype_for(channel, kind, "T" if channel == "kakao" and not brand else "")
    with transaction.atomic():
        unit = BusinessUnit.objects.create(code="u", name="u")
        survivor = Customer.objects.create(name="s", joined_at=now)
        ids = []
        for i, p in enumerate(people):
            c = Customer.objects.create(name=f"c{i}", joined_at=now, processing_suspended=p["suspended"],
                                        erased_at=now if p["erased"] else None, merged_into=survivor if p["merged"] else None)
            ids.append(c.pk)
            phone, email = f"+8210555{i:05d}", f"c{i}@example.com"
            if p["phone"]:
                ContactPoint.objects.create(customer=c, kind="phone", value=phone, is_primary=True)
            if p["email"]:
                ContactPoint.objects.create(customer=c, kind="email", value=email, is_primary=True)
            if p["address"]:
                Address.objects.create(customer=c, sido="서울", line=f"{i}길", is_primary=True)
            for ch, purpose, granted, t in p["consents"]:
                Consent.objects.create(customer=c, channel=ch, purpose=purpose, granted=granted, at=now - dt.timedelta(days=t), source="store")
            if p["suppress"] == "customer":
                Suppression.objects.create(customer=c, channel=channel)
            elif p["suppress"] == "address":
                Suppression.objects.create(address=email if channel == "email" else phone)
            if p["order_days_ago"] is not None:
                Order.objects.create(unit=unit, customer=c, ordered_at=now - dt.timedelta(days=p["order_days_ago"]), total=1000)
            for j in range(p["recent_ads"]):
                Message.objects.create(idempotency_key=f"k{i}-{j}", source="s", occurrence=str(j), customer=c, channel=channel,
                                       subtype="sms", kind="ad", status="sent", created_at=now - dt.timedelta(days=j * 3))
        if cap:
            FrequencyCap.objects.create(channel=channel, max_messages=cap, period_days=7)
        python = {cid: decide(f, channel=channel, kind=kind, subtype=subtype, now=now)
                  for cid, f in compliance.facts_for(ids, channel=channel, now=now).items()}
        sql = {pk: (o, r) for pk, o, r in compliance.annotate_decisions(
            Customer.objects.filter(pk__in=ids), channel=channel, kind=kind, subtype=subtype, now=now).values_list("pk", "m_outcome", "m_reason")}
        assert {cid: (v.outcome, v.reason) for cid, v in python.items()} == sql
        transaction.set_rollback(True)
