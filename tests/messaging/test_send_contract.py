"""The contract others call: send / send_bulk / preview, the labels, the rules, the decisions."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from dangol.core.audit import Actor
from dangol.customers.models import Customer
from dangol.customers.services import set_consent
from dangol.messaging import services as messaging
from dangol.messaging.delivery import dispatch, release_held
from dangol.messaging.models import Decision, FrequencyCap, Message, SenderProfile, Suppression
from dangol.messaging.text import byte_length, check_sms_text, sms_type

pytestmark = pytest.mark.django_db


def send(customer, **kw):
    args = dict(customer=customer, channel="sms", kind="ad", source="campaign:1", occurrence="A", body="신상 크루아상 20% 할인")
    args.update(kw)
    return messaging.send(**args)


def test_it_queues_a_labelled_ad_once_per_key(customer, units):
    SenderProfile.objects.create(unit=units["bakery"], name="한빛 베이커리", contact="02-123-4567", optout_number="080-123-4567")
    first = send(customer, unit=units["bakery"])
    again = send(customer, unit=units["bakery"], body="다른 본문")
    assert first.pk == again.pk and Message.objects.count() == 1
    assert first.status == "queued" and first.subtype == "lms" or first.subtype == "sms"
    assert first.body.startswith("(광고)한빛 베이커리\n")
    assert first.body.splitlines()[-1] == "무료수신거부 080-123-4567"
    assert "02-123-4567" in first.body and first.to_address.startswith("+8210")
    assert list(first.decisions.values_list("outcome", "reason")) == [("send", "consent")]


def test_variant_ad_labels_are_replaced_by_the_exact_one(customer):
    message = send(customer, body="[광고] 주말 특가")
    assert message.body.startswith("(광고)") and "[광고]" not in message.body and message.body.count("광고") == 1


def test_long_text_becomes_lms_with_a_subject_and_too_long_is_refused(customer):
    message = send(customer, body="가" * 100, occurrence="long")
    assert message.subtype == "lms" and message.subject
    with pytest.raises(ValidationError):
        send(customer, body="가" * 1001, occurrence="too-long")
    assert not Message.objects.filter(occurrence="too-long").exists()


def test_byte_counting_and_euckr_validator():
    assert byte_length("가a") == 3
    assert sms_type("a" * 90).subtype == "sms" and sms_type("가" * 46).subtype == "lms"
    with pytest.raises(ValidationError) as err:
        check_sms_text("할인 😀")
    assert "😀" in str(err.value)


def test_an_emoji_in_an_sms_is_refused_and_nothing_is_written(customer):
    with pytest.raises(ValidationError):
        send(customer, body="할인 😀")
    assert Message.objects.count() == 0 and Decision.objects.count() == 0


@pytest.mark.parametrize("bad", [dict(channel="fax"), dict(kind="spam"), dict(source=""), dict(channel="kakao", kind="info")])
def test_bad_input_is_refused_with_a_clear_error(customer, bad):
    with pytest.raises(ValidationError):
        send(customer, **bad)
    assert Message.objects.count() == 0


def test_no_consent_refusal_and_suspension_block_ads_but_not_information(make_customer, clock, customer):
    nobody = make_customer(name="이바다")
    assert send(nobody).reason == "no_consent"
    set_consent(actor=Actor.system("test"), customer=customer, channel="sms", purpose="marketing", granted=False, unit=None, source="store")
    blocked = send(customer, occurrence="after-refusal")
    assert (blocked.status, blocked.reason, blocked.to_address) == ("blocked", "refused", "")
    assert send(customer, kind="info", occurrence="order", body="주문하신 빵이 준비되었습니다").status == "queued"
    Customer.objects.filter(pk=nobody.pk).update(processing_suspended=True)
    set_consent(actor=Actor.system("test"), customer=nobody, channel="sms", purpose="marketing", granted=True, unit=None, source="store")
    assert send(nobody, occurrence="suspended").reason == "processing_suspended"


def test_a_withdrawal_stops_queued_and_held_ads_at_once(customer, clock):
    day = send(customer, occurrence="day")
    clock.set("2026-11-24 22:00")
    night = send(customer, occurrence="night")
    assert (day.status, night.status) == ("queued", "held")
    info = send(customer, kind="info", occurrence="info", body="예약 확인")
    set_consent(actor=Actor.system("test"), customer=customer, channel="sms", purpose="marketing", granted=False, unit=None, source="web")
    for m in (day, night):
        m.refresh_from_db()
        assert (m.status, m.reason) == ("blocked", "refused")
        assert m.decisions.filter(stage="withdrawal").exists()
    info.refresh_from_db()
    assert info.status == "queued"


def test_night_ads_are_held_until_eight_and_released(customer, clock):
    clock.set("2026-11-24 21:00")
    message = send(customer)
    assert (message.status, message.reason) == ("held", "night")
    assert message.next_attempt_at == clock.set("2026-11-25 08:00")
    clock.set("2026-11-25 07:59")
    assert release_held() == 0
    clock.set("2026-11-25 08:00")
    assert release_held() == 1
    dispatch(max_seconds=5)
    message.refresh_from_db()
    assert message.status == "sent"


def test_night_consent_lets_ads_go_at_night_and_email_is_exempt(customer, clock):
    clock.set("2026-11-24 23:30")
    assert send(customer, channel="email", subject="주말 특가").status == "queued"
    set_consent(actor=Actor.system("test"), customer=customer, channel="sms", purpose="night_marketing", granted=True, unit=None, source="store")
    assert send(customer, occurrence="night-ok").status == "queued"


def test_kakao_brand_messages_stop_at_twenty_fifty_and_alimtalk_never_carries_an_ad(customer, clock):
    clock.set("2026-11-24 20:55")
    brand = send(customer, channel="kakao")
    assert (brand.subtype, brand.status, brand.reason) == ("brand", "held", "night")
    assert send(customer, channel="sms", occurrence="sms-2055").status == "queued"
    ad_template = send(customer, channel="kakao", template_code="PROMO_01", occurrence="alim-ad")
    assert (ad_template.status, ad_template.reason) == ("blocked", "alimtalk_ad")
    info = send(customer, channel="kakao", kind="info", template_code="ORDER_READY", body="#{name}님 주문이 준비되었습니다",
                variables={"name": "김하늘"}, occurrence="alim-info")
    assert (info.subtype, info.status, info.body) == ("alimtalk", "queued", "김하늘님 주문이 준비되었습니다")


def test_email_ads_carry_the_label_and_an_unsubscribe_link(customer):
    message = send(customer, channel="email", subject="주말 특가", body="빵 사러 오세요")
    assert message.subject == "(광고)주말 특가"
    link = messaging.opt_out_link(customer_id=customer.pk, channel="email")
    assert link in message.body and link in message.html and link.startswith("http")
    assert message.to_address == "haneul@example.com"


def test_suppression_and_frequency_caps(customer, make_customer):
    FrequencyCap.objects.create(channel="sms", max_messages=2, period_days=7)
    assert [send(customer, occurrence=str(i)).status for i in range(3)] == ["queued", "queued", "blocked"]
    assert Message.objects.get(occurrence="2").reason == "capped"
    other = make_customer(name="박솔", consents=[("sms", "marketing", True)])
    Suppression.objects.create(address=other.contacts.get().value, reason="complaint")
    assert send(other, kind="info", body="안내").reason == "suppressed"


def test_transaction_exception_only_when_turned_on(customer, make_customer, settings, products, clock):
    from dangol.sales.models import Order

    buyer = make_customer(name="최구매")
    Order.objects.create(unit=products["croissant"].unit, customer=buyer, ordered_at=clock.now, total=4500)
    assert send(buyer).reason == "no_consent"
    settings.MESSAGING_TRANSACTION_EXCEPTION = True
    assert send(buyer, occurrence="B").status == "queued"
    assert Decision.objects.filter(message__occurrence="B").get().reason == "transaction_exception"
    set_consent(actor=Actor.system("test"), customer=buyer, channel="sms", purpose="marketing", granted=False, unit=None, source="store")
    assert send(buyer, occurrence="C").reason == "refused"  # a refusal wins over the exception


def test_send_bulk_is_set_based_idempotent_and_counts(customer, make_customer, django_assert_max_num_queries):
    others = [make_customer(name=f"고객{i}", consents=[("sms", "marketing", True)] if i % 2 else []) for i in range(10)]
    rows = [{"customer_id": c.pk, "variables": {"name": c.name}} for c in [customer, *others]]
    with django_assert_max_num_queries(20):
        counts = messaging.send_bulk(rows=rows, channel="sms", kind="ad", source="campaign:9", occurrence="1", body="#{name}님 할인")
    assert counts["total"] == 11 and counts["created"] == 11 and counts["queued"] == 6
    assert counts["by_reason"] == {"no_consent": 5}
    assert Message.objects.get(customer=customer, source="campaign:9").body.startswith("(광고)")
    assert messaging.send_bulk(rows=rows, channel="sms", kind="ad", source="campaign:9", occurrence="1", body="#{name}님 할인")["existing"] == 11
    assert Message.objects.filter(source="campaign:9").count() == 11 and Decision.objects.filter(message__source="campaign:9").count() == 11


def test_send_bulk_bad_rows_write_nothing(customer):
    with pytest.raises(ValidationError):
        messaging.send_bulk(rows=[{"customer_id": customer.pk}, {"customer_id": 999999}], channel="sms", kind="ad", source="c", occurrence="1",
                            body="할인")
    with pytest.raises(ValidationError):
        messaging.send_bulk(rows=[{"customer_id": customer.pk, "body": "😀"}], channel="sms", kind="ad", source="c", occurrence="1")
    assert Message.objects.count() == 0


def test_preview_counts_without_writing(customer, make_customer, clock):
    make_customer(name="무동의")
    ids = Customer.objects.values_list("pk", flat=True)
    assert messaging.preview(customer_ids=ids, channel="sms", kind="ad") == {
        "total": 2, "send": 1, "hold": 0, "block": 1, "by_reason": {"consent": 1, "no_consent": 1}}
    clock.set("2026-11-24 22:00")
    assert messaging.preview(customer_ids=ids, channel="sms", kind="ad")["by_reason"] == {"night": 1, "no_consent": 1}
    assert Message.objects.count() == 0


def test_test_sends_go_to_staff_labelled(alice, customer):
    message = messaging.send_test(actor=Actor(user=alice), channel="sms", to_address="010-9999-0000", body="신상 안내")
    assert message.is_test and message.body.startswith("(광고)") and message.to_address == "+821099990000"
    assert message.decisions.get().reason == "staff_test"
    with pytest.raises(ValidationError):
        messaging.send_test(actor=Actor.system("x"), channel="sms", to_address="010-9999-0000", body="x")


def test_dispatch_writes_to_the_file_sink_once(customer, settings):
    message = send(customer)
    assert dispatch(max_seconds=5)["sent"] == 1
    message.refresh_from_db()
    assert message.status == "sent" and message.sent_at and message.provider == "file"
    files = list((settings.DATA_DIR / "outbox" / "sms").glob("*.json"))
    assert len(files) == 1 and "(광고)" in files[0].read_text()
    assert dispatch(max_seconds=5).get("sent", 0) == 0


def test_dispatch_decides_again_before_sending(customer, clock):
    message = send(customer)
    Message.objects.filter(pk=message.pk).update(status="queued")
    Customer.objects.filter(pk=customer.pk).update(processing_suspended=True)  # changed behind the engine's back
    dispatch(max_seconds=5)
    message.refresh_from_db()
    assert (message.status, message.reason) == ("blocked", "processing_suspended")


def test_customer_erased_scrubs_the_messages(customer):
    from dangol.core import events

    message = send(customer)
    events.emit("customer_erased", customer_id=customer.pk)
    message.refresh_from_db()
    assert (message.body, message.to_address, message.subject, message.status) == ("", "", "", "blocked")
