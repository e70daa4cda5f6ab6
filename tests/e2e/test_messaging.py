"""Messaging in real headless Chromium at 360 px: a manager writes a message to a guest from the 360° page, the live
counter switches from SMS to LMS past 90 bytes (Hangul counted as 2) and refuses an emoji while it is typed; the
message lands in the Messages panel and the outbox; the guest opens the one-click opt-out link of an ad, without
logging in, and the withdrawal blocks the ad still queued."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from dangol.customers.models import Consent
from dangol.messaging import services as messaging
from dangol.messaging.models import Message, Status
from dangol.messaging.senders import unsubscribe_token

from tests.e2e.support import (assert_no_horizontal_scroll, customer_url, login, mark_document, open_customer,
                               still_same_document)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def guest(make_customer):
    return make_customer("seoul-hotel", name="한지민", phone="010-2468-1357", sido="서울특별시", sigungu="강남구",
                         address_line="테헤란로 152", postal_code="06236",
                         consents=[("post", "marketing", True), ("sms", "marketing", True)])


def test_a_manager_composes_with_the_live_byte_counter_and_the_message_is_queued(page, live_server, mina, guest, screenshot):
    login(page, live_server, "mina")
    open_customer(page, live_server, guest)
    panel = page.get_by_test_id("messages-panel")
    expect(panel).to_contain_text("No messages yet.")
    panel.get_by_test_id("compose-message").tap()
    expect(page.get_by_test_id("compose-form")).to_be_visible()
    assert_no_horizontal_scroll(page)
    mark_document(page)

    body = page.get_by_test_id("compose-body")
    body.fill("한지민님, 예약이 확정되었습니다.")  # 12 Hangul + spaces and punctuation
    expect(page.get_by_test_id("sms-type")).to_have_text("SMS")
    expect(page.get_by_test_id("byte-count")).to_have_text(str(len("한지민님, 예약이 확정되었습니다.".encode("cp949"))))

    long_text = "가" * 45
    body.fill(long_text)
    expect(page.get_by_test_id("byte-count")).to_have_text("90")
    expect(page.get_by_test_id("sms-type")).to_have_text("SMS")
    body.press("End")
    body.type("나")  # one more Hangul syllable: 92 bytes, an LMS now
    expect(page.get_by_test_id("sms-type")).to_have_text("LMS")
    expect(page.get_by_test_id("byte-count")).to_have_text("92")
    expect(page.get_by_test_id("byte-counter")).to_contain_text("2000")

    body.fill("체크인은 15시부터입니다 🙂")
    expect(page.get_by_test_id("byte-error")).to_contain_text("🙂")
    assert still_same_document(page)  # the counter updated in place, no page load
    screenshot(page, "messaging-compose-emoji-at-360px")

    # Sending the emoji is refused with the same explanation; nothing reaches the outbox.
    page.get_by_test_id("compose-send").tap()
    expect(page.locator(".field.has-error")).to_contain_text("cannot be sent by SMS")
    assert not Message.objects.exists()

    page.get_by_test_id("compose-body").fill("체크인은 15시부터입니다. 주차는 지하 2층을 이용해 주세요. 편안한 시간 되시길 바랍니다. 감사합니다.")
    expect(page.get_by_test_id("sms-type")).to_have_text("LMS")
    page.locator("#id_subject").fill("예약 안내")
    page.get_by_test_id("compose-send").tap()
    expect(page).to_have_url(customer_url(live_server, guest))
    expect(page.locator(".flash")).to_contain_text("Message queued (LMS)")
    row = page.get_by_test_id("customer-messages").get_by_test_id("message-row").first
    expect(row).to_contain_text("LMS")
    expect(row).to_contain_text("010-****-1357")
    assert_no_horizontal_scroll(page)
    message = Message.objects.get()
    assert (message.subtype, message.subject, message.kind) == ("lms", "예약 안내", "info")

    page.get_by_test_id("nav-messages").tap()
    expect(page.get_by_test_id("outbox-row")).to_have_count(1)
    expect(page.get_by_test_id("count-total")).to_have_text("1")
    assert_no_horizontal_scroll(page)
    screenshot(page, "messaging-outbox-at-360px")



def test_a_picture_makes_the_text_an_mms_and_a_png_is_refused(page, live_server, mina, guest, tmp_path):
    """The composer's picture field at 360 px: a PNG is refused with the reason and nothing is queued; a JPEG sends
    the text as MMS."""
    import io

    from PIL import Image

    for name, kind in [("flyer.png", "PNG"), ("flyer.jpg", "JPEG")]:
        out = io.BytesIO()
        Image.new("RGB", (640, 480), (230, 80, 40)).save(out, format=kind)
        (tmp_path / name).write_bytes(out.getvalue())
    login(page, live_server, "mina")
    open_customer(page, live_server, guest)
    page.get_by_test_id("messages-panel").get_by_test_id("compose-message").tap()
    expect(page.get_by_test_id("compose-image")).to_be_visible()
    assert_no_horizontal_scroll(page)
    page.get_by_test_id("compose-body").fill("한지민님, 새 객실 사진을 보내드립니다.")
    page.get_by_test_id("compose-image").set_input_files(str(tmp_path / "flyer.png"))
    page.get_by_test_id("compose-send").tap()
    expect(page.get_by_test_id("error-image")).to_contain_text("JPEG")
    assert not Message.objects.exists()
    page.get_by_test_id("compose-image").set_input_files(str(tmp_path / "flyer.jpg"))
    page.get_by_test_id("compose-send").tap()
    expect(page).to_have_url(customer_url(live_server, guest))
    expect(page.locator(".flash")).to_contain_text("MMS")
    message = Message.objects.get()
    assert message.subtype == "mms" and message.image.width == 640


def test_the_guest_unsubscribes_with_one_tap_without_logging_in(new_page, live_server, guest, screenshot):
    ad = messaging.send(customer=guest, channel="post", kind="ad", source="campaign:9", occurrence="1", body="겨울 패키지 안내")
    assert ad.status == Status.QUEUED
    page = new_page(locale="ko-KR")
    page.goto(f"{live_server.url}/o/{unsubscribe_token(customer_id=guest.pk, channel='post')}/")
    expect(page.get_by_test_id("opt-out-question")).to_contain_text("광고 메시지")
    expect(page.locator("header nav")).to_have_count(0)  # a public page: no staff navigation
    assert_no_horizontal_scroll(page)
    page.get_by_test_id("opt-out-confirm").tap()
    done = page.get_by_test_id("opt-out-done")
    expect(done).to_contain_text("수신거부가 처리되었습니다")
    expect(done).to_contain_text("You are unsubscribed")
    assert_no_horizontal_scroll(page)
    screenshot(page, "messaging-opt-out-at-360px")
    latest = Consent.objects.filter(customer=guest, channel="post", purpose="marketing").order_by("-at", "-id").first()
    assert latest.granted is False and latest.method == "one-click unsubscribe link"
    assert Message.objects.get(pk=ad.pk).status == Status.BLOCKED

    page.goto(f"{live_server.url}/o/not-a-real-token/")
    expect(page.get_by_test_id("opt-out-invalid")).to_be_visible()
