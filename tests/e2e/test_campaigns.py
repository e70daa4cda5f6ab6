"""The marketing demo of issue 7 in headless Chromium at desktop width: a manager builds "VIP tier, lives in 강남구, no
visit in 90 days" watching the live count, drafts a win-back SMS with a 10 % holdout and a 10 % coupon, previews it,
approves and sends it; a coupon is used at the counter and the report shows the comparison with the holdout."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from dangol.campaigns.models import Campaign, Recipient, Segment
from dangol.core.audit import Actor
from dangol.loyalty.models import Coupon
from dangol.loyalty.services import use_coupon
from dangol.messaging.models import Message

from tests.campaigns.conftest import buy, set_tier, tiers, town  # noqa: F401 (fixtures)
from tests.e2e.support import login

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
DESKTOP = {"viewport": {"width": 1280, "height": 900}, "is_mobile": False, "has_touch": False, "device_scale_factor": 1}


@pytest.fixture
def vips(town, make_customer, tiers, buy):  # noqa: F811
    """Twenty lapsed VIP guests from 강남구 with SMS consent (town's 김지수 is one more), and a recent one."""
    guests = []
    for i in range(20):
        guest = make_customer("seoul-hotel", name=f"강남손님{i:02d}", sido="서울특별시", sigungu="강남구",
                              consents=[("sms", "marketing", True)])
        set_tier(guest, tiers["vip"])
        buy(guest, "deluxe", at=timezone.now() - dt.timedelta(days=120))
        guests.append(guest)
    recent = make_customer("seoul-hotel", name="최근손님", sido="서울특별시", sigungu="강남구")
    set_tier(recent, tiers["vip"])
    buy(recent, "deluxe", at=timezone.now() - dt.timedelta(days=3))
    return guests


def change_and_wait(page, locator, action) -> None:
    """Do something that makes the builder post, and wait for htmx to swap the answer in."""
    with page.expect_response(re.compile(r"/segments/new/$")):
        action(locator)
    expect(page.locator(".htmx-request, .htmx-swapping, .htmx-settling")).to_have_count(0)


def test_a_manager_builds_a_segment_sends_a_winback_and_reads_the_report(new_page, live_server, mina, vips, units, screenshot):
    page = new_page(**DESKTOP)
    login(page, live_server, "mina")
    page.get_by_test_id("nav-campaigns").click()
    page.get_by_test_id("tab-segments").click()
    page.get_by_test_id("segment-new").click()
    page.get_by_test_id("segment-name").fill("VIP 강남 90일 미방문")

    change_and_wait(page, page.get_by_test_id("field-0.0"), lambda el: el.select_option("tier"))
    change_and_wait(page, page.get_by_test_id("value-0.0"), lambda el: el.select_option("vip"))
    expect(page.get_by_test_id("count-value")).to_have_text("22")  # every VIP of the hotel

    change_and_wait(page, page.get_by_test_id("add-rule-0"), lambda el: el.click())
    change_and_wait(page, page.get_by_test_id("field-0.1"), lambda el: el.select_option("sigungu"))
    change_and_wait(page, page.get_by_test_id("value-0.1"), lambda el: (el.fill("강남구"), el.press("Tab")))
    expect(page.get_by_test_id("count-value")).to_have_text("22")

    change_and_wait(page, page.get_by_test_id("add-rule-0"), lambda el: el.click())
    change_and_wait(page, page.get_by_test_id("field-0.2"), lambda el: el.select_option("days_since_purchase"))
    expect(page.get_by_test_id("operator-0.2")).to_have_value("gte")
    change_and_wait(page, page.get_by_test_id("value-0.2"), lambda el: (el.fill("90"), el.press("Tab")))
    expect(page.get_by_test_id("count-value")).to_have_text("21")  # the recent guest drops out
    screenshot(page, "campaigns-segment-builder")
    page.get_by_test_id("segment-save").click()

    segment = Segment.objects.get(name="VIP 강남 90일 미방문")
    expect(page.get_by_test_id("segment-count")).to_have_text("21")
    page.get_by_test_id("segment-campaign").click()

    form = page.get_by_test_id("campaign-form")
    form.locator("#id_name").fill("VIP 윈백")
    form.locator("#id_unit").select_option(str(units["seoul-hotel"].pk))
    form.locator("#id_channel").select_option("sms")
    form.locator("#id_body_a").fill("{{ name }}님, 다시 뵙고 싶어요. {{ coupon_value }} 할인 쿠폰 {{ coupon_code }}")
    form.locator("#id_holdout_pct").fill("10")
    form.locator("#id_offer_kind").select_option("percent")
    form.locator("#id_offer_value").fill("10")
    page.get_by_test_id("campaign-save").click()

    campaign = Campaign.objects.get(segment=segment)
    expect(page.get_by_test_id("campaign-status")).to_have_text("Draft")
    expect(page.get_by_test_id("preview-audience")).to_have_text("21")
    expect(page.get_by_test_id("preview-message").first).to_contain_text("SAMPLE0000")
    screenshot(page, "campaigns-preview")
    page.get_by_test_id("campaign-approve").click()
    expect(page.get_by_test_id("campaign-status")).to_have_text("Approved")
    page.get_by_test_id("campaign-send").click()
    expect(page.get_by_test_id("campaign-status")).to_have_text("Sent")

    treated = Recipient.objects.filter(run__campaign=campaign, is_holdout=False)
    held = Recipient.objects.filter(run__campaign=campaign, is_holdout=True)
    assert treated.count() + held.count() == 21 and Message.objects.filter(source=campaign.source).count() == treated.count()
    # A treated guest comes back, uses the coupon at the counter and stays again.
    back = treated.first()
    coupon = Coupon.objects.get(pk=back.coupon_id)
    use_coupon(actor=Actor(user=mina), coupon=coupon, unit=units["seoul-hotel"])
    from dangol.sales.services import LineInput, record_order
    from dangol.sales.models import Product
    record_order(actor=Actor(user=mina), unit=units["seoul-hotel"], customer=back.customer,
                 lines=[LineInput(product_id=Product.objects.get(sku="R-DLX").pk, quantity=1)], at=timezone.now())

    page.get_by_test_id("campaign-report").click()
    expect(page.get_by_test_id("campaign-report-page")).to_be_visible()
    expect(page.get_by_test_id("report-chart")).to_be_visible()
    expect(page.get_by_test_id("report-treated")).to_have_text(str(treated.count()))
    expect(page.get_by_test_id("report-holdout")).to_have_text(str(held.count()))
    expect(page.get_by_test_id("report-coupons")).to_have_text(f"1 / {treated.count()}")
    screenshot(page, "campaigns-report")


def test_quick_clicks_in_the_builder_are_never_lost(new_page, live_server, mina, vips, units):
    """Typing a name and going straight to "+ Rule", or choosing a field and clicking "+ Rule" before the count has come
    back, keeps every change: the name does not post (its blur once raced the click and swallowed it), and a newer
    builder request replaces the one in flight, which is lossless because each carries the whole form."""
    page = new_page(**DESKTOP)
    login(page, live_server, "mina")
    page.goto(f"{live_server.url}/segments/new/")
    posts = []
    page.on("request", lambda r: posts.append(r.post_data or "") if r.method == "POST" and "/segments/new/" in r.url else None)
    name = page.get_by_test_id("segment-name")
    name.fill("빠른 클릭")
    name.press("Tab")  # the name's change event: no post
    name.fill("빠른 클릭 2")
    page.get_by_test_id("add-rule-0").click()  # the name blurs on this click
    expect(page.get_by_test_id("field-0.1")).to_be_visible()
    expect(page.locator(".htmx-request, .htmx-swapping, .htmx-settling")).to_have_count(0)
    assert len(posts) == 1 and "add-rule" in posts[0], posts

    page.get_by_test_id("field-0.1").select_option("tier")  # posts, and without waiting for its answer:
    page.get_by_test_id("add-rule-0").click()
    expect(page.get_by_test_id("field-0.2")).to_be_visible()
    expect(page.locator(".htmx-request, .htmx-swapping, .htmx-settling")).to_have_count(0)
    expect(page.get_by_test_id("field-0.1")).to_have_value("tier")
    expect(page.get_by_test_id("field-0.2")).to_have_value("")
    expect(page.locator("[data-testid^='rule-0.']")).to_have_count(3)
    assert name.input_value() == "빠른 클릭 2"
