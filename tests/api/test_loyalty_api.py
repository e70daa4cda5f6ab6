"""The loyalty endpoints: points and wallet, redemption (exact, idempotent, refused with a clear error), adjustments
by managers, coupons, referrals and the member number lookup — same tokens, error shape and unit scope as the API."""
from __future__ import annotations

import json

import pytest

from dangol.core.audit import Actor
from dangol.core.models import AuditEvent
from dangol.customers.models import Membership
from dangol.loyalty import services
from dangol.loyalty.models import Coupon, EntryKind, LedgerEntry, Referral
from dangol.loyalty.wallet import issue_coupons

from tests.loyalty.conftest import balance, buy, program, tiers  # noqa: F401 (fixtures)


def post(client, url, body):
    return client.post(url, json.dumps(body), content_type="application/json", HTTP_ACCEPT_LANGUAGE="en")


@pytest.fixture(autouse=True)
def _english():
    from django.utils import translation

    with translation.override("en"):
        yield


@pytest.fixture
def member(program, make_customer, buy, alice):  # noqa: F811
    customer = make_customer("bakery", name="김하늘")
    buy(customer, "croissant", 2)  # 90 P
    services.adjust_points(actor=Actor(user=alice), customer=customer, points=5000, reason="opening balance")
    return customer


def test_points_show_balance_tier_coupons_and_the_card_link(bora_api, member, tiers):  # noqa: F811
    issue_coupons(template=tiers["welcome"], customer_ids=[member.pk], source="campaign", source_ref="spring")
    response = bora_api.get(f"/api/v1/customers/{member.pk}/points")
    assert response.status_code == 200
    data = response.json()
    assert data["balance"] == 5090 and data["points_owed"] == 0 and data["tier"] is None
    assert data["next_tier"] == {"code": "silver", "name": "Silver", "benefits": ""} and data["to_next_tier"] == 200_000 - 9000
    assert len(data["member_number"]) == 12 and data["card_url"].startswith("http://testserver/m/")
    assert [c["name"] for c in data["coupons"]] == ["Gold welcome 10,000 KRW"]
    assert [e["kind"] for e in data["recent_entries"]] == ["adjust", "earn"]


def test_a_redemption_returns_the_entry_and_the_new_balance(bora_api, member):
    response = post(bora_api, f"/api/v1/customers/{member.pk}/points/redeem", {"points": 1200, "idempotency_key": "till-77"})
    assert response.status_code == 201
    data = response.json()
    assert (data["kind"], data["points"], data["unit"], data["balance"], data["by"], data["via"]) == (
        "redeem", -1200, "bakery", 3890, "bora", "api")
    again = post(bora_api, f"/api/v1/customers/{member.pk}/points/redeem", {"points": 1200, "idempotency_key": "till-77"})
    assert again.status_code == 201 and again.json()["id"] == data["id"]
    assert LedgerEntry.objects.filter(kind=EntryKind.REDEEM).count() == 1 and balance(member) == 3890


def test_a_redemption_over_the_balance_is_refused_in_the_error_shape_and_writes_nothing(bora_api, member):
    before = LedgerEntry.objects.count(), AuditEvent.objects.count()
    response = post(bora_api, f"/api/v1/customers/{member.pk}/points/redeem", {"points": 5091})
    assert response.status_code == 400
    assert response.json() == {"detail": "Invalid input.", "code": "invalid",
                               "errors": {"points": ["Only 5,090 points are available."]}}
    assert (LedgerEntry.objects.count(), AuditEvent.objects.count()) == before


@pytest.mark.parametrize("body, field", [({"points": 0}, "points"), ({"points": "many"}, "points"), ({}, "points"),
                                         ({"points": 100, "extra": 1}, "extra"), ({"points": 50}, "points"),
                                         ({"points": 100, "unit": "nowhere"}, "unit")])
def test_bad_redemption_input_is_a_400_per_field(bora_api, member, body, field):
    response = post(bora_api, f"/api/v1/customers/{member.pk}/points/redeem", body)
    assert response.status_code == 400 and field in response.json()["errors"]


def test_units_and_customers_outside_the_scope(bora_api, member, make_customer, program, units):  # noqa: F811
    forbidden = post(bora_api, f"/api/v1/customers/{member.pk}/points/redeem", {"points": 100, "unit": "seoul-hotel"})
    assert forbidden.status_code == 403 and forbidden.json()["detail"] == "You cannot work with business unit “seoul-hotel”."
    units["restaurant"].is_active = False
    units["restaurant"].save()
    assert post(bora_api, f"/api/v1/customers/{member.pk}/points/redeem", {"points": 100, "unit": "restaurant"}).status_code == 403
    hotel_only = make_customer("seoul-hotel")
    for response in (bora_api.get(f"/api/v1/customers/{hotel_only.pk}/points"),
                     post(bora_api, f"/api/v1/customers/{hotel_only.pk}/points/redeem", {"points": 100}),
                     post(bora_api, f"/api/v1/customers/{hotel_only.pk}/points/redeem", {"points": 100, "unit": "bakery"}),
                     post(bora_api, "/api/v1/customers/999999/points/redeem", {"points": 100, "unit": "bakery"})):
        assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert balance(member) == 5090


def test_an_admin_redeems_anywhere_naming_the_unit(alice_api, member, alice):
    response = post(alice_api, f"/api/v1/customers/{member.pk}/points/redeem", {"points": 100, "unit": "seoul-hotel"})
    assert response.status_code == 201 and response.json()["unit"] == "seoul-hotel" and response.json()["balance"] == 4990
    assert post(alice_api, f"/api/v1/customers/{member.pk}/points/redeem", {"points": 100}).status_code == 400  # which unit?


def test_without_a_token_nothing_is_answered(client, member):
    response = client.get(f"/api/v1/customers/{member.pk}/points")
    assert response.status_code == 401


def test_only_managers_and_admins_adjust(bora_api, alice_api, member):
    denied = post(bora_api, f"/api/v1/customers/{member.pk}/points/adjust", {"points": 100, "reason": "goodwill"})
    assert denied.status_code == 403 and denied.json()["detail"] == "Only a manager or an admin may adjust points."
    missing = post(alice_api, f"/api/v1/customers/{member.pk}/points/adjust", {"points": 100})
    assert missing.status_code == 400 and "reason" in missing.json()["errors"]
    done = post(alice_api, f"/api/v1/customers/{member.pk}/points/adjust", {"points": -90, "reason": "duplicate receipt"})
    assert done.status_code == 201 and done.json()["balance"] == 5000 and done.json()["kind"] == "adjust"


def test_entries_are_paged_newest_first(bora_api, member, units):
    for _ in range(3):
        services.redeem_points(actor=Actor.system("test"), customer=member, points=100, unit=units["bakery"])
    response = bora_api.get(f"/api/v1/customers/{member.pk}/points/entries?limit=2")
    data = response.json()
    assert data["count"] == 5 and len(data["results"]) == 2 and data["results"][0]["kind"] == "redeem"


def test_a_coupon_is_used_once(bora_api, member, tiers):  # noqa: F811
    [coupon_id] = issue_coupons(template=tiers["welcome"], customer_ids=[member.pk], source="campaign")
    url = f"/api/v1/customers/{member.pk}/coupons/{coupon_id}/use"
    response = post(bora_api, url, {})
    assert response.status_code == 200 and response.json()["status"] == "used"
    again = post(bora_api, url, {})
    assert again.status_code == 400 and again.json()["errors"] == {"coupon": ["This coupon has already been used."]}
    assert post(bora_api, f"/api/v1/customers/{member.pk}/coupons/{coupon_id + 99}/use", {}).status_code == 404
    assert Coupon.objects.get(pk=coupon_id).used_by.username == "bora"


def test_a_newcomer_is_linked_to_the_referrer(bora_api, member, make_customer):
    newcomer = make_customer("bakery", phone="010-9100-0001")
    code = services.ensure_account(member).referral_code
    response = post(bora_api, f"/api/v1/customers/{newcomer.pk}/referral", {"code": code})
    assert response.status_code == 201 and response.json()["referrer"] == member.pk and response.json()["status"] == "pending"
    refused = post(bora_api, f"/api/v1/customers/{member.pk}/referral", {"code": code})
    assert refused.status_code == 400 and refused.json()["errors"]["code"] == ["A member cannot refer themselves."]
    assert Referral.objects.count() == 1


def test_the_member_number_finds_a_member_of_another_unit_and_makes_them_known_here(bora_api, program, make_customer):  # noqa: F811
    hotel_member = make_customer("seoul-hotel")
    number = services.ensure_account(hotel_member).member_number
    response = post(bora_api, "/api/v1/loyalty/members/lookup", {"member_number": f"{number[:4]}-{number[4:8]}-{number[8:]}"})
    assert response.status_code == 200
    data = response.json()
    assert data["customer"] == hotel_member.pk and data["linked"] is True and data["points"]["member_number"] == number
    assert Membership.objects.filter(customer=hotel_member, unit__code="bakery").exists()
    assert post(bora_api, "/api/v1/loyalty/members/lookup", {"member_number": number}).json()["linked"] is False
    assert post(bora_api, "/api/v1/loyalty/members/lookup", {"member_number": "123"}).status_code == 404


def test_a_coupon_code_is_checked_then_used_once_at_any_unit_of_the_group(bora_api, program, tiers, make_customer, units):  # noqa: F811
    from dangol.loyalty.models import CouponTemplate

    hotel_member = make_customer("seoul-hotel", name="최유나")  # not known to the bakery yet
    [coupon_id] = issue_coupons(template=tiers["welcome"], customer_ids=[hotel_member.pk], source="campaign")
    code = Coupon.objects.get(pk=coupon_id).code
    typed = f" {code[:4].lower()}-{code[4:]} "
    check = post(bora_api, "/api/v1/coupons/validate", {"code": typed})
    assert check.status_code == 200
    assert check.json()["valid"] is True and check.json()["errors"] == {} and check.json()["customer_name"] == "최*나"
    assert Coupon.objects.get(pk=coupon_id).status == "active"  # checking writes nothing
    used = post(bora_api, "/api/v1/coupons/redeem", {"code": code, "unit": "bakery"})
    assert used.status_code == 200 and used.json()["coupon"]["status"] == "used"
    assert Membership.objects.filter(customer=hotel_member, unit__code="bakery").exists()
    again = post(bora_api, "/api/v1/coupons/redeem", {"code": code})
    assert again.status_code == 400 and again.json()["errors"] == {"coupon": ["This coupon has already been used."]}
    assert post(bora_api, "/api/v1/coupons/validate", {"code": code}).json()["valid"] is False
    # Only at the hotel: refused at the bakery, with the reason, and nothing changes.
    hotel_only = CouponTemplate.objects.create(name="Hotel spa", kind="amount", value=5_000, valid_days=30)
    hotel_only.units.set([units["seoul-hotel"]])
    [spa_id] = issue_coupons(template=hotel_only, customer_ids=[hotel_member.pk], source="campaign")
    spa_code = Coupon.objects.get(pk=spa_id).code
    assert post(bora_api, "/api/v1/coupons/validate", {"code": spa_code}).json()["errors"]["unit"]
    assert post(bora_api, "/api/v1/coupons/redeem", {"code": spa_code}).status_code == 400
    assert Coupon.objects.get(pk=spa_id).status == "active"
    assert post(bora_api, "/api/v1/coupons/redeem", {"code": spa_code, "unit": "seoul-hotel"}).status_code == 403


@pytest.mark.parametrize("body, status_code", [
    ({}, 400), ({"code": ""}, 400), ({"code": "NOPE0000"}, 404), ({"code": 12}, 404),
    ({"code": "A" * 41}, 400), ({"code": "ABC", "extra": 1}, 400), ({"code": "'; DROP TABLE loyalty_coupon; --"}, 404),
])
def test_bad_coupon_codes_are_answered_clearly(bora_api, program, body, status_code):  # noqa: F811
    for url in ("/api/v1/coupons/validate", "/api/v1/coupons/redeem"):
        assert post(bora_api, url, body).status_code == status_code
    assert Coupon.objects.count() == 0


def test_the_schema_documents_the_loyalty_endpoints(db):
    from drf_spectacular.validation import validate_schema

    from dangol.api.schema import DangolSchemaGenerator

    schema = DangolSchemaGenerator().get_schema(request=None, public=True)
    validate_schema(schema)
    for path in ("/api/v1/customers/{id}/points", "/api/v1/customers/{id}/points/redeem", "/api/v1/customers/{id}/points/adjust",
                 "/api/v1/customers/{id}/points/entries", "/api/v1/customers/{id}/referral",
                 "/api/v1/customers/{id}/coupons/{coupon_id}/use", "/api/v1/loyalty/members/lookup"):
        assert path in schema["paths"], path
    redeem = schema["paths"]["/api/v1/customers/{id}/points/redeem"]["post"]
    assert set(redeem["responses"]) == {"201", "400", "401", "403", "404"}


def test_a_pos_checks_the_minimum_spend_and_redeems_with_the_amount(bora_api, program, make_customer):  # noqa: F811
    from dangol.loyalty.models import CouponTemplate

    template = CouponTemplate.objects.create(name="10,000 off 50,000", kind="amount", value=10_000, min_spend_krw=50_000)
    guest = make_customer("bakery", name="박하늘")
    [coupon_id] = issue_coupons(template=template, customer_ids=[guest.pk], source="campaign")
    coupon = Coupon.objects.get(pk=coupon_id)
    low = post(bora_api, "/api/v1/coupons/validate", {"code": coupon.code, "amount_krw": 10_000}).json()
    assert low["valid"] is False and "at least 50,000 KRW" in low["errors"]["amount_krw"][0]
    assert post(bora_api, "/api/v1/coupons/redeem", {"code": coupon.code, "amount_krw": 10_000}).status_code == 400
    assert post(bora_api, "/api/v1/coupons/redeem", {"code": coupon.code, "amount_krw": -1}).status_code == 400
    assert Coupon.objects.get(pk=coupon.pk).status == "active"
    used = post(bora_api, "/api/v1/coupons/redeem", {"code": coupon.code, "amount_krw": 70_000})
    assert used.status_code == 200 and used.json()["coupon"]["discount_krw"] == 10_000
