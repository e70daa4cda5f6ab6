import re

import pytest
from django.urls import reverse

from dangol.core.audit import Actor
from dangol.core.models import AuditEvent
from dangol.customers.models import Consent, Customer
from dangol.customers.services import add_note
from dangol.sales.models import Order

from tests.helpers import PASSWORD, login


def customer_post(**overrides):
    data = {"unit": "", "name": "최다은", "phone": "010-3333-4444", "email": "", "gender": "F", "stage": "prospect",
            "sido": "서울특별시", "sigungu": "강남구", "address_line": "", "postal_code": "", "birth_year": "1988",
            "birth_month": "3", "birth_day": "9", "birth_lunar": "on", "wedding_month": "", "wedding_day": "", "tags": "VIP, 케이크",
            "consent_method": "signed paper form", "consent_evidence": "동의서 v1", "consent_sms_marketing": "on",
            "consent_kakao_marketing": "on"}
    data.update(overrides)
    return data


def test_pages_need_a_login(client, units):
    for url in [reverse("web:home"), reverse("web:customer_search") + "?q=5678", reverse("web:customer_create")]:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("web:login"))


def test_login_is_locked_after_repeated_failures(client, bora):
    for _ in range(5):
        client.post(reverse("web:login"), {"username": "bora", "password": "wrong"})
    response = client.post(reverse("web:login"), {"username": "bora", "password": PASSWORD})
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_login_works_and_csrf_is_enforced(bora):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    response = strict.post(reverse("web:login"), {"username": "bora", "password": PASSWORD})
    assert response.status_code == 403
    page = strict.get(reverse("web:login"))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
    response = strict.post(reverse("web:login"), {"username": "bora", "password": PASSWORD, "csrfmiddlewaretoken": token})
    assert response.status_code == 302 and strict.session["_auth_user_id"] == str(bora.pk)


def test_search_by_last_four_shows_masked_rows(client, bora, make_customer):
    make_customer(name="김하늘", phone="010-1234-5678")
    login(client, bora)
    response = client.get(reverse("web:customer_search"), {"q": "5678"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert "010-****-5678" in html and "김*늘" in html
    assert "1234" not in html and "김하늘" not in html
    assert "<html" not in html  # the htmx fragment only


def test_a_script_name_renders_as_text(client, alice, make_customer):
    customer = make_customer(name="<script>alert(1)</script>")
    login(client, alice)
    html = client.get(reverse("web:customer_detail", args=[customer.pk])).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_detail_page_is_scoped_to_the_units(client, bora, make_customer):
    hotel_only = make_customer("seoul-hotel")
    login(client, bora)
    assert client.get(reverse("web:customer_detail", args=[hotel_only.pk])).status_code == 404
    assert client.get(reverse("web:customer_edit", args=[hotel_only.pk])).status_code == 404
    assert client.post(reverse("web:customer_add_note", args=[hotel_only.pk]), {"kind": "note", "text": "x"}).status_code == 404


def test_360_page_shows_masked_contacts_consents_anniversaries_and_timeline(client, bora, make_customer):
    customer = make_customer(name="김하늘", phone="010-1234-5678", consents=[("sms", "marketing", True)])
    add_note(actor=Actor(user=bora), customer=customer, unit=None, text="창가 자리 선호")
    login(client, bora)
    html = client.get(reverse("web:customer_detail", args=[customer.pk])).content.decode()
    assert "010-****-5678" in html and "010-1234-5678" not in html
    assert "창가 자리 선호" in html
    assert 'data-testid="reveal"' not in html  # staff may not reveal
    assert not AuditEvent.objects.filter(action="customer.view_contacts").exists()


def test_staff_cannot_reveal_contacts_and_a_manager_reveal_is_audited(client, bora, mina, make_customer):
    bakery = make_customer("bakery", phone="010-1234-5678")
    hotel = make_customer("seoul-hotel", phone="010-8765-4321")
    login(client, bora)
    assert client.post(reverse("web:customer_reveal_contacts", args=[bakery.pk])).status_code == 403
    client.logout()
    login(client, mina)
    response = client.post(reverse("web:customer_reveal_contacts", args=[hotel.pk]), HTTP_HX_REQUEST="true", REMOTE_ADDR="10.1.2.3")
    assert "010-8765-4321" in response.content.decode()
    event = AuditEvent.objects.get(action="customer.view_contacts")
    assert (event.actor, event.object_id, event.ip) == (mina, str(hotel.pk), "10.1.2.3")


def test_create_customer_with_consent_capture(client, bora, units):
    login(client, bora)
    response = client.post(reverse("web:customer_create"), customer_post(unit=units["bakery"].pk))
    customer = Customer.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("web:customer_detail", args=[customer.pk])
    assert set(Consent.objects.filter(granted=True).values_list("channel", flat=True)) == {"sms", "kakao"}
    assert customer.anniversaries.get().is_lunar


def test_validation_errors_are_shown_next_to_the_field_and_nothing_is_saved(client, bora, units):
    login(client, bora)
    response = client.post(reverse("web:customer_create"), customer_post(
        unit=units["bakery"].pk, name="", phone="123", email="x@", birth_month="2", birth_day="31", birth_lunar="",
        consent_email_night_marketing="on"))
    html = response.content.decode()
    assert response.status_code == 200
    for field in ["name", "phone", "email"]:
        assert f'data-testid="error-{field}"' in html
    assert Customer.objects.count() == 0


def test_impossible_birthday_error_sits_next_to_the_day(client, bora, units):
    login(client, bora)
    html = client.post(reverse("web:customer_create"), customer_post(unit=units["bakery"].pk, birth_month="2", birth_day="31",
                                                                       birth_lunar="")).content.decode()
    assert 'data-testid="error-birth_day"' in html and Customer.objects.count() == 0


def test_a_unit_outside_the_scope_cannot_be_chosen(client, bora, units):
    login(client, bora)
    client.post(reverse("web:customer_create"), customer_post(unit=units["seoul-hotel"].pk))
    assert Customer.objects.count() == 0


def test_duplicate_phone_is_warned_before_saving(client, bora, units, make_customer):
    make_customer("seoul-hotel", phone="010-3333-4444")
    login(client, bora)
    check = client.get(reverse("web:check_phone"), {"phone": "01033334444"}, HTTP_HX_REQUEST="true").content.decode()
    assert 'data-testid="duplicate-warning"' in check
    assert "010-3333-4444" not in check  # the match is in another unit: counted, not shown
    response = client.post(reverse("web:customer_create"), customer_post(unit=units["bakery"].pk))
    assert response.status_code == 200 and Customer.objects.count() == 1
    response = client.post(reverse("web:customer_create"), customer_post(unit=units["bakery"].pk, confirm_duplicate="on"))
    assert response.status_code == 302 and Customer.objects.count() == 2


def edit_post(client, customer, **overrides):
    page = client.get(reverse("web:customer_edit", args=[customer.pk])).content.decode()
    version = re.search(r'name="version" value="([^"]+)"', page).group(1)
    return client.post(reverse("web:customer_edit", args=[customer.pk]), customer_post(unit="", version=version, **overrides))


def test_staff_edit_without_seeing_contacts_and_an_empty_phone_keeps_the_number(client, bora, make_customer):
    customer = make_customer(name="김하늘", phone="010-1234-5678", consents=[("sms", "marketing", True)])
    login(client, bora)
    page = client.get(reverse("web:customer_edit", args=[customer.pk])).content.decode()
    assert "010-1234-5678" not in page and "+821012345678" not in page and "010-****-5678" in page
    response = edit_post(client, customer, name="김하늘", phone="", consent_sms_marketing="", consent_kakao_marketing="")
    assert response.status_code == 302
    assert customer.contacts.get(is_primary=True).value == "+821012345678"
    assert list(customer.consents.order_by("at", "id").values_list("granted", flat=True)) == [True, False]
    assert not AuditEvent.objects.filter(action="customer.view_contacts").exists()


def test_a_manager_sees_full_contacts_in_the_edit_form_and_that_view_is_audited(client, mina, make_customer):
    customer = make_customer("seoul-hotel", phone="010-1234-5678")
    login(client, mina)
    assert 'value="010-1234-5678"' in client.get(reverse("web:customer_edit", args=[customer.pk])).content.decode()
    assert AuditEvent.objects.filter(action="customer.view_contacts", actor=mina, object_id=str(customer.pk)).exists()


def test_a_form_filled_on_stale_data_does_not_overwrite_a_later_change(client, bora, make_customer):
    from dangol.customers.services import set_consent

    customer = make_customer(name="김하늘", consents=[("sms", "marketing", True)])
    login(client, bora)
    page = client.get(reverse("web:customer_edit", args=[customer.pk])).content.decode()
    stale = re.search(r'name="version" value="([^"]+)"', page).group(1)
    # meanwhile the customer opts out by phone
    set_consent(actor=Actor(user=None), customer=customer, channel="sms", purpose="marketing", granted=False, unit=None, source="phone")
    response = client.post(reverse("web:customer_edit", args=[customer.pk]),
                           customer_post(unit="", version=stale, name="김하늘", phone="", consent_sms_marketing="on"))
    assert response.status_code == 409
    assert list(customer.consents.order_by("at", "id").values_list("granted", flat=True)) == [True, False]


def test_a_lunar_wedding_day_without_a_year_survives_an_edit(client, bora, make_customer):
    from dangol.customers.services import DateParts

    customer = make_customer(wedding=DateParts(month=5, day=12, is_lunar=True))
    login(client, bora)
    response = edit_post(client, customer, name="김하늘", phone="", wedding_month="5", wedding_day="12", wedding_lunar="on")
    assert response.status_code == 302
    wedding = customer.anniversaries.get(kind="wedding")
    assert (wedding.year, wedding.month, wedding.day, wedding.is_lunar) == (None, 5, 12, True)


def test_check_phone_ignores_an_exclusion_outside_the_scope(client, bora, make_customer):
    hotel = make_customer("seoul-hotel", phone="010-3333-4444")
    login(client, bora)
    html = client.get(reverse("web:check_phone"), {"phone": "01033334444", "customer": hotel.pk}).content.decode()
    assert 'data-testid="duplicate-warning"' in html


def test_record_purchase_from_the_staff_app(client, bora, units, products, make_customer):
    customer = make_customer()
    login(client, bora)
    response = client.post(reverse("web:order_create", args=[customer.pk]), {
        "unit": units["bakery"].pk, "channel": "store", "product_0": products["croissant"].pk, "quantity_0": "2",
        "product_1": products["baguette"].pk, "quantity_1": "1", "price_1": "4000"})
    assert response.status_code == 302
    order = Order.objects.get()
    assert order.total == 13000
    html = client.get(reverse("web:customer_detail", args=[customer.pk])).content.decode()
    assert "13,000원" in html


def test_bad_purchase_input_shows_errors_and_writes_nothing(client, bora, units, products, make_customer):
    customer = make_customer()
    login(client, bora)
    for bad in [{"quantity_0": "2"}, {"product_0": products["croissant"].pk, "quantity_0": "0"},
                {"product_0": products["croissant"].pk, "quantity_0": "abc"}, {"product_0": "99999", "quantity_0": "1"},
                {"product_0": products["deluxe"].pk, "quantity_0": "1"}, {}]:
        response = client.post(reverse("web:order_create", args=[customer.pk]), {"unit": units["bakery"].pk, "channel": "store", **bad})
        assert response.status_code == 200, bad
    assert Order.objects.count() == 0


def test_timeline_is_paged_newest_first_and_a_new_entry_does_not_repeat_one(client, bora, make_customer, settings):
    settings.TIMELINE_PAGE_SIZE = 3
    customer = make_customer()
    for i in range(7):
        add_note(actor=Actor(user=bora), customer=customer, unit=None, text=f"note {i}")
    login(client, bora)
    first = client.get(reverse("web:customer_detail", args=[customer.pk])).content.decode()
    assert first.index("note 6") < first.index("note 5") < first.index("note 4") and "note 3" not in first
    cursor = re.search(r"\?before=([0-9_]+)", first).group(1)
    add_note(actor=Actor(user=bora), customer=customer, unit=None, text="note 7, added while reading")
    second = client.get(reverse("web:customer_timeline", args=[customer.pk]), {"before": cursor}, HTTP_HX_REQUEST="true").content.decode()
    assert "note 3" in second and "note 1" in second and "note 4" not in second and "note 7" not in second
    cursor = re.search(r"\?before=([0-9_]+)", second).group(1)
    third = client.get(reverse("web:customer_timeline", args=[customer.pk]), {"before": cursor}, HTTP_HX_REQUEST="true").content.decode()
    assert "note 0" in third and "timeline-more" not in third
    junk = client.get(reverse("web:customer_timeline", args=[customer.pk]), {"before": "x_y"}, HTTP_HX_REQUEST="true")
    assert junk.status_code == 200 and "note 7" in junk.content.decode()  # a malformed cursor is the first page


def test_notes_through_htmx_and_empty_notes_rejected(client, bora, make_customer):
    customer = make_customer()
    login(client, bora)
    ok = client.post(reverse("web:customer_add_note", args=[customer.pk]), {"kind": "note", "text": "생일 케이크 문의"}, HTTP_HX_REQUEST="true")
    assert "생일 케이크 문의" in ok.content.decode()
    bad = client.post(reverse("web:customer_add_note", args=[customer.pk]), {"kind": "note", "text": ""}, HTTP_HX_REQUEST="true")
    assert 'class="error"' in bad.content.decode()
    assert customer.interactions.count() == 1


@pytest.mark.parametrize("url_name", ["web:home", "web:customer_create"])
def test_pages_render_for_every_role(client, alice, mina, bora, url_name):
    for user in (alice, mina, bora):
        login(client, user)
        assert client.get(reverse(url_name)).status_code == 200
        client.logout()


def test_search_page_query_count_is_pinned(client, bora, make_customer, django_assert_max_num_queries):
    for i in range(15):
        make_customer(name=f"김{i}", phone=f"010-4000-{i:04d}")
    login(client, bora)
    with django_assert_max_num_queries(8):
        response = client.get(reverse("web:customer_search"), {"q": "김"}, HTTP_HX_REQUEST="true")
    assert response.content.decode().count('data-testid="result"') == 15
