import json

import pytest
from rest_framework.test import APIClient

from dangol.core.models import AuditEvent
from dangol.customers.models import Consent, ContactPoint, Customer, Membership
from dangol.customers.services import DateParts

from .conftest import token_key

CUSTOMERS = "/api/v1/customers"


def detail_url(customer) -> str:
    return f"{CUSTOMERS}/{customer.pk}"


def ids(response) -> list[int]:
    return [row["id"] for row in response.json()["results"]]


# ---- list: masking, scope, filters, lookup ----

def test_it_lists_customers_of_the_users_units_with_names_and_phones_masked(bora_api, make_customer):
    mine = make_customer("bakery", name="김하늘", phone="010-1234-5678", email="haneul@example.com", tags=["단골"])
    make_customer("seoul-hotel", name="박서준")

    response = bora_api.get(CUSTOMERS)

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    row = body["results"][0]
    assert row["id"] == mine.pk
    assert row["name"] == "김*늘"
    assert row["phone"] == "010-****-5678"
    assert row["email"] == "h***@example.com"
    assert row["home_unit"] == "bakery"
    assert row["tags"] == ["단골"]
    dumped = json.dumps(body)  # the hidden middle digits in no form (a bare "1234" could be a timestamp's microseconds)
    assert not any(form in dumped for form in ("010-1234", "01012345678", "+821012345678", "1234-5678"))


@pytest.mark.parametrize("client_fixture", ["alice_api", "mina_api"])
def test_it_masks_list_rows_for_managers_and_admins_too(request, client_fixture, make_customer):
    make_customer("seoul-hotel", name="김하늘", phone="010-1234-5678")
    client = request.getfixturevalue(client_fixture)

    row = client.get(CUSTOMERS).json()["results"][0]

    assert (row["name"], row["phone"]) == ("김*늘", "010-****-5678")


@pytest.mark.parametrize("phone", ["010-1234-5678", "01012345678", "+82 10-1234-5678"])
def test_it_finds_a_customer_by_phone_in_any_common_format(bora_api, make_customer, phone):
    wanted = make_customer(phone="010-1234-5678")
    make_customer(phone="010-9999-5678")

    assert ids(bora_api.get(CUSTOMERS, {"phone": phone})) == [wanted.pk]
    assert ids(bora_api.get(f"{CUSTOMERS}/lookup", {"phone": phone})) == [wanted.pk]


def test_it_answers_the_literal_phone_lookup_url(bora, make_customer):
    wanted = make_customer(phone="010-1234-5678")
    response = APIClient().get("/api/v1/customers?phone=010-1234-5678", HTTP_AUTHORIZATION=f"Bearer {token_key(bora)}")

    assert response.status_code == 200
    assert ids(response) == [wanted.pk]


def test_it_finds_customers_by_the_last_four_digits(bora_api, make_customer):
    first = make_customer(phone="010-1234-5678")
    second = make_customer(phone="010-9999-5678")
    make_customer(phone="010-1234-0000")

    assert sorted(ids(bora_api.get(CUSTOMERS, {"last4": "5678"}))) == sorted([first.pk, second.pk])


def test_phone_lookups_stay_inside_the_users_units(bora_api, make_customer):
    make_customer("seoul-hotel", phone="010-1234-5678")

    assert ids(bora_api.get(CUSTOMERS, {"phone": "010-1234-5678"})) == []
    assert ids(bora_api.get(CUSTOMERS, {"last4": "5678"})) == []


def test_it_filters_by_name_stage_unit_and_tag(alice_api, make_customer):
    hotel_regular = make_customer("seoul-hotel", name="김하늘", stage="regular", tags=["VIP"])
    make_customer("seoul-hotel", name="김민수", stage="prospect")
    bakery_regular = make_customer("bakery", name="이하늘", stage="regular")

    assert sorted(ids(alice_api.get(CUSTOMERS, {"q": "하늘"}))) == sorted([hotel_regular.pk, bakery_regular.pk])
    assert sorted(ids(alice_api.get(CUSTOMERS, {"stage": "regular"}))) == sorted([hotel_regular.pk, bakery_regular.pk])
    assert ids(alice_api.get(CUSTOMERS, {"stage": "regular", "unit": "seoul-hotel"})) == [hotel_regular.pk]
    assert ids(alice_api.get(CUSTOMERS, {"tag": "VIP"})) == [hotel_regular.pk]
    assert ids(alice_api.get(CUSTOMERS, {"q": "하늘", "tag": "없는태그"})) == []


@pytest.mark.parametrize("params, field", [
    ({"phone": "12"}, "phone"),
    ({"last4": "56a8"}, "last4"),
    ({"last4": "12345"}, "last4"),
    ({"stage": "vip"}, "stage"),
    ({"unit": "no-such-unit"}, "unit"),
    ({"q": "x" * 101}, "q"),
])
def test_bad_list_filters_give_400_with_the_field(bora_api, make_customer, params, field):
    make_customer()

    response = bora_api.get(CUSTOMERS, params)

    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_the_lookup_endpoint_requires_a_phone(bora_api):
    response = bora_api.get(f"{CUSTOMERS}/lookup")

    assert response.status_code == 400
    assert "phone" in response.json()["errors"]


def test_filtering_on_a_unit_outside_the_scope_is_forbidden(bora_api):
    response = bora_api.get(CUSTOMERS, {"unit": "seoul-hotel"})

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_it_paginates_with_limit_and_offset(bora_api, make_customer):
    made = [make_customer() for _ in range(5)]

    body = bora_api.get(CUSTOMERS, {"limit": 2, "offset": 2}).json()

    assert body["count"] == 5
    assert len(body["results"]) == 2
    assert body["next"] and body["previous"]
    assert set(row["id"] for row in body["results"]) <= {c.pk for c in made}


def test_the_customer_list_runs_a_fixed_number_of_queries(bora_api, make_customer, django_assert_max_num_queries):
    for index in range(3):
        make_customer(email=f"c{index}@example.com", tags=["단골", "빵"], sido="서울", sigungu="마포구")
    with django_assert_max_num_queries(6) as few:
        assert bora_api.get(CUSTOMERS).status_code == 200
    for index in range(30):
        make_customer(email=f"more{index}@example.com", tags=["단골"], sido="부산")
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = bora_api.get(CUSTOMERS)
    assert response.json()["count"] == 33


# ---- detail: scope, masking per role, audit ----

def test_staff_cannot_see_a_customer_of_another_unit(bora_api, make_customer):
    hotel_only = make_customer("seoul-hotel")

    response = bora_api.get(detail_url(hotel_only))

    assert response.status_code == 404
    assert response.json() == {"detail": response.json()["detail"], "code": "not_found", "errors": {}}


def test_staff_get_the_full_name_but_masked_contacts_and_no_reveal_is_audited(bora_api, make_customer):
    customer = make_customer(name="김하늘", phone="010-1234-5678", email="haneul@example.com")

    body = bora_api.get(detail_url(customer)).json()

    assert body["name"] == "김하늘"
    assert body["contacts_masked"] is True
    assert body["phone"] == "010-****-5678"
    assert body["email"] == "h***@example.com"
    assert all("1234" not in contact["value"] for contact in body["contacts"])
    assert not AuditEvent.objects.filter(action="customer.view_contacts").exists()


@pytest.mark.parametrize("client_fixture, username", [("mina_api", "mina"), ("alice_api", "alice")])
def test_managers_and_admins_get_full_contacts_and_the_view_is_audited(request, client_fixture, username, make_customer):
    customer = make_customer("seoul-hotel", name="김하늘", phone="010-1234-5678", email="haneul@example.com",
                             birthday=DateParts(month=3, day=15, is_lunar=True), sido="서울", tags=["VIP"])
    client = request.getfixturevalue(client_fixture)

    body = client.get(detail_url(customer)).json()

    assert body["contacts_masked"] is False
    assert body["phone"] == "+821012345678"
    assert body["email"] == "haneul@example.com"
    assert body["birthday"] == {"year": None, "month": 3, "day": 15, "is_lunar": True, "is_leap_month": False}
    assert body["sido"] == "서울특별시"
    assert body["units"] == ["seoul-hotel"]
    event = AuditEvent.objects.get(action="customer.view_contacts")
    assert (event.actor.username, event.object_id, event.via) == (username, str(customer.pk), "api")
    assert event.fields == ["email", "phone"]
    assert event.ip == "127.0.0.1"


def test_the_detail_shows_the_consents_in_force(bora_api, make_customer):
    customer = make_customer(consents=[("sms", "marketing", True)])

    consents = {(c["channel"], c["purpose"]): c for c in bora_api.get(detail_url(customer)).json()["consents"]}

    assert consents[("sms", "marketing")]["granted"] is True
    assert consents[("kakao", "marketing")] == {"channel": "kakao", "purpose": "marketing", "granted": False, "at": None,
                                                "source": ""}


def test_an_id_beyond_any_integer_column_is_a_404(bora_api):
    assert bora_api.get(f"{CUSTOMERS}/{10**30}").status_code == 404


# ---- create ----

def test_staff_register_a_customer_at_their_only_unit(bora_api, bora, units):
    response = bora_api.post(CUSTOMERS, {
        "name": "  이영희 ", "phone": "010 2222 3333", "email": "YH@Example.com", "gender": "F", "stage": "customer",
        "sido": "부산", "sigungu": "해운대구", "address_line": "우동 1", "postal_code": "48000",
        "birthday": {"year": 1990, "month": 5, "day": 1}, "wedding": {"month": 10, "day": 3},
        "tags": ["VIP", "단골"], "consents": [{"channel": "sms", "purpose": "marketing", "granted": True}],
        "consent_evidence": "web form v3",
    }, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    customer = Customer.objects.get(pk=body["id"])
    assert customer.name == "이영희"
    assert customer.home_unit == units["bakery"]
    assert Membership.objects.filter(customer=customer, unit=units["bakery"]).exists()
    assert body["phone"] == "010-****-3333"  # staff: masked even in their own write's answer
    assert ContactPoint.objects.get(customer=customer, kind="phone").value == "+821022223333"
    assert ContactPoint.objects.get(customer=customer, kind="email").value == "yh@example.com"
    assert body["tags"] == ["VIP", "단골"]
    assert body["wedding"]["month"] == 10
    consent = Consent.objects.get(customer=customer)
    assert (consent.source, consent.evidence, consent.recorded_by) == ("api", "web form v3", bora)
    created = AuditEvent.objects.get(action="customer.create")
    assert (created.actor, created.via) == (bora, "api")


def test_admins_name_the_unit_and_see_the_full_contacts_they_saved(alice_api, units):
    response = alice_api.post(CUSTOMERS, {"name": "최민호", "phone": "01044445555"}, format="json")
    assert response.status_code == 400
    assert "unit" in response.json()["errors"]

    response = alice_api.post(CUSTOMERS, {"name": "최민호", "phone": "01044445555", "unit": "busan-hotel"}, format="json")

    assert response.status_code == 201
    assert response.json()["home_unit"] == "busan-hotel"
    assert response.json()["phone"] == "+821044445555"
    assert AuditEvent.objects.filter(action="customer.view_contacts").count() == 1


def test_staff_cannot_register_at_a_unit_outside_their_scope(bora_api, row_counts):
    before = row_counts()

    response = bora_api.post(CUSTOMERS, {"name": "최민호", "unit": "seoul-hotel"}, format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert row_counts() == before


def test_a_phone_already_on_file_gives_409_with_the_visible_ids(bora_api, make_customer, row_counts):
    existing = make_customer(phone="010-1234-5678")
    before = row_counts()

    response = bora_api.post(CUSTOMERS, {"name": "김하늘", "phone": "+82 10 1234 5678"}, format="json")

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "duplicate_phone"
    assert body["duplicates"] == {"ids": [existing.pk], "elsewhere": 0}
    assert "phone" in body["errors"] and body["detail"]
    assert row_counts() == before

    response = bora_api.post(CUSTOMERS, {"name": "김하늘", "phone": "01012345678", "allow_duplicate": True}, format="json")

    assert response.status_code == 201
    assert ContactPoint.objects.filter(value="+821012345678").count() == 2


def test_a_duplicate_in_another_unit_is_counted_but_not_shown(bora_api, make_customer):
    make_customer("seoul-hotel", phone="010-1234-5678")

    response = bora_api.post(CUSTOMERS, {"name": "김하늘", "phone": "010-1234-5678"}, format="json")

    assert response.status_code == 409
    assert response.json()["duplicates"] == {"ids": [], "elsewhere": 1}


@pytest.mark.parametrize("payload, field", [
    ({}, "name"),
    ({"name": ""}, "name"),
    ({"name": "   "}, "name"),
    ({"name": ["김"]}, "name"),
    ({"name": "김하늘", "phone": "123"}, "phone"),
    ({"name": "김하늘", "phone": "02-123"}, "phone"),
    ({"name": "김하늘", "email": "not-an-email"}, "email"),
    ({"name": "김하늘", "gender": "X"}, "gender"),
    ({"name": "김하늘", "stage": "vip"}, "stage"),
    ({"name": "김하늘", "sido": "Atlantis"}, "sido"),
    ({"name": "김하늘", "postal_code": "123"}, "postal_code"),
    ({"name": "김하늘", "birthday": {"month": 13, "day": 1}}, "birthday.month"),
    ({"name": "김하늘", "birthday": {"month": "May", "day": 1}}, "birthday.month"),
    ({"name": "김하늘", "birthday": {"month": 2, "day": 30}}, "birthday"),
    ({"name": "김하늘", "birthday": {"year": 1800, "month": 1, "day": 1}}, "birthday"),
    ({"name": "김하늘", "birthday": {"month": 5, "day": 1, "is_leap_month": True}}, "birthday"),
    ({"name": "김하늘", "birthday": "1990-05-01"}, "birthday"),
    ({"name": "김하늘", "wedding": {"day": 1}}, "wedding.month"),
    ({"name": "김하늘", "consents": [{"channel": "fax", "granted": True}]}, "consents.0.channel"),
    ({"name": "김하늘", "consents": [{"channel": "sms", "purpose": "spam", "granted": True}]}, "consents.0.purpose"),
    ({"name": "김하늘", "consents": [{"channel": "sms"}]}, "consents.0.granted"),
    ({"name": "김하늘", "consents": {"channel": "sms", "granted": True}}, "consents"),
    ({"name": "김하늘", "tags": "VIP"}, "tags"),
    ({"name": "김하늘", "tags": ["x" * 41]}, "tags"),
    ({"name": "김하늘", "allow_duplicate": "maybe"}, "allow_duplicate"),
    ({"name": "김하늘", "unit": "no-such-unit"}, "unit"),
    ({"name": "김하늘", "nickname": "하늘이"}, "nickname"),
])
def test_bad_customer_input_gives_400_with_the_field_and_writes_nothing(bora_api, row_counts, payload, field):
    before = row_counts()

    response = bora_api.post(CUSTOMERS, payload, format="json")

    assert response.status_code == 400, response.json()
    body = response.json()
    assert set(body) == {"detail", "code", "errors"}
    assert body["code"] == "invalid"
    assert field in body["errors"], body
    assert all(isinstance(message, str) for messages in body["errors"].values() for message in messages)
    assert row_counts() == before


@pytest.mark.parametrize("raw", ['{"name": "김하늘"', "name=김하늘", "[1, 2]", '"김하늘"', "null"])
def test_a_body_that_is_not_a_json_object_gives_400(bora_api, row_counts, raw):
    before = row_counts()

    response = bora_api.post(CUSTOMERS, raw, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] in {"parse_error", "invalid"}
    assert row_counts() == before


def test_a_form_encoded_body_is_refused_with_415(bora_api, row_counts):
    before = row_counts()

    response = bora_api.post(CUSTOMERS, {"name": "김하늘"})  # multipart, as an HTML form would send

    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"
    assert row_counts() == before


def test_a_script_in_a_name_comes_back_as_the_same_json_string(alice_api):
    name = "<script>alert(1)</script>"

    response = alice_api.post(CUSTOMERS, {"name": name, "unit": "bakery"}, format="json")

    assert response.status_code == 201
    assert response["Content-Type"] == "application/json"
    assert response.json()["name"] == name
    assert alice_api.get(f"{CUSTOMERS}/{response.json()['id']}").json()["name"] == name


# ---- partial update ----

def test_patch_changes_only_the_given_fields(mina_api, make_customer):
    customer = make_customer("seoul-hotel", name="김하늘", phone="010-1234-5678", email="h@example.com",
                             birthday=DateParts(year=1990, month=5, day=1), tags=["VIP"], sido="서울")

    response = mina_api.patch(detail_url(customer), {"stage": "regular", "tags": ["VIP", "커플"]}, format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["name"], body["stage"], body["phone"], body["email"]) == ("김하늘", "regular", "+821012345678", "h@example.com")
    assert body["birthday"]["year"] == 1990
    assert body["sido"] == "서울특별시"
    assert body["tags"] == ["VIP", "커플"]
    update = AuditEvent.objects.get(action="customer.update")
    assert update.fields == ["stage", "tags"] and update.via == "api"


def test_patch_removes_an_anniversary_with_null_and_records_consents(bora_api, make_customer):
    customer = make_customer(birthday=DateParts(month=5, day=1))

    response = bora_api.patch(detail_url(customer), {
        "birthday": None, "consents": [{"channel": "kakao", "granted": True}]}, format="json")

    assert response.status_code == 200
    assert response.json()["birthday"] is None
    consent = Consent.objects.get(customer=customer)
    assert (consent.channel, consent.purpose, consent.granted, consent.source) == ("kakao", "marketing", True, "api")


def test_patch_with_bad_input_changes_nothing(bora_api, make_customer, row_counts):
    customer = make_customer(name="김하늘", email="h@example.com")
    before = row_counts()

    response = bora_api.patch(detail_url(customer), {"stage": "regular", "email": "nope"}, format="json")

    assert response.status_code == 400
    assert "email" in response.json()["errors"]
    assert row_counts() == before
    customer.refresh_from_db()
    assert customer.stage == "prospect"


def test_patch_to_a_phone_of_another_customer_needs_allow_duplicate(bora_api, make_customer):
    make_customer(phone="010-1234-5678")
    customer = make_customer(phone="010-2222-3333")

    same_number = bora_api.patch(detail_url(customer), {"phone": "+82 10-2222-3333", "stage": "regular"}, format="json")
    taken = bora_api.patch(detail_url(customer), {"phone": "01012345678"}, format="json")
    forced = bora_api.patch(detail_url(customer), {"phone": "01012345678", "allow_duplicate": True}, format="json")

    assert same_number.status_code == 200
    assert taken.status_code == 409
    assert forced.status_code == 200
    assert forced.json()["phone"] == "010-****-5678"


def test_patch_outside_the_scope_is_a_404(bora_api, make_customer, row_counts):
    customer = make_customer("seoul-hotel")
    before = row_counts()

    assert bora_api.patch(detail_url(customer), {"stage": "regular"}, format="json").status_code == 404
    assert row_counts() == before


def test_put_and_delete_are_not_allowed(bora_api, make_customer):
    customer = make_customer()

    for method in (bora_api.put, bora_api.delete):
        response = method(detail_url(customer), {"name": "x"}, format="json")
        assert response.status_code == 405
        assert response.json()["code"] == "method_not_allowed"
    assert Customer.objects.filter(pk=customer.pk).exists()


def test_the_counter_lookup_fast_path_answers_like_the_general_list(bora_api, mina_api, make_customer, units, django_assert_max_num_queries):
    """The phone lookup takes a hand-written query; its rows, masking and scope must match the general path."""
    own = make_customer("bakery", name="김하늘", phone="010-2468-1357", sido="서울", sigungu="강남구", tags=["단골"])
    make_customer("seoul-hotel", name="이하늘", phone="010-2468-1357")  # same number, another unit
    client = bora_api
    with django_assert_max_num_queries(4):
        fast = client.get("/api/v1/customers", {"phone": "01024681357"}).json()
    general = client.get("/api/v1/customers", {"phone": "01024681357", "stage": "prospect"}).json()
    assert fast["count"] == 1 and fast["results"] == general["results"]
    row = fast["results"][0]
    assert (row["id"], row["name"], row["phone"], row["sido"], row["sigungu"], row["tags"], row["home_unit"]) == (
        own.pk, "김*늘", "010-****-1357", "서울특별시", "강남구", ["단골"], "bakery")
    by_last4 = client.get("/api/v1/customers", {"last4": "1357"}).json()
    assert [r["id"] for r in by_last4["results"]] == [own.pk]
    assert mina_api.get("/api/v1/customers", {"phone": "010-2468-1357"}).json()["count"] == 1
