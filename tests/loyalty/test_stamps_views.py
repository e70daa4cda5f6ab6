"""Stamp cards in the staff app (the 360° panel's one-tap stamp, htmx and plain form), on the public member card, and
through the API (state, tap, idempotent retry, the reward coupon in the answer, errors)."""
from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from django.utils import timezone

from dangol.loyalty import card as member_card
from dangol.loyalty.models import Coupon, CouponKind, CouponTemplate, StampBasis, StampCard, StampEntry

from tests.api.conftest import bearer_client
from tests.helpers import login

HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def _english_client(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"


@pytest.fixture
def card(units):
    reward = CouponTemplate.objects.create(name="Free Americano", kind=CouponKind.GIFT, value=0, valid_days=30)
    return StampCard.objects.create(unit=units["bakery"], name="Coffee stamps", basis=StampBasis.PURCHASE, stamps=1,
                                    target=3, reward=reward, validity_days=90, starts_at=timezone.now() - dt.timedelta(days=1))


@pytest.fixture
def member(program, make_customer):
    return make_customer("bakery", name="김도장")


def request_id(html: str, card_pk: int) -> str:
    return re.search(rf'name="stamp{card_pk}-request_id" value="([0-9a-f]+)"', html).group(1)


def test_the_panel_shows_the_card_and_one_tap_stamps_once_even_when_tapped_twice(client, bora, member, card):
    login(client, bora)
    page = client.get(f"/customers/{member.pk}/").content.decode()
    assert 'data-testid="stamp-card"' in page and "Coffee stamps" in page and "3 more for Free Americano" in page
    rid = request_id(page, card.pk)
    url = f"/customers/{member.pk}/stamps/{card.pk}/"
    body = {f"stamp{card.pk}-request_id": rid, f"stamp{card.pk}-stamps": "1"}
    first = client.post(url, body, **HX)
    again = client.post(url, body, **HX)  # the double tap
    assert first.status_code == again.status_code == 200
    assert "Stamped: 1 of 3 on Coffee stamps." in first.content.decode()
    assert StampEntry.objects.filter(customer=member).count() == 1
    assert request_id(first.content.decode(), card.pk) != rid  # the next tap is a new request


def test_a_full_card_says_the_reward_is_in_the_wallet(client, bora, member, card):
    login(client, bora)
    url = f"/customers/{member.pk}/stamps/{card.pk}/"
    for i in range(3):
        response = client.post(url, {f"stamp{card.pk}-request_id": f"r{i}", f"stamp{card.pk}-stamps": "1"}, **HX)
    html = response.content.decode()
    assert "The card was full: Free Americano is in the wallet." in html
    assert Coupon.objects.filter(customer=member, source="stamps").count() == 1
    # Plain form (no htmx): back to the 360° page with the message.
    plain = client.post(url, {f"stamp{card.pk}-request_id": "plain", f"stamp{card.pk}-stamps": "1"})
    assert plain.status_code == 302 and plain["Location"] == f"/customers/{member.pk}/"


def test_staff_cannot_stamp_the_card_of_another_unit(client, mina, member, card, units):
    from dangol.customers.services import link_to_unit
    from dangol.core.audit import Actor

    link_to_unit(actor=Actor.system("test"), customer=member, unit=units["seoul-hotel"])
    login(client, mina)
    page = client.get(f"/customers/{member.pk}/").content.decode()
    assert 'data-testid="stamp-form"' not in page
    response = client.post(f"/customers/{member.pk}/stamps/{card.pk}/", {f"stamp{card.pk}-request_id": "x"})
    assert response.status_code == 404 and not StampEntry.objects.exists()


def test_a_bad_count_is_refused_with_the_reason(client, bora, member, card):
    login(client, bora)
    response = client.post(f"/customers/{member.pk}/stamps/{card.pk}/",
                           {f"stamp{card.pk}-request_id": "x", f"stamp{card.pk}-stamps": "9"}, **HX)
    assert "Give between 1 and 5 stamps at a time." in response.content.decode()
    assert not StampEntry.objects.exists()


def test_the_member_card_page_shows_the_stamps(client, bora, member, card, units):
    from dangol.core.audit import Actor
    from dangol.loyalty import services, stamps

    stamps.stamp(actor=Actor(user=bora), customer=member, unit=units["bakery"], stamps=2)
    account = services.ensure_account(member)
    page = client.get(member_card.card_path(account.member_number)).content.decode()
    assert 'data-testid="card-stamps"' in page and "Coffee stamps" in page
    assert re.search(r'data-testid="card-stamp-count">2<', page) and "1 more for Free Americano" in page


# --- API ---------------------------------------------------------------------------------------------------------------

def post(api, url, body):
    return api.post(url, json.dumps(body), content_type="application/json", HTTP_ACCEPT_LANGUAGE="en")


def test_the_api_stamps_returns_the_card_and_the_reward_and_retries_safely(bora, member, card):
    api = bearer_client(bora)
    url = f"/api/v1/customers/{member.pk}/stamps"
    first = post(api, url, {"stamps": 2, "idempotency_key": "pos-1"})
    assert first.status_code == 201
    data = first.json()
    assert (data["card"]["stamps"], data["card"]["target"], data["card"]["unit"], data["coupons"], data["replayed"]) == (
        2, 3, "bakery", [], False)
    again = post(api, url, {"stamps": 2, "idempotency_key": "pos-1"})
    assert again.status_code == 200 and again.json()["replayed"] and again.json()["entry"] == data["entry"]
    full = post(api, url, {"idempotency_key": "pos-2"})
    assert full.status_code == 201
    assert [c["name"] for c in full.json()["coupons"]] == ["Free Americano"] and full.json()["card"]["stamps"] == 0
    state = api.get(url, HTTP_ACCEPT_LANGUAGE="en")
    assert state.status_code == 200 and state.json()[0]["rewards"] == 1


def test_the_api_refuses_a_unit_without_a_card_and_a_customer_out_of_scope(bora, mina, alice, member, card, make_customer):
    response = post(bearer_client(alice), f"/api/v1/customers/{member.pk}/stamps", {"unit": "seoul-hotel"})
    assert response.status_code == 400 and response.json()["errors"]["unit"] == ["한빛호텔 서울 runs no stamp card."]
    other = make_customer("seoul-hotel")
    assert post(bearer_client(bora), f"/api/v1/customers/{other.pk}/stamps", {}).status_code == 404
    assert post(bearer_client(bora), f"/api/v1/customers/{member.pk}/stamps", {"stamps": 0}).status_code == 400
    assert post(bearer_client(bora), f"/api/v1/customers/{member.pk}/stamps", {"unit": "seoul-hotel"}).status_code == 403
    assert not StampEntry.objects.exists()
