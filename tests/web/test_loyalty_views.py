"""Loyalty in the staff app through the test client: the points panel of the 360° page, redeem with confirmation
(htmx and plain forms), adjustments, the member number lookup, the public member card and referral pages."""
from __future__ import annotations

import re

import pytest
from django.core.cache import cache
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.db import connection
from django.urls import reverse

from dangol.core.audit import Actor
from dangol.core.models import AuditEvent
from dangol.customers.models import Membership
from dangol.loyalty import card, services
from dangol.loyalty.models import Coupon, EntryKind, LedgerEntry, Referral
from dangol.loyalty.wallet import issue_coupons

from tests.helpers import login
from tests.loyalty.conftest import balance, buy, program, tiers  # noqa: F401 (fixtures)

HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def _english(client, settings):
    """Pages in English (the default is Korean), so that the tests read the source strings."""
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    from django.utils import translation

    with translation.override("en"):
        yield


@pytest.fixture
def member(program, make_customer, buy):  # noqa: F811
    """A bakery customer with 90 P."""
    customer = make_customer("bakery", name="김하늘", phone="010-1234-5678")
    buy(customer, "croissant", 2)
    return customer


@pytest.fixture
def rich_member(member, alice):
    services.adjust_points(actor=Actor(user=alice), customer=member, points=9000, reason="welcome gift")
    return member


def redeem(client, customer, points, *, confirm=False, request_id="req-1", htmx=True, unit=None):
    data = {"redeem-points": str(points), "redeem-request_id": request_id, "redeem-confirm": "True" if confirm else ""}
    if unit is not None:
        data["redeem-unit"] = str(unit.pk)
    return client.post(reverse("web:loyalty_redeem", args=[customer.pk]), data, **(HX if htmx else {}))


def test_the_360_page_shows_the_points_panel(client, bora, rich_member):
    login(client, bora)
    response = client.get(reverse("web:customer_detail", args=[rich_member.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="loyalty-panel"' in html and 'data-testid="points-balance">9,090<' in html
    account = services.ensure_account(rich_member)
    assert " ".join([account.member_number[:4], account.member_number[4:8], account.member_number[8:]]) in html
    assert account.referral_code in html and "/m/" in html
    assert 'data-testid="redeem-form"' in html and 'data-testid="adjust-form"' not in html  # staff do not adjust
    assert 'data-testid="nav-member"' in html


def test_redeeming_asks_for_a_confirmation_then_redeems_once(client, bora, rich_member, units):
    login(client, bora)
    step_one = redeem(client, rich_member, 3000)
    html = step_one.content.decode()
    assert step_one.status_code == 200 and "<html" not in html
    assert 'data-testid="redeem-confirm"' in html and "3,000 P" in html and "9,090 P → 6,090 P" in html
    assert not LedgerEntry.objects.filter(kind=EntryKind.REDEEM).exists()
    request_id = re.search(r'name="redeem-request_id" value="([^"]+)"', html).group(1)
    assert request_id == "req-1"
    done = redeem(client, rich_member, 3000, confirm=True)
    assert 'data-testid="points-balance">6,090<' in done.content.decode()
    assert "3,000 points redeemed." in done.content.decode()
    again = redeem(client, rich_member, 3000, confirm=True)  # a double tap
    assert again.status_code == 200
    assert LedgerEntry.objects.filter(kind=EntryKind.REDEEM).count() == 1 and balance(rich_member) == 6090
    entry = LedgerEntry.objects.get(kind=EntryKind.REDEEM)
    assert (entry.unit, entry.created_by, entry.via) == (units["bakery"], bora, "web")


@pytest.mark.parametrize("points, message", [("9091", "Only 9,090 points are available."), ("abc", None), ("0", None), ("", None)])
def test_a_bad_redemption_is_shown_on_the_panel(client, bora, rich_member, points, message):
    login(client, bora)
    response = redeem(client, rich_member, points)
    html = response.content.decode()
    assert 'data-testid="redeem-error"' in html and 'data-testid="redeem-confirm"' not in html
    assert message is None or message in html  # Django's own messages come in the active language (Korean)
    assert not LedgerEntry.objects.filter(kind=EntryKind.REDEEM).exists()


def test_a_redemption_refused_at_confirmation_says_why(client, bora, rich_member, alice):
    login(client, bora)
    redeem(client, rich_member, 9000)
    services.redeem_points(actor=Actor(user=alice), customer=rich_member, points=5000, unit=rich_member.home_unit)
    response = redeem(client, rich_member, 9000, confirm=True)  # someone spent meanwhile
    assert "Only 4,090 points are available." in response.content.decode()
    assert balance(rich_member) == 4090


def test_without_javascript_the_confirmation_is_a_page_and_the_result_a_message(client, bora, rich_member):
    login(client, bora)
    step_one = redeem(client, rich_member, 1000, htmx=False)
    assert step_one.status_code == 200 and "<html" in step_one.content.decode()
    assert 'data-testid="redeem-confirm"' in step_one.content.decode()
    done = redeem(client, rich_member, 1000, confirm=True, htmx=False, request_id="plain-1")
    assert done.status_code == 302 and done["Location"] == reverse("web:customer_detail", args=[rich_member.pk])
    page = client.get(done["Location"]).content.decode()
    assert "1,000 points redeemed." in page and 'data-testid="points-balance">8,090<' in page
    refused = redeem(client, rich_member, 100_000, confirm=True, htmx=False, request_id="plain-2")
    assert "Only 8,090 points are available." in client.get(refused["Location"]).content.decode()


def test_posts_need_the_csrf_token_and_a_login(bora, rich_member):
    strict = Client(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE="en")
    strict.force_login(bora)
    assert redeem(strict, rich_member, 1000, confirm=True).status_code == 403
    anonymous = Client(HTTP_ACCEPT_LANGUAGE="en")
    response = redeem(anonymous, rich_member, 1000, confirm=True)
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert balance(rich_member) == 9090


def test_a_customer_outside_the_clerks_units_is_not_found(client, bora, program, make_customer):  # noqa: F811
    hotel_only = make_customer("seoul-hotel")
    login(client, bora)
    assert redeem(client, hotel_only, 100, confirm=True).status_code == 404
    assert client.get(reverse("web:loyalty_history", args=[hotel_only.pk])).status_code == 404
    assert client.get(reverse("web:loyalty_panel", args=[hotel_only.pk])).status_code == 404


def test_managers_adjust_with_a_reason_and_staff_cannot(client, bora, mina, program, make_customer, buy):  # noqa: F811
    customer = make_customer("seoul-hotel")
    buy(customer, "deluxe")
    url = reverse("web:loyalty_adjust", args=[customer.pk])
    Membership.objects.create(customer=customer, unit=bora.units.get(), joined_at=customer.joined_at)
    login(client, bora)
    assert client.post(url, {"adjust-points": "100", "adjust-reason": "x"}, **HX).status_code == 403
    login(client, mina)
    html = client.get(reverse("web:customer_detail", args=[customer.pk])).content.decode()
    assert 'data-testid="adjust-form"' in html
    missing = client.post(url, {"adjust-points": "100", "adjust-reason": ""}, **HX).content.decode()
    assert '<details class="adjust" open>' in missing and "has-error" in missing
    response = client.post(url, {"adjust-points": "-500", "adjust-reason": "guest complaint refund"}, **HX)
    assert "-500 points adjusted." in response.content.decode()
    assert balance(customer) == 7000
    too_much = client.post(url, {"adjust-points": "-9000", "adjust-reason": "again"}, **HX).content.decode()
    assert "an adjustment cannot take more" in too_much


def test_the_counter_finds_a_member_of_another_unit_by_card_number(client, bora, program, make_customer, buy):  # noqa: F811
    hotel_member = make_customer("seoul-hotel", name="박호텔")
    number = services.ensure_account(hotel_member).member_number
    login(client, bora)
    url = reverse("web:loyalty_member_lookup")
    assert client.get(url).status_code == 200
    bad = client.post(url, {"number": number[:-1] + str((int(number[-1]) + 1) % 10)})
    assert "A member number has 12 digits" in bad.content.decode()
    response = client.post(url, {"number": f"{number[:4]} {number[4:8]}-{number[8:]}"})
    assert response.status_code == 302 and response["Location"] == reverse("web:customer_detail", args=[hotel_member.pk])
    assert Membership.objects.filter(customer=hotel_member, unit__code="bakery", source="linked").exists()
    assert AuditEvent.objects.filter(action="customer.link_unit", object_id=str(hotel_member.pk), actor=bora).exists()
    again = client.post(url, {"number": number})
    assert again.status_code == 302 and Membership.objects.filter(customer=hotel_member).count() == 2


def test_an_unknown_member_number_is_said_so(client, bora, program):  # noqa: F811
    from dangol.loyalty.rules import new_member_numbers

    login(client, bora)
    response = client.post(reverse("web:loyalty_member_lookup"), {"number": new_member_numbers(1)[0]})
    assert "No member has this number." in response.content.decode()


def test_the_member_card_link_shows_the_card_without_a_login_and_without_personal_data(client, tiers, make_customer, buy):  # noqa: F811
    customer = make_customer("seoul-hotel", name="김하늘", phone="010-1234-5678", email="sky@example.kr")
    buy(customer, "deluxe", 2)  # Gold, with its coupon
    account = services.ensure_account(customer)
    response = client.get(card.card_path(account.member_number))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="card-name">김*늘<' in html and "김하늘" not in html
    assert "1234-5678" not in html and "01012345678" not in html and "sky@" not in html
    assert 'data-testid="card-balance">15,000<' in html and ">Gold<" in html
    assert "Gold welcome 10,000 KRW" in html
    assert "<svg" in html and " ".join([account.member_number[:4], account.member_number[4:8], account.member_number[8:]]) in html
    assert "<script" not in html
    assert response["Cache-Control"].startswith("no-store") and response["Referrer-Policy"] == "no-referrer"
    event = AuditEvent.objects.get(action="loyalty.card_view")
    assert (event.object_id, event.via, event.actor) == (str(customer.pk), "card", None)


def test_a_wrong_or_expired_card_link_is_not_found_and_probing_is_braked(client, program, make_customer, settings):  # noqa: F811
    cache.clear()
    account = services.ensure_account(make_customer("bakery"))
    token = card.card_token(account.member_number)
    assert client.get(reverse("web:loyalty_card", args=[token[:-2] + "xx"])).status_code == 404
    program.card_link_days = 1
    program.save()
    from django.core import signing

    old = signing.TimestampSigner(salt=card.SALT)
    old.timestamp = lambda: signing.b62_encode(int(__import__("time").time()) - 2 * 86400)
    assert client.get(reverse("web:loyalty_card", args=[old.sign_object({"m": account.member_number})])).status_code == 404
    assert client.get(reverse("web:loyalty_card", args=[token])).status_code == 200
    for i in range(card.BAD_TOKEN_LIMIT):
        client.get(reverse("web:loyalty_card", args=[f"bad{i}"]))
    assert client.get(reverse("web:loyalty_card", args=[token])).status_code == 404  # this client is braked for a while
    cache.clear()


def test_the_referral_link_page_shows_the_code_and_the_panel_links_a_newcomer(client, bora, program, make_customer):  # noqa: F811
    referrer = make_customer("seoul-hotel", phone="010-4000-0001")
    code = services.ensure_account(referrer).referral_code
    page = client.get(reverse("web:loyalty_referral_landing", args=[code.lower()]))
    assert page.status_code == 200 and code in page.content.decode() and "<svg" in page.content.decode()
    assert client.get(reverse("web:loyalty_referral_landing", args=["ZZZZZZZZ"])).status_code == 404
    newcomer = make_customer("bakery", phone="010-4000-0002")
    login(client, bora)
    url = reverse("web:loyalty_link_referral", args=[newcomer.pk])
    wrong = client.post(url, {"referral-code": "ZZZZ"}, **HX).content.decode()
    assert "No member has this referral code." in wrong
    done = client.post(url, {"referral-code": code}, **HX).content.decode()
    assert "Referral code accepted" in done and 'data-testid="joined-with"' in done
    assert Referral.objects.get().referrer_id == referrer.pk


def test_a_coupon_of_the_wallet_is_used_once_at_the_counter(client, bora, tiers, member, units):  # noqa: F811
    [coupon_id] = issue_coupons(template=tiers["welcome"], customer_ids=[member.pk], source="campaign", source_ref="spring")
    login(client, bora)
    html = client.get(reverse("web:customer_detail", args=[member.pk])).content.decode()
    assert "Gold welcome 10,000 KRW" in html and 'data-testid="coupon-use"' in html
    url = reverse("web:loyalty_use_coupon", args=[member.pk, coupon_id])
    used = client.post(url, {"coupon-unit": str(units["bakery"].pk)}, **HX).content.decode()
    assert "Coupon used: Gold welcome 10,000 KRW" in used
    coupon = Coupon.objects.get(pk=coupon_id)
    assert (coupon.status, coupon.used_unit, coupon.used_by) == ("used", units["bakery"], bora)
    twice = client.post(url, {"coupon-unit": str(units["bakery"].pk)}, **HX).content.decode()
    assert "This coupon has already been used." in twice


def test_the_history_lists_entries_and_staff_see_their_units_entries_only(client, bora, rich_member, buy, units):  # noqa: F811
    buy(rich_member, "deluxe")  # at the Seoul hotel
    login(client, bora)
    html = client.get(reverse("web:loyalty_history", args=[rich_member.pk])).content.decode()
    assert 'data-testid="history-balance">16,590 P<' in html
    assert "한빛 베이커리" in html and "한빛호텔 서울" not in html  # the hotel's entry is not the bakery's to see
    assert "+9,000" in html and "welcome gift" in html


def test_the_panel_costs_the_same_queries_however_many_entries_and_coupons(rf, bora, tiers, rich_member, buy,  # noqa: F811
                                                                          django_assert_num_queries):
    from dangol.web.views_loyalty import points_panel

    request = rf.get("/")
    request.user = bora
    points_panel(request, rich_member)  # the account exists from now on
    issue_coupons(template=tiers["welcome"], customer_ids=[rich_member.pk], source="campaign")
    with CaptureQueriesContext(connection) as few:
        points_panel(request, rich_member)
    assert len(few.captured_queries) <= 13  # one of them reads where the wallet's coupons are good
    for _ in range(8):
        buy(rich_member, "croissant")
    issue_coupons(template=tiers["welcome"], customer_ids=[rich_member.pk] * 3, source="campaign")
    with django_assert_num_queries(len(few.captured_queries)):
        panel = points_panel(request, rich_member)
    assert len(panel.context["entries"]) == 5 and len(panel.context["coupons"]) == 4


def test_loyalty_entries_show_on_the_timeline(client, bora, rich_member, units):
    services.redeem_points(actor=Actor(user=bora), customer=rich_member, points=500, unit=units["bakery"])
    login(client, bora)
    html = client.get(reverse("web:customer_detail", args=[rich_member.pk])).content.decode()
    assert "−500 points redeemed" in html and "ev-loyalty" in html
