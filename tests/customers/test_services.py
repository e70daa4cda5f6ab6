import pytest
from django.core.exceptions import ValidationError

from dangol.core.audit import Actor
from dangol.core.models import AuditEvent
from dangol.customers import selectors
from dangol.customers.models import Consent, ContactPoint, Customer, Interaction, Membership
from dangol.customers.services import (
    ConsentInput,
    CustomerInput,
    DateParts,
    add_note,
    create_customer,
    set_consent,
    snapshot,
    update_customer,
)


def test_it_creates_a_customer_with_normalised_contacts_and_consent_evidence(units, bora):
    customer = create_customer(
        actor=Actor(user=bora, ip="10.0.0.1"), unit=units["bakery"],
        data=CustomerInput(name="  홍길동 ", phone="010 1234 5678", email="Hong@Example.COM", sido="서울", sigungu="강남구",
                           birthday=DateParts(year=1990, month=1, day=15, is_lunar=True), tags=["단골", "단골", " 빵 "]),
        consents=[ConsentInput("sms", "marketing", True), ConsentInput("email", "marketing", False)],
        consent_method="signed paper form", consent_evidence="동의서 v1",
    )
    assert customer.name == "홍길동"
    assert set(customer.contacts.values_list("kind", "value", "last4")) == {("phone", "+821012345678", "5678"), ("email", "hong@example.com", "")}
    assert customer.addresses.get().sido == "서울특별시"
    assert sorted(customer.tags.values_list("name", flat=True)) == ["단골", "빵"]
    consent = Consent.objects.get(customer=customer)
    assert (consent.channel, consent.granted, consent.unit, consent.recorded_by, consent.method) == ("sms", True, units["bakery"], bora, "signed paper form")
    assert Membership.objects.filter(customer=customer, unit=units["bakery"]).exists()
    event = AuditEvent.objects.get(action="customer.create")
    assert event.actor == bora and event.ip == "10.0.0.1" and "phone" in event.fields
    assert "홍길동" not in str(event.fields) and "5678" not in str(event.fields)


def test_bad_input_is_reported_per_field_and_nothing_is_written(units, bora):
    with pytest.raises(ValidationError) as exc:
        create_customer(actor=Actor(user=bora), unit=units["bakery"],
                        data=CustomerInput(name=" ", phone="12", email="not-an-email", sido="Atlantis", postal_code="12",
                                           birthday=DateParts(month=2, day=30)))
    assert set(exc.value.message_dict) == {"name", "phone", "email", "sido", "postal_code", "birthday"}
    assert Customer.objects.count() == 0 and AuditEvent.objects.count() == 0


def test_update_records_which_fields_changed_and_consent_changes_as_new_events(units, bora, make_customer):
    customer = make_customer(name="김하늘", phone="010-2222-3333", consents=[("sms", "marketing", True)])
    update_customer(actor=Actor(user=bora), customer=customer,
                    data=CustomerInput(name="김하늘", phone="010-2222-4444", stage="regular"),
                    consents=[ConsentInput("sms", "marketing", False), ConsentInput("kakao", "marketing", False)])
    event = AuditEvent.objects.filter(action="customer.update").get()
    assert set(event.fields) == {"phone", "stage", "consent.sms.marketing"}
    assert list(customer.consents.order_by("at", "id").values_list("granted", flat=True)) == [True, False]
    # the old number is kept as a secondary contact
    assert set(ContactPoint.objects.filter(customer=customer).values_list("value", "is_primary")) == {
        ("+821022223333", False), ("+821022224444", True)}
    assert snapshot(customer)["phone"] == "+821022224444"


def test_an_update_that_changes_nothing_writes_no_audit(units, bora, make_customer):
    customer = make_customer(name="김하늘", phone="010-2222-3333")
    update_customer(actor=Actor(user=bora), customer=customer, data=CustomerInput(name="김하늘", phone="01022223333"))
    assert not AuditEvent.objects.filter(action="customer.update").exists()


def test_consent_withdrawal_is_as_easy_as_granting(units, bora, make_customer):
    customer = make_customer()
    set_consent(actor=Actor(user=bora), customer=customer, channel="kakao", purpose="marketing", granted=True, unit=units["bakery"], source="store")
    set_consent(actor=Actor(user=bora), customer=customer, channel="kakao", purpose="marketing", granted=False, unit=units["bakery"], source="phone")
    overview = {(r["channel"], r["purpose"]): r["record"] for r in selectors.consent_overview(customer)}
    assert overview[("kakao", "marketing")].granted is False
    assert overview[("kakao", "marketing")].source == "phone"
    with pytest.raises(ValidationError):
        set_consent(actor=Actor(user=bora), customer=customer, channel="fax", purpose="marketing", granted=True, unit=None, source="store")


def test_search_by_name_full_phone_and_last_four_digits(units, bora, make_customer):
    a = make_customer(name="김하늘", phone="010-1234-5678")
    b = make_customer(name="이하늘", phone="010-9999-5678")
    c = make_customer(name="박민수", phone="010-1111-2222")
    assert [x.pk for x in selectors.search_customers(user=bora, query="하늘")] == [a.pk, b.pk]
    assert [x.pk for x in selectors.search_customers(user=bora, query="5678")] == [a.pk, b.pk]
    assert [x.pk for x in selectors.search_customers(user=bora, query="+82 10 1234 5678")] == [a.pk]
    assert [x.pk for x in selectors.search_customers(user=bora, query="01011112222")] == [c.pk]
    assert list(selectors.search_customers(user=bora, query="0000")) == []
    assert list(selectors.search_customers(user=bora, query="")) == []


def test_staff_see_only_the_customers_of_their_units(units, bora, mina, alice, make_customer):
    bakery_customer = make_customer("bakery", name="김빵집")
    hotel_customer = make_customer("seoul-hotel", name="김호텔")
    assert list(selectors.customers_for(bora)) == [bakery_customer]
    assert list(selectors.customers_for(mina)) == [hotel_customer]
    assert set(selectors.customers_for(alice)) == {bakery_customer, hotel_customer}
    assert [c.pk for c in selectors.search_customers(user=bora, query="김")] == [bakery_customer.pk]


def test_duplicate_phone_warning_counts_matches_outside_the_scope(units, bora, make_customer):
    make_customer("seoul-hotel", name="김호텔", phone="010-7777-8888")
    visible = make_customer("bakery", name="김빵집", phone="010-7777-8888")
    matches = selectors.customers_with_phone(user=bora, phone_e164="+821077778888")
    assert [c.pk for c in matches.visible] == [visible.pk] and matches.elsewhere == 1
    assert selectors.customers_with_phone(user=bora, phone_e164="+821077778888", exclude_id=visible.pk).visible == []


def test_notes_go_on_the_timeline_newest_first_and_blank_notes_are_refused(units, bora, make_customer):
    customer = make_customer()
    add_note(actor=Actor(user=bora), customer=customer, unit=units["bakery"], text="첫 방문")
    add_note(actor=Actor(user=bora), customer=customer, unit=units["bakery"], text="크루아상 좋아함", kind="visit")
    with pytest.raises(ValidationError):
        add_note(actor=Actor(user=bora), customer=customer, unit=None, text="   ")
    page = selectors.timeline_page(user=bora, customer=customer)
    assert [e.summary for e in page] == ["크루아상 좋아함", "첫 방문"]
    assert Interaction.objects.count() == 2


def test_night_time_advertising_needs_the_advertising_consent(units, bora, make_customer):
    customer = make_customer()
    with pytest.raises(ValidationError):
        set_consent(actor=Actor(user=bora), customer=customer, channel="sms", purpose="night_marketing", granted=True, unit=None, source="store")
    set_consent(actor=Actor(user=bora), customer=customer, channel="sms", purpose="marketing", granted=True, unit=None, source="store")
    set_consent(actor=Actor(user=bora), customer=customer, channel="sms", purpose="night_marketing", granted=True, unit=None, source="store")
    # withdrawing the advertising consent withdraws the night-time one with it
    set_consent(actor=Actor(user=bora), customer=customer, channel="sms", purpose="marketing", granted=False, unit=None, source="phone")
    from dangol.customers.services import current_consents

    assert current_consents(customer) == {("sms", "marketing"): False, ("sms", "night_marketing"): False}
    with pytest.raises(ValidationError):
        create_customer(actor=Actor(user=bora), unit=units["bakery"], data=CustomerInput(name="야간만"),
                        consents=[ConsentInput("kakao", "night_marketing", True)])


def test_timeline_cursor_keeps_entries_that_share_a_timestamp(units, bora, make_customer, settings):
    import datetime as dt

    from django.utils import timezone

    settings.TIMELINE_PAGE_SIZE = 2
    customer = make_customer()
    same = timezone.now().replace(microsecond=123457)
    for i in range(5):
        add_note(actor=Actor(user=bora), customer=customer, unit=None, text=f"n{i}", at=same - dt.timedelta(days=i // 3))
    seen, cursor = [], None
    while True:
        page = selectors.timeline_page(user=bora, customer=customer, before=cursor)
        seen += [e.summary for e in page]
        if not page.has_next:
            break
        cursor = page.next_cursor
    assert sorted(seen) == ["n0", "n1", "n2", "n3", "n4"] and len(seen) == 5
