"""Messaging pages through the test client: the composer and its live byte counter, the 360° panel, the outbox log,
the suppression list, sender profiles, the direct-mail print file, the call list and the public opt-out page —
permissions (staff, manager, another unit's manager, admin), CSRF, masking and bad input."""
from __future__ import annotations

import csv
import io

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import translation
from openpyxl import load_workbook
from pypdf import PdfReader

from dangol.core.audit import Actor
from dangol.core.models import AuditEvent, Role
from dangol.core.services import create_staff_user
from dangol.customers.models import Consent
from dangol.messaging import services as messaging
from dangol.messaging.models import Message, Status, Suppression
from dangol.messaging.senders import unsubscribe_token

from tests.helpers import PASSWORD, login

pytestmark = pytest.mark.django_db

EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


@pytest.fixture
def busan_manager(units):
    return create_staff_user(username="jun", password=PASSWORD, role=Role.MANAGER, units=[units["busan-hotel"]])


@pytest.fixture
def guest(make_customer):
    """A Seoul hotel guest with an address, phone and post/phone ad consent."""
    return make_customer("seoul-hotel", name="한지민", phone="010-2468-1357", sido="서울특별시", sigungu="강남구",
                         address_line="테헤란로 152", postal_code="06236",
                         consents=[("post", "marketing", True), ("phone", "marketing", True), ("sms", "marketing", True)])


@pytest.fixture
def bakery_customer(make_customer):
    return make_customer("bakery", name="박서준", phone="010-1357-2468")


def client_for(user) -> Client:
    return login(Client(**EN), user)


def send_info(customer, occurrence="1", channel="sms", body="예약이 확정되었습니다.", **kw):
    return messaging.send(customer=customer, channel=channel, kind="info", source="test:ui", occurrence=occurrence, body=body, **kw)


# --- composer and byte counter --------------------------------------------------------------------------------------------

def count(client, body, channel="sms"):
    return client.post(reverse("web:messaging_byte_count"), {"body": body, "channel": channel}, HTTP_HX_REQUEST="true")


def test_the_counter_counts_hangul_as_two_bytes_and_switches_to_lms_after_90(bora):
    client = client_for(bora)
    short = count(client, "안녕하세요 abc")
    assert short.status_code == 200
    assert b'data-testid="sms-type">SMS<' in short.content and b'data-testid="byte-count">14<' in short.content
    exactly = count(client, "가" * 45)
    assert b">SMS<" in exactly.content and b">90<" in exactly.content
    longer = count(client, "가" * 46)
    assert b">LMS<" in longer.content and b">92<" in longer.content and b"2000" in longer.content
    too_long = count(client, "가" * 1001)
    assert b"at most 2,000 bytes" in too_long.content


def test_the_counter_refuses_emoji_while_typing(bora):
    response = count(client_for(bora), "생일 축하해요 🎂")
    assert "cannot be sent by SMS" in response.content.decode() and "🎂" in response.content.decode()


def test_the_counter_needs_a_login(client):
    assert count(client, "x").status_code == 302


def test_staff_compose_an_information_sms_to_a_customer_they_see(bora, bakery_customer):
    client = client_for(bora)
    url = reverse("web:messaging_compose") + f"?customer={bakery_customer.pk}"
    page = client.get(url)
    assert page.status_code == 200 and b"compose-body" in page.content
    assert b'value="ad"' not in page.content  # staff send information only
    response = client.post(url, {"customer": bakery_customer.pk, "channel": "sms", "kind": "info", "subject": "",
                                 "body": "주문하신 케이크가 준비되었습니다.", "request_id": "abc123"})
    assert response.status_code == 302 and response.url == reverse("web:customer_detail", args=[bakery_customer.pk])
    message = Message.objects.get()
    assert (message.customer_id, message.channel, message.kind, message.status, message.subtype) == (
        bakery_customer.pk, "sms", "info", Status.QUEUED, "sms")
    assert message.source == f"staff:{bora.pk}" and message.created_by == bora
    # A double tap sends the same request id: still one message.
    client.post(url, {"customer": bakery_customer.pk, "channel": "sms", "kind": "info", "body": "주문하신 케이크가 준비되었습니다.",
                      "request_id": "abc123"})
    assert Message.objects.count() == 1


def test_compose_refuses_emoji_and_ads_from_staff_with_clear_errors(bora, bakery_customer):
    client = client_for(bora)
    url = reverse("web:messaging_compose") + f"?customer={bakery_customer.pk}"
    emoji = client.post(url, {"customer": bakery_customer.pk, "channel": "sms", "kind": "info", "body": "안녕 😀", "request_id": "a1"})
    assert emoji.status_code == 400 and "cannot be sent by SMS (EUC-KR): 😀" in emoji.content.decode()
    ad = client.post(url, {"customer": bakery_customer.pk, "channel": "sms", "kind": "ad", "body": "세일", "request_id": "a2"})
    assert ad.status_code == 400 and b"Select a valid choice" in ad.content
    empty = client.post(url, {"customer": bakery_customer.pk, "channel": "email", "kind": "info", "body": "", "request_id": "a3"})
    assert empty.status_code == 400 and b"This field is required" in empty.content and b"An email needs a subject" in empty.content
    long_subject = client.post(url, {"customer": bakery_customer.pk, "channel": "sms", "kind": "info", "body": "가" * 60,
                                     "subject": "가" * 21, "request_id": "a4"})
    assert long_subject.status_code == 400 and b"at most 40 bytes" in long_subject.content
    assert not Message.objects.exists()


def test_compose_for_a_customer_of_another_unit_is_404(bora, guest):
    client = client_for(bora)
    assert client.get(reverse("web:messaging_compose") + f"?customer={guest.pk}").status_code == 404
    assert client.post(reverse("web:messaging_compose") + f"?customer={guest.pk}",
                       {"channel": "sms", "kind": "info", "body": "x", "request_id": "a"}).status_code == 404
    assert not Message.objects.exists()


def test_a_manager_sends_an_ad_by_post_labelled_by_the_engine(mina, guest):
    client = client_for(mina)
    url = reverse("web:messaging_compose") + f"?customer={guest.pk}"
    response = client.post(url, {"customer": guest.pk, "channel": "post", "kind": "ad", "subject": "겨울 패키지",
                                 "body": "겨울 패키지를 안내해 드립니다.", "request_id": "p1"})
    assert response.status_code == 302
    message = Message.objects.get()
    assert message.status == Status.QUEUED and message.body.startswith("(광고)")


def test_a_blocked_message_is_reported_with_its_reason(mina, make_customer):
    nobody = make_customer("seoul-hotel", name="이도윤", phone="010-9999-1111")  # no consent at all
    client = client_for(mina)
    response = client.post(reverse("web:messaging_compose") + f"?customer={nobody.pk}",
                           {"customer": nobody.pk, "channel": "sms", "kind": "ad", "body": "세일 안내", "request_id": "b1"},
                           follow=True)
    assert b"Not sent: no consent." in response.content
    assert Message.objects.get().status == Status.BLOCKED


def test_a_test_send_goes_to_the_staff_members_own_number(bora):
    client = client_for(bora)
    url = reverse("web:messaging_compose") + "?test=1"
    assert client.get(url).status_code == 200
    bad = client.post(url, {"mode": "test", "channel": "sms", "kind": "info", "to_address": "12", "body": "테스트",
                            "request_id": "t0"})
    assert bad.status_code == 400 and b"valid phone number" in bad.content
    response = client.post(url, {"mode": "test", "channel": "sms", "kind": "info", "to_address": "010-1111-2222",
                                 "body": "테스트", "request_id": "t1"})
    assert response.status_code == 302
    message = Message.objects.get()
    assert message.is_test and message.to_address == "+821011112222" and message.customer_id is None


def test_compose_without_a_customer_explains_what_to_do(bora):
    response = client_for(bora).get(reverse("web:messaging_compose"))
    assert response.status_code == 200 and b"Send a test to myself" in response.content


def test_csrf_is_required_for_sending(bora, bakery_customer):
    client = Client(enforce_csrf_checks=True, **EN)
    client.force_login(bora)
    response = client.post(reverse("web:messaging_compose") + f"?customer={bakery_customer.pk}",
                           {"customer": bakery_customer.pk, "channel": "sms", "kind": "info", "body": "x", "request_id": "c1"})
    assert response.status_code == 403
    assert not Message.objects.exists()


# --- the 360° panel ------------------------------------------------------------------------------------------------------

def test_the_customer_page_lists_messages_with_status_reason_and_masked_number(bora, bakery_customer):
    send_info(bakery_customer)
    messaging.send(customer=bakery_customer, channel="sms", kind="ad", source="test:ui", occurrence="2", body="세일")
    page = client_for(bora).get(reverse("web:customer_detail", args=[bakery_customer.pk])).content.decode()
    assert 'data-testid="messages-panel"' in page
    assert page.count('data-testid="message-row"') == 2
    assert "010-****-2468" in page and "010-1357-2468" not in page and "+821013572468" not in page
    assert "no consent" in page and "Queued" in page and "Blocked" in page


def test_the_panel_fragment_is_scoped(bora, guest):
    send_info(guest)
    assert client_for(bora).get(reverse("web:messaging_customer_panel", args=[guest.pk])).status_code == 404


# --- outbox --------------------------------------------------------------------------------------------------------------

def test_the_outbox_is_for_managers_and_scoped_to_their_units(bora, mina, busan_manager, alice, guest, bakery_customer):
    send_info(guest, unit=guest.home_unit)
    send_info(bakery_customer, unit=bakery_customer.home_unit)
    url = reverse("web:messaging_outbox")
    assert client_for(bora).get(url).status_code == 403
    mina_page = client_for(mina).get(url).content.decode()
    assert mina_page.count('data-testid="outbox-row"') == 1 and f"#{guest.pk}" in mina_page
    assert client_for(busan_manager).get(url).content.decode().count('data-testid="outbox-row"') == 0
    assert client_for(alice).get(url).content.decode().count('data-testid="outbox-row"') == 2


def test_the_outbox_filters_by_status_channel_and_reason_with_counts(mina, guest, make_customer):
    nobody = make_customer("seoul-hotel", name="이도윤", phone="010-9999-1111")
    send_info(guest, occurrence="1")
    send_info(guest, occurrence="2", channel="post", body="안내문")
    messaging.send(customer=nobody, channel="sms", kind="ad", source="test:ui", occurrence="3", body="세일")
    client = client_for(mina)
    url = reverse("web:messaging_outbox")
    everything = client.get(url).content.decode()
    assert 'data-testid="count-total">3<' in everything and 'data-testid="count-blocked">1<' in everything
    assert "no consent (1)" in everything
    blocked = client.get(url, {"status": "blocked"}).content.decode()
    assert blocked.count('data-testid="outbox-row"') == 1 and f"#{nobody.pk}" in blocked
    assert client.get(url, {"channel": "post"}).content.decode().count('data-testid="outbox-row"') == 1
    by_reason = client.get(url, {"reason": "no_consent"}, HTTP_HX_REQUEST="true")
    assert by_reason.content.decode().count('data-testid="outbox-row"') == 1 and b"<html" not in by_reason.content
    assert client.get(url, {"status": "nonsense", "channel": "<x>"}).status_code == 200  # ignored, not an error


# --- suppression list and senders -------------------------------------------------------------------------------------------

def test_managers_add_and_remove_suppressions_audited(mina, bora):
    url = reverse("web:messaging_suppressions")
    assert client_for(bora).get(url).status_code == 403
    client = client_for(mina)
    bad = client.post(url, {"address": "", "channel": "", "reason": ""})
    assert bad.status_code == 400 and b"This field is required" in bad.content
    wrong_channel = client.post(url, {"address": "010-7777-8888", "channel": "email", "reason": "asked by phone"})
    assert wrong_channel.status_code == 400 and b"suppressed for SMS" in wrong_channel.content
    not_an_address = client.post(url, {"address": "hello", "channel": "", "reason": "asked by phone"})
    assert not_an_address.status_code == 400 and b"valid phone number or email" in not_an_address.content
    response = client.post(url, {"address": "010-7777-8888", "channel": "sms", "reason": "asked by phone"})
    assert response.status_code == 302
    twice = client.post(url, {"address": "01077778888", "channel": "sms", "reason": "again"})
    assert twice.status_code == 400 and b"already on the suppression list" in twice.content
    entry = Suppression.objects.get()
    assert entry.channel == "sms" and entry.address == "+821077778888"
    listing = client.get(url).content.decode()
    assert "010-****-8888" in listing and "010-7777-8888" not in listing
    assert AuditEvent.objects.filter(action__in=["messaging.suppress", "messaging.unsuppress"]).count() == 1
    assert client_for(bora).post(reverse("web:messaging_suppression_remove", args=[entry.pk])).status_code == 403
    assert client.post(reverse("web:messaging_suppression_remove", args=[entry.pk])).status_code == 302
    assert not Suppression.objects.exists()
    assert AuditEvent.objects.filter(action__in=["messaging.suppress", "messaging.unsuppress"]).count() == 2


def test_a_manager_sets_the_sender_profile_of_their_unit_audited(mina, bora, units, guest):
    url = reverse("web:messaging_senders")
    assert client_for(bora).get(url).status_code == 403
    client = client_for(mina)
    page = client.get(url).content.decode()
    assert "한빛호텔 서울" in page and "080" in page and "The whole group" not in page
    bad = client.post(url, {"unit": units["seoul-hotel"].pk, "name": "한빛호텔", "contact": "02-771-0000",
                            "optout_number": "02-123-4567"})
    assert bad.status_code == 400 and b"free 080 number" in bad.content
    other_unit = client.post(url, {"unit": units["bakery"].pk, "name": "x", "contact": "02-1", "optout_number": "080-1"})
    assert other_unit.status_code == 400 and b"Select a valid choice" in other_unit.content
    group = client.post(url, {"unit": "group", "name": "x", "contact": "02-1", "optout_number": "080-1"})
    assert group.status_code == 400  # the group's default is the admins'
    ok = client.post(url, {"unit": units["seoul-hotel"].pk, "name": "한빛호텔 서울", "contact": "02-771-0000",
                           "optout_number": "080-771-0000", "sms_from": "02-771-0000", "email_from": ""})
    assert ok.status_code == 302
    assert AuditEvent.objects.filter(action="messaging.sender_profile", actor=mina).exists()
    # The ads of the unit say so now.
    ad = messaging.send(customer=guest, channel="sms", kind="ad", source="test:ui", occurrence="s1", body="세일",
                        unit=units["seoul-hotel"])
    assert ad.body.startswith("(광고)한빛호텔 서울") and ad.body.endswith("무료수신거부 080-771-0000")
    assert "080-771-0000" in client.get(url).content.decode()


def test_an_admin_sets_the_group_default(alice):
    response = client_for(alice).post(reverse("web:messaging_senders"), {
        "unit": "group", "name": "한빛그룹", "contact": "02-000-1111", "optout_number": "0801112222"})
    assert response.status_code == 302
    from dangol.messaging.senders import sender_for

    assert sender_for(None).name == "한빛그룹" and sender_for(None).optout_number == "0801112222"


def test_the_nav_link_shows_for_managers_only(mina, bora):
    assert b'data-testid="nav-messages"' in client_for(mina).get(reverse("web:home")).content
    assert b'data-testid="nav-messages"' not in client_for(bora).get(reverse("web:home")).content


# --- direct mail ------------------------------------------------------------------------------------------------------------

def test_the_print_file_has_letters_and_labels_for_allowed_customers_only(mina, guest, make_customer):
    no_consent = make_customer("seoul-hotel", name="최유나", phone="010-3333-4444", sido="부산광역시", address_line="해운대로 1")
    withdrawn = make_customer("seoul-hotel", name="정하은", phone="010-3333-5555", sido="서울특별시", address_line="세종대로 1",
                              consents=[("post", "marketing", True)])
    for customer in (guest, no_consent, withdrawn):
        messaging.send(customer=customer, channel="post", kind="ad", source="campaign:7", occurrence="1", subject="겨울 패키지",
                       body="겨울 패키지를 안내해 드립니다.", unit=guest.home_unit)
    from dangol.customers.services import set_consent

    set_consent(actor=Actor.system("test"), customer=withdrawn, channel="post", purpose="marketing", granted=False, unit=None,
                source="phone", method="test")
    client = client_for(mina)
    outbox = client.get(reverse("web:messaging_outbox"), {"channel": "post", "source": "campaign:7"}).content.decode()
    assert 'data-testid="print-form"' in outbox
    response = client.post(reverse("web:messaging_print"), {"source": "campaign:7", "what": "both"})
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    pages = [p.extract_text() for p in PdfReader(io.BytesIO(response.content)).pages]
    assert len(pages) == 2  # one letter, one label sheet
    assert "한지민 님" in pages[0] and "(우) 06236" in pages[0] and "(광고)" in pages[0] and "겨울 패키지" in pages[0]
    assert "한지민 님" in pages[1]
    assert "최유나" not in "".join(pages) and "정하은" not in "".join(pages)
    printed = Message.objects.get(customer=guest)
    assert printed.status == Status.SENT
    assert AuditEvent.objects.filter(action="messaging.print").count() == 1
    # Printed once: a second print has nothing left and says so.
    again = client.post(reverse("web:messaging_print"), {"source": "campaign:7"}, follow=True)
    assert b"Nothing to print" in again.content


def test_printing_is_for_managers_and_needs_a_batch(bora, mina):
    assert client_for(bora).post(reverse("web:messaging_print"), {"source": "campaign:7"}).status_code == 403
    assert client_for(mina).get(reverse("web:messaging_print")).status_code == 405
    response = client_for(mina).post(reverse("web:messaging_print"), {"source": ""}, follow=True)
    assert b"Choose the batch" in response.content


# --- call list --------------------------------------------------------------------------------------------------------------

@pytest.fixture
def callable_customers(make_customer, guest):
    make_customer("seoul-hotel", name="최유나", phone="010-3333-4444")  # no phone consent
    make_customer("seoul-hotel", name="정하은", phone="010-3333-5555", consents=[("phone", "marketing", False)])
    return guest


def test_a_manager_downloads_the_call_list_with_full_numbers_audited(mina, callable_customers):
    client = client_for(mina)
    unit = callable_customers.home_unit
    assert client.get(reverse("web:messaging_call_list")).status_code == 200
    response = client.post(reverse("web:messaging_call_list"), {"unit": unit.pk, "file_format": "csv", "stage": "",
                                                                "reason": "winter package calls"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert len(rows) == 2 and rows[1][1:3] == ["한지민", "010-2468-1357"]
    event = AuditEvent.objects.get(action="messaging.call_list")
    assert event.actor == mina and "reason:winter package calls" in event.fields and "phone" in event.fields


def test_staff_get_masked_numbers_in_xlsx(bora, make_customer):
    make_customer("bakery", name="박서준", phone="010-1357-2468", consents=[("phone", "marketing", True)])
    client = client_for(bora)
    unit = bora.units.get()
    response = client.post(reverse("web:messaging_call_list"), {"unit": unit.pk, "file_format": "xlsx", "reason": "단골 안부 전화"})
    assert response.status_code == 200
    values = list(load_workbook(io.BytesIO(response.content)).active.iter_rows(values_only=True))
    assert values[1][1:3] == ("박*준", "010-****-2468")
    assert "phone_masked" in AuditEvent.objects.get(action="messaging.call_list").fields


def test_the_call_list_asks_for_a_reason_and_refuses_other_units(bora, units):
    client = client_for(bora)
    no_reason = client.post(reverse("web:messaging_call_list"), {"unit": bora.units.get().pk, "file_format": "csv", "reason": "x"})
    assert no_reason.status_code == 400 and b"at least 5 characters" in no_reason.content
    other = client.post(reverse("web:messaging_call_list"), {"unit": units["seoul-hotel"].pk, "file_format": "csv",
                                                             "reason": "just looking"})
    assert other.status_code == 400 and b"Select a valid choice" in other.content
    assert not AuditEvent.objects.filter(action="messaging.call_list").exists()


# --- public opt-out -----------------------------------------------------------------------------------------------------------

def test_the_opt_out_page_needs_no_login_and_works_at_once(client, guest):
    queued = messaging.send(customer=guest, channel="post", kind="ad", source="campaign:8", occurrence="1", body="안내")
    token = unsubscribe_token(customer_id=guest.pk, channel="post")
    url = reverse("web:messaging_opt_out", args=[token])
    page = client.get(url, **EN)
    assert page.status_code == 200 and "수신거부" in page.content.decode() and page["Cache-Control"].startswith("no-store")
    assert Message.objects.get(pk=queued.pk).status == Status.QUEUED
    done = client.post(url, **EN)
    assert done.status_code == 200 and "You are unsubscribed" in done.content.decode() and "수신거부가 처리되었습니다" in done.content.decode()
    latest = Consent.objects.filter(customer=guest, channel="post", purpose="marketing").order_by("-at", "-id").first()
    assert latest.granted is False
    assert Message.objects.get(pk=queued.pk).status == Status.BLOCKED
    again = client.post(url, **EN)
    assert "already unsubscribed" in again.content.decode()


def test_a_forged_opt_out_link_is_404(client, guest):
    token = unsubscribe_token(customer_id=guest.pk, channel="sms")
    response = client.get(reverse("web:messaging_opt_out", args=[token[:-3] + "abc"]), **EN)
    assert response.status_code == 404 and b"not valid" in response.content
    assert client.post(reverse("web:messaging_opt_out", args=["nonsense"]), **EN).status_code == 404


def test_the_opt_out_works_without_a_csrf_cookie(guest):
    """A browser that refuses cookies (or a mail client's one-click POST) still unsubscribes: the signed token is
    the capability."""
    client = Client(enforce_csrf_checks=True, **EN)
    token = unsubscribe_token(customer_id=guest.pk, channel="sms")
    response = client.post(reverse("web:messaging_opt_out", args=[token]))
    assert response.status_code == 200 and b"You are unsubscribed" in response.content
    assert Consent.objects.filter(customer=guest, channel="sms", purpose="marketing").order_by("-at", "-id").first().granted is False


def test_the_outbox_and_the_panel_do_not_query_per_row(mina, guest, django_assert_max_num_queries):
    """N+1 guard: 40 messages cost the same queries as 11 (past the panel's 10, where it counts the rest)."""
    def pages(client):
        client.get(reverse("web:messaging_outbox"))
        client.get(reverse("web:messaging_customer_panel", args=[guest.pk]))

    client = client_for(mina)
    for i in range(11):
        send_info(guest, occurrence=f"a{i}", unit=guest.home_unit)
    pages(client)  # the session and the language settle on the first requests
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        pages(client)
    for i in range(29):
        send_info(guest, occurrence=f"b{i}", unit=guest.home_unit)
    with django_assert_max_num_queries(len(few.captured_queries)):
        pages(client)


def test_frequency_caps_are_shown_to_managers_and_set_by_admins(mina, alice, bora, guest):
    url = reverse("web:messaging_caps")
    assert client_for(bora).get(url).status_code == 403
    assert client_for(mina).get(url).status_code == 200
    assert client_for(mina).post(url, {"channel": "sms", "max_messages": 1, "period_days": 7}).status_code == 403
    admin = client_for(alice)
    bad = admin.post(url, {"channel": "sms", "max_messages": 0, "period_days": 7})
    assert bad.status_code == 400 and b"greater than or equal to 1" in bad.content
    assert admin.post(url, {"channel": "post", "max_messages": 1, "period_days": 7}).status_code == 302
    assert "1 ad in 7 days" in client_for(mina).get(url).content.decode()
    first = messaging.send(customer=guest, channel="post", kind="ad", source="test:ui", occurrence="c1", body="a")
    second = messaging.send(customer=guest, channel="post", kind="ad", source="test:ui", occurrence="c2", body="b")
    assert first.status == Status.QUEUED and (second.status, second.reason) == (Status.BLOCKED, "capped")
    assert admin.post(url, {"channel": "post", "max_messages": "", "period_days": 7}).status_code == 302
    assert "no cap" in client_for(mina).get(url).content.decode()


def test_a_message_page_shows_its_decisions_masked_and_scoped(mina, busan_manager, bora, make_customer):
    nobody = make_customer("seoul-hotel", name="이도윤", phone="010-9999-1111")
    blocked = messaging.send(customer=nobody, channel="sms", kind="ad", source="test:ui", occurrence="d1", body="세일")
    queued = send_info(nobody, occurrence="d2")
    url = reverse("web:messaging_message", args=[queued.pk])
    page = client_for(mina).get(url).content.decode()
    assert "010-****-1111" in page and "+821099991111" not in page and "information" in page
    blocked_page = client_for(mina).get(reverse("web:messaging_message", args=[blocked.pk])).content.decode()
    assert "no consent" in blocked_page and "block" in blocked_page
    assert client_for(busan_manager).get(url).status_code == 404
    assert client_for(bora).get(url).status_code == 403
    assert b"nav-call-list" in client_for(bora).get(reverse("web:home")).content


def test_compose_sends_an_mms_with_a_picture_and_refuses_a_bad_one(bora, bakery_customer):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    from dangol.messaging.models import MessageImage

    def jpeg(kind="JPEG"):
        out = io.BytesIO()
        Image.new("RGB", (320, 240), (10, 120, 200)).save(out, format=kind)
        return out.getvalue()

    client = client_for(bora)
    url = reverse("web:messaging_compose") + f"?customer={bakery_customer.pk}"
    assert b'enctype="multipart/form-data"' in client.get(url).content
    base = {"customer": bakery_customer.pk, "kind": "info", "body": "새 케이크 사진입니다.", "subject": ""}
    png = client.post(url, {**base, "channel": "sms", "request_id": "p1",
                            "image": SimpleUploadedFile("cake.png", jpeg("PNG"), content_type="image/jpeg")}, **EN)
    assert png.status_code == 400 and b"JPEG pictures only" in png.content
    by_email = client.post(url, {**base, "channel": "email", "subject": "케이크", "request_id": "p2",
                                 "image": SimpleUploadedFile("cake.jpg", jpeg(), content_type="image/jpeg")}, **EN)
    assert by_email.status_code == 400 and b"carries a picture" in by_email.content
    assert not Message.objects.exists() and not MessageImage.objects.exists()  # refused: nothing kept
    sent = client.post(url, {**base, "channel": "sms", "request_id": "p3",
                             "image": SimpleUploadedFile("cake.jpg", jpeg(), content_type="image/jpeg")})
    assert sent.status_code == 302
    message = Message.objects.get()
    assert message.subtype == "mms" and bytes(message.image.content) == jpeg() and message.subject
