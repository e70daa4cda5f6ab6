"""Segment builder, exports, imports, campaign pages and automations through the test client."""
from __future__ import annotations

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from dangol.campaigns import automations, segments, services
from dangol.campaigns.models import Automation, AutomationSend, Campaign, Segment, SegmentExport, SegmentKind
from dangol.core.audit import Actor
from dangol.core.models import AuditEvent
from dangol.customers.services import DateParts
from dangol.messaging.models import Message

pytestmark = pytest.mark.django_db


def post_builder(client, data, **extra):
    return client.post(reverse("web:segment_new"), data, HTTP_HX_REQUEST="true", HTTP_ACCEPT_LANGUAGE="en", **extra)


def test_the_builder_adds_rules_and_groups_and_counts_live(client, town, mina, units):
    client.force_login(mina)
    page = client.get(reverse("web:segment_new"), HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200 and b'data-testid="live-count"' in page.content
    base = {"unit": units["seoul-hotel"].pk, "n-0-kind": "group", "n-0-op": "and", "n-0.0-kind": "rule",
            "n-0.0-field": "tier", "n-0.0-operator": "in", "n-0.0-value": ["vip"]}
    answer = post_builder(client, base)
    assert answer.context["count"] == 1 and b"field-0.0" in answer.content
    answer = post_builder(client, {**base, "action": "add-group:0"})
    assert b'data-testid="group-0.1"' in answer.content and b'data-testid="field-0.1.0"' in answer.content
    nested = {**base, "n-0.1-kind": "group", "n-0.1-op": "or", "n-0.1.0-kind": "rule", "n-0.1.0-field": "sigungu",
              "n-0.1.0-operator": "in", "n-0.1.0-value": "강남구", "n-0.1.1-kind": "rule",
              "n-0.1.1-field": "days_since_purchase", "n-0.1.1-value": "90"}
    answer = post_builder(client, nested)
    assert answer.context["count"] == 1
    answer = post_builder(client, {**nested, "action": "remove:0.0"})
    assert answer.context["count"] == 1 and b'data-testid="rule-0.0.0"' in answer.content
    bad = post_builder(client, {**base, "n-0.0-field": "points", "n-0.0-value": "lots"})
    assert b'data-testid="problem-0.0"' in bad.content
    evil = post_builder(client, {**base, "n-0.0-field": "name' OR 1=1", "n-0;drop-kind": "rule"})
    assert evil.status_code == 200


def test_saving_a_segment_and_seeing_its_members(client, town, mina, units):
    client.force_login(mina)
    data = {"unit": units["seoul-hotel"].pk, "name": "VIP Gangnam", "action": "save", "n-0-kind": "group", "n-0-op": "and",
            "n-0.0-kind": "rule", "n-0.0-field": "sigungu", "n-0.0-operator": "in", "n-0.0-value": "강남구"}
    answer = client.post(reverse("web:segment_new"), data)
    segment = Segment.objects.get(name="VIP Gangnam")
    assert answer.status_code == 302 and segment.unit == units["seoul-hotel"]
    detail = client.get(reverse("web:segment_detail", args=[segment.pk]), HTTP_ACCEPT_LANGUAGE="en")
    assert detail.context["page"].paginator.count == 1 and "김*수" in detail.content.decode()


def test_staff_see_only_their_units_segments(client, town, mina, bora, units):
    segment = segments.create_segment(actor=Actor(user=mina), name="hotel", unit=units["seoul-hotel"],
                                      tree={"op": "and", "rules": []})
    client.force_login(bora)
    assert client.get(reverse("web:segment_detail", args=[segment.pk])).status_code == 404


def test_export_is_masked_for_staff_full_for_managers_and_audited(client, town, mina, bora, units):
    segment = segments.create_segment(actor=Actor(user=bora), name="bakery", unit=units["bakery"], tree={"op": "and", "rules": []})
    client.force_login(bora)
    refused = client.post(reverse("web:segment_export", args=[segment.pk]), {"reason": ""})
    assert refused.status_code == 302 and not SegmentExport.objects.exists()
    answer = client.post(reverse("web:segment_export", args=[segment.pk]), {"reason": "bakery newsletter by post"})
    text = b"".join(answer.streaming_content).decode()
    assert "박*나" in text and "박유나" not in text and "****" in text
    assert SegmentExport.objects.get().full_contacts is False
    assert AuditEvent.objects.filter(action="segment.export_masked", object_id=str(segment.pk)).exists()
    hotel = segments.create_segment(actor=Actor(user=mina), name="hotel", unit=units["seoul-hotel"], tree={"op": "and", "rules": []})
    client.force_login(mina)
    text = b"".join(client.post(reverse("web:segment_export", args=[hotel.pk]), {"reason": "VIP call list"}).streaming_content).decode()
    assert "김지수" in text and AuditEvent.objects.filter(action="segment.export_full").exists()


def test_freeze_and_import_make_static_lists(client, town, mina, units):
    segment = segments.create_segment(actor=Actor(user=mina), name="hotel", unit=units["seoul-hotel"], tree={"op": "and", "rules": []})
    frozen = segments.freeze_segment(actor=Actor(user=mina), segment=segment)
    assert frozen.kind == SegmentKind.STATIC and frozen.member_count == 2
    phone = town["jisu"].contacts.get(kind="phone").value
    csv = f"전화번호,이름\n{phone},x\n010-0000-0000,y\nnot a number,z\n010 9999 8888,w\n".encode("cp949")
    client.force_login(mina)
    answer = client.post(reverse("web:segment_import"), {"name": "list", "unit": units["seoul-hotel"].pk,
                                                         "file": SimpleUploadedFile("l.csv", csv, content_type="text/csv")})
    imported = Segment.objects.get(name="list")
    assert answer.status_code == 302 and imported.member_count == 1
    assert list(imported.members.values_list("customer__name", flat=True)) == ["김지수"]
    bad = client.post(reverse("web:segment_import"), {"name": "bad", "file": SimpleUploadedFile("b.csv", b"\xff\xfe\x00junk")})
    assert bad.status_code == 200 and not Segment.objects.filter(name="bad").exists()


def test_campaign_pages_draft_preview_approve_send_and_report(client, town, mina, units):
    segment = segments.create_segment(actor=Actor(user=mina), name="hotel", unit=units["seoul-hotel"], tree={"op": "and", "rules": []})
    client.force_login(mina)
    form = client.get(reverse("web:campaign_new") + f"?segment={segment.pk}", HTTP_ACCEPT_LANGUAGE="en")
    assert form.status_code == 200
    answer = client.post(reverse("web:campaign_new"), {
        "name": "Win-back", "segment": segment.pk, "unit": units["seoul-hotel"].pk, "channel": "sms", "kind": "ad",
        "body_a": "{{ name }}님 {{ coupon_code }}", "holdout_pct": 10, "offer_kind": "percent", "offer_value": 10,
        "offer_valid_days": 14, "attribution_days": 14, "share_a": 50})
    campaign = Campaign.objects.get()
    assert answer.status_code == 302
    detail = client.get(reverse("web:campaign_detail", args=[campaign.pk]), HTTP_ACCEPT_LANGUAGE="en")
    assert detail.context["preview"]["audience"] == 2
    client.post(reverse("web:campaign_action", args=[campaign.pk, "approve"]))
    client.post(reverse("web:campaign_action", args=[campaign.pk, "send-now"]))
    campaign.refresh_from_db()
    assert campaign.status == "sent"
    report = client.get(reverse("web:campaign_report", args=[campaign.pk]), HTTP_ACCEPT_LANGUAGE="en")
    assert report.status_code == 200 and b'data-testid="report-chart"' in report.content
    csv = client.get(reverse("web:campaign_report", args=[campaign.pk]) + "?format=csv")
    assert csv.content.startswith(b"group,customers")


def test_a_template_with_tags_is_refused_on_the_form(client, town, mina, units):
    segment = segments.create_segment(actor=Actor(user=mina), name="hotel", unit=units["seoul-hotel"], tree={"op": "and", "rules": []})
    client.force_login(mina)
    answer = client.post(reverse("web:campaign_new"), {
        "name": "x", "segment": segment.pk, "unit": units["seoul-hotel"].pk, "channel": "sms", "kind": "ad",
        "body_a": "{% debug %}", "holdout_pct": 10, "attribution_days": 14}, HTTP_ACCEPT_LANGUAGE="en")
    assert answer.status_code == 200 and not Campaign.objects.exists() and answer.context["form"].errors


def test_staff_cannot_approve_through_the_page(client, town, units, mina):
    from dangol.core.services import create_staff_user
    sol = create_staff_user(username="sol", password="x-very-long-pw", role="staff", units=[units["seoul-hotel"]])
    segment = segments.create_segment(actor=Actor(user=sol), name="s", unit=units["seoul-hotel"], tree={"op": "and", "rules": []})
    campaign = services.create_campaign(actor=Actor(user=sol), name="c", segment=segment, channel="sms", unit=units["seoul-hotel"],
                                        variants=[services.VariantInput(body="hi")])
    client.force_login(sol)
    assert client.post(reverse("web:campaign_action", args=[campaign.pk, "approve"])).status_code == 403
    campaign.refresh_from_db()
    assert campaign.status == "draft"


def test_birthday_automation_sends_once_per_customer_per_year_lunar_included(town, units, mina, make_customer):
    from dangol.customers.anniversaries import solar_date_in_year
    automation = automations.save_automation(actor=Actor(user=mina), unit=units["seoul-hotel"], kind="birthday", channel="sms",
                                             body="{{ name }}님 생일 축하드려요", days=3, holdout_pct=0)
    lunar = make_customer("seoul-hotel", name="음력생일", birthday=DateParts(year=1980, month=8, day=15, is_lunar=True),
                          consents=[("sms", "marketing", True)])
    solar = make_customer("seoul-hotel", name="양력생일", birthday=DateParts(year=1985, month=5, day=5))
    chuseok = solar_date_in_year(year=2026, month=8, day=15, is_lunar=True)  # 2026-09-25
    for day in range(0, 430):
        moment = dt.datetime(2026, 1, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(days=day)
        automations.run_automations(now=moment)
        automations.run_automations(now=moment + dt.timedelta(hours=2))  # the job runs more than once a day
    sends = AutomationSend.objects.filter(automation=automation)
    lunar_sends = list(sends.filter(customer=lunar).values_list("occurrence", "at"))
    assert [occ for occ, _at in lunar_sends] == ["2026L"] or sorted(occ for occ, _at in lunar_sends) == ["2026L"]
    assert timezone.localdate(lunar_sends[0][1]) == chuseok - dt.timedelta(days=3)
    solar_sends = list(sends.filter(customer=solar).values_list("occurrence", "at"))
    assert [occ for occ, _at in solar_sends] == ["2026"]
    assert timezone.localdate(solar_sends[0][1]) == dt.date(2026, 5, 2)
    jisu = list(sends.filter(customer=town["jisu"]).values_list("occurrence", flat=True))
    assert sorted(jisu) == ["2026", "2027"]  # 1 March: once in 2026, once in 2027 (the loop runs into March 2027)
    assert Message.objects.filter(source=automation.source, customer=lunar).count() == 1


def test_winback_automation_issues_coupons_and_is_idempotent(town, units, mina):
    automation = automations.save_automation(actor=Actor(user=mina), unit=units["seoul-hotel"], kind="winback", channel="sms",
                                             body="{{ name }}님, {{ coupon_value }} 쿠폰 {{ coupon_code }}", days=180,
                                             holdout_pct=0, offer=services.OfferInput(kind="percent", value=10))
    first = automations.run_automations(now=timezone.now())
    again = automations.run_automations(now=timezone.now())
    assert first[automation.pk]["new"] == 1 and again[automation.pk]["new"] == 0  # 김지수: last stay 200 days ago
    sent = AutomationSend.objects.get(automation=automation)
    assert sent.customer == town["jisu"] and sent.coupon_id
    message = Message.objects.get(source=automation.source)
    from dangol.loyalty.models import Coupon
    assert Coupon.objects.get(pk=sent.coupon_id).code in message.body and "10%" in message.body


def test_automations_are_for_managers(client, town, bora, units):
    client.force_login(bora)
    answer = client.post(reverse("web:automation_list"), {"unit": units["bakery"].pk, "kind": "birthday", "channel": "sms",
                                                          "days": 3, "body": "hi", "holdout_pct": 10})
    assert answer.status_code == 403 and not Automation.objects.exists()


def test_tier_and_points_events_trigger_their_automations_once(town, units, mina):
    from dangol.loyalty.jobs import ExpiringPoints
    from dangol.loyalty.tiers import TierChangeNotice
    up = automations.save_automation(actor=Actor(user=mina), unit=units["seoul-hotel"], kind="tier_up", channel="sms",
                                     body="{{ name }}님 {{ tier }} 축하", holdout_pct=0)
    expiring = automations.save_automation(actor=Actor(user=mina), unit=units["seoul-hotel"], kind="points_expiring",
                                           channel="sms", body="{{ name }}님 포인트 {{ points }}", holdout_pct=0)
    notice = TierChangeNotice(customer_id=town["jisu"].pk, from_tier="gold", to_tier="vip", direction="up",
                              at=timezone.now(), cause="purchase")
    automations.on_tier_changed(changes=[notice])
    automations.on_tier_changed(changes=[notice])
    assert AutomationSend.objects.filter(automation=up).count() == 1
    assert "VIP" in Message.objects.get(source=up.source).body
    points = ExpiringPoints(customer_id=town["jisu"].pk, points=500, first_expiry=timezone.now() + dt.timedelta(days=20))
    automations.on_points_expiring(notices=[points], window_days=30)
    automations.on_points_expiring(notices=[points], window_days=30)
    assert AutomationSend.objects.filter(automation=expiring).count() == 1
    assert automations.on_tier_changed(changes=[]) is None


def test_a_merge_moves_static_segment_places_and_the_undo_moves_them_back(town, mina, units):
    from dangol.campaigns.models import SegmentMember
    from dangol.core import events
    segment = segments.create_segment(actor=Actor(user=mina), name="hotel", unit=units["seoul-hotel"], tree={"op": "and", "rules": []})
    frozen = segments.freeze_segment(actor=Actor(user=mina), segment=segment)
    moved: dict = {}
    events.emit("customers_merged", survivor=town["yuna"], merged=town["minho"], merge=None, moved=moved)
    assert SegmentMember.objects.filter(segment=frozen, customer=town["yuna"]).exists() and moved["segment_members"]
    events.emit("customers_unmerged", survivor=town["yuna"], merged=town["minho"], merge=None, moved=moved)
    assert set(frozen.members.values_list("customer_id", flat=True)) == {town["jisu"].pk, town["minho"].pk}


def test_welcome_and_thank_you_follow_purchases_once(town, units, mina, make_customer, buy):
    welcome = automations.save_automation(actor=Actor(user=mina), unit=units["seoul-hotel"], kind="welcome", channel="sms",
                                          body="{{ name }}님 환영합니다", holdout_pct=0)
    thanks = automations.save_automation(actor=Actor(user=mina), unit=units["seoul-hotel"], kind="thank_you", channel="sms",
                                         body="감사합니다", days=0, holdout_pct=0)
    newcomer = make_customer("seoul-hotel", name="신규손님")
    buy(newcomer, "deluxe", at=timezone.now() - dt.timedelta(hours=2))
    later = timezone.now()
    automations.run_automations(now=later)
    automations.run_automations(now=later + dt.timedelta(hours=1))
    assert list(AutomationSend.objects.filter(automation=welcome).values_list("customer__name", flat=True)) == ["신규손님"]
    # 이민호 stayed 10 days ago: no thank-you today; the newcomer's stay two hours ago gets one.
    assert list(AutomationSend.objects.filter(automation=thanks).values_list("customer__name", flat=True)) == ["신규손님"]


def test_the_automation_page_shows_what_it_sent_and_earned(client, town, units, mina):
    automation = automations.save_automation(actor=Actor(user=mina), unit=units["seoul-hotel"], kind="winback", channel="sms",
                                             body="{{ name }}님", days=180, holdout_pct=0)
    automations.run_automations()
    client.force_login(mina)
    listed = client.get(reverse("web:automation_list"), HTTP_ACCEPT_LANGUAGE="en")
    assert listed.status_code == 200 and b"Win-back" in listed.content
    page = client.get(reverse("web:automation_detail", args=[automation.pk]), HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200 and page.context["result"].treated.customers == 1
