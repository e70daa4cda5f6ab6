import datetime as dt
import hashlib
import re
from collections import Counter

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Count, F, Max, Min, Q, Sum

from dangol.core.audit import Actor
from dangol.core.models import BusinessUnit
from dangol.core.phones import normalize_phone
from dangol.customers.anniversaries import validate_date_parts
from dangol.customers.models import Address, Anniversary, Consent, ContactPoint, Customer, Interaction, Membership
from dangol.customers.services import CustomerInput, create_customer
from dangol.demo import people
from dangol.demo.catalogue import UNITS
from dangol.demo.generator import GenerationReport, ensure_reference_data, generate
from dangol.demo.models import GeneratedDuplicate
from dangol.sales.models import Category, Order, OrderLine, Product

END = dt.datetime(2025, 6, 30, 15, 0, tzinfo=dt.timezone.utc)
pytestmark = pytest.mark.django_db


@pytest.fixture
def report() -> GenerationReport:
    return generate(customers=300, seed=7, end=END)


def test_it_builds_the_four_units_and_their_catalogue_once():
    first = ensure_reference_data()
    counts = (BusinessUnit.objects.count(), Category.objects.count(), Product.objects.count())
    second = ensure_reference_data()
    assert first == second
    assert counts == (BusinessUnit.objects.count(), Category.objects.count(), Product.objects.count())
    units = dict(BusinessUnit.objects.values_list("code", "name"))
    assert units == {"seoul-hotel": "한빛호텔 서울", "busan-hotel": "한빛호텔 부산", "bakery": "한빛 베이커리",
                     "restaurant": "한빛 레스토랑"}
    categories = {(c.unit.code, c.name) for c in Category.objects.select_related("unit")}
    assert {("seoul-hotel", "객실"), ("seoul-hotel", "스파"), ("busan-hotel", "식음료"), ("bakery", "케이크"),
            ("bakery", "커피"), ("restaurant", "코스"), ("restaurant", "와인")} <= categories
    for product in Product.objects.select_related("category"):
        assert product.category.unit_id == product.unit_id
        assert 0 < product.unit_cost < product.price


def test_it_uses_units_that_already_exist(units):
    reference = ensure_reference_data()
    assert set(reference.unit_ids) == {unit.pk for unit in units.values()}
    assert BusinessUnit.objects.count() == 4


def test_counts_are_plausible_and_match_the_report(report):
    assert report.customers == Customer.objects.count() == 300
    assert report.order_lines == OrderLine.objects.count()
    assert 0.75 * 3000 <= report.order_lines <= 1.25 * 3000
    assert report.orders == Order.objects.count()
    assert report.refunds == Order.objects.filter(kind="refund").count() > 0
    assert report.interactions == Interaction.objects.count()
    assert report.memberships == Membership.objects.count() >= 300
    assert report.contact_points == ContactPoint.objects.count()
    assert report.addresses == Address.objects.count()
    assert report.anniversaries == Anniversary.objects.count()
    assert report.consents == Consent.objects.count()
    assert (report.first_customer_id, report.last_customer_id) == (
        Customer.objects.order_by("id").first().id, Customer.objects.order_by("id").last().id)
    assert set(report.phase_seconds) == {"prepare", "build", "write", "finish"}
    assert report.seconds == pytest.approx(sum(report.phase_seconds.values())) and report.seconds > 0


def test_lines_per_customer_follows_the_parameter():
    report = generate(customers=400, seed=3, end=END, lines_per_customer=4.0)
    assert 0.75 * 1600 <= report.order_lines <= 1.25 * 1600


def test_order_totals_are_the_sum_of_their_lines(report):
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT COUNT(*) FROM sales_order o
            LEFT JOIN (SELECT order_id, SUM(line_total) AS s, COUNT(*) AS n FROM sales_orderline GROUP BY order_id) l
                   ON l.order_id = o.id
            WHERE l.s IS NULL OR l.s <> o.total OR l.n NOT BETWEEN 1 AND 4
        """)
        assert cursor.fetchone()[0] == 0
    assert OrderLine.objects.exclude(line_total=F("unit_price") * F("quantity")).count() == 0
    assert Order.objects.filter(kind="sale", total__lte=0).count() == 0


def test_every_order_with_a_customer_has_exactly_one_timeline_entry(report):
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT COUNT(*) FROM sales_order o
            WHERE o.customer_id IS NOT NULL AND 1 <> (
                SELECT COUNT(*) FROM customers_interaction i
                WHERE i.ref_type = 'sales.order' AND i.ref_id = o.id AND i.customer_id = o.customer_id
                  AND i.unit_id = o.unit_id AND i.amount = o.total AND i.occurred_at = o.ordered_at
                  AND i.kind = CASE WHEN o.kind = 'refund' THEN 'refund' ELSE 'purchase' END)
        """)
        assert cursor.fetchone()[0] == 0
    assert Interaction.objects.filter(ref_type="sales.order").count() == Order.objects.count()
    sale = Order.objects.filter(kind="sale").annotate(n=Count("lines")).filter(n=2).first()
    entry = Interaction.objects.get(ref_type="sales.order", ref_id=sale.pk)
    first_line = sale.lines.order_by("id").first()
    assert entry.summary == f"{first_line.product.name} ×{first_line.quantity} (+1)"
    notes = Interaction.objects.filter(kind__in=["note", "visit"])
    assert notes.exists() and not notes.exclude(ref_type="").exists()


def test_refunds_are_negative_orders_pointing_at_their_sale(report):
    refunds = Order.objects.filter(kind="refund").select_related("refund_of")
    assert 0 < refunds.count() < 0.08 * Order.objects.filter(kind="sale").count()
    for refund in refunds:
        sale = refund.refund_of
        assert sale.kind == "sale" and sale.refund_of_id is None
        assert (refund.total, refund.customer_id, refund.unit_id) == (-sale.total, sale.customer_id, sale.unit_id)
        assert refund.total < 0 and refund.ordered_at >= sale.ordered_at
        lines = list(refund.lines.values_list("product_id", "quantity", "line_total"))
        assert lines == [(p, -q, -t) for p, q, t in sale.lines.values_list("product_id", "quantity", "line_total")]
        assert all(q < 0 and t < 0 for _, q, t in lines)
    assert Order.objects.filter(kind="sale", refunds__isnull=False).values("id").annotate(n=Count("refunds")).filter(n__gt=1).count() == 0


def test_about_three_percent_are_duplicates_of_a_person_at_another_unit(report):
    duplicates = list(GeneratedDuplicate.objects.all())
    assert len(duplicates) == report.duplicates == 9
    phones = {c: v for c, v in ContactPoint.objects.filter(kind="phone").values_list("customer_id", "value")}
    emails = {c: v for c, v in ContactPoint.objects.filter(kind="email").values_list("customer_id", "value")}
    for pair in duplicates:
        duplicate, original = Customer.objects.get(pk=pair.duplicate_id), Customer.objects.get(pk=pair.original_id)
        assert duplicate.pk > original.pk and duplicate.home_unit_id != original.home_unit_id
        assert duplicate.joined_at >= original.joined_at and duplicate.gender == original.gender
        same_phone = phones.get(duplicate.pk) is not None and phones.get(duplicate.pk) == phones.get(original.pk)
        if pair.variation == "swapped_syllables":
            assert same_phone and duplicate.name == original.name[0] + original.name[2] + original.name[1]
        elif pair.variation == "extra_space":
            assert same_phone and duplicate.name == f"{original.name[0]} {original.name[1:]}"
        elif pair.variation == "similar_syllable":
            assert same_phone and len(duplicate.name) == len(original.name)
            assert sum(a != b for a, b in zip(duplicate.name, original.name)) == 1
        elif pair.variation == "email_uppercase":
            assert duplicate.name == original.name and emails[duplicate.pk] == emails[original.pk] == emails[original.pk].lower()
            assert duplicate.pk not in phones
        else:
            assert pair.variation == "phone_one_digit" and duplicate.name == original.name
            a, b = phones[duplicate.pk], phones[original.pk]
            assert sum(x != y for x, y in zip(a, b)) == 1
        # registered at another unit: a membership there
        assert Membership.objects.filter(customer=duplicate, unit_id=duplicate.home_unit_id, source="registered").exists()


def test_duplicates_come_in_every_variation():
    generate(customers=3000, seed=11, end=END)
    variations = Counter(GeneratedDuplicate.objects.values_list("variation", flat=True))
    assert sum(variations.values()) == 90
    assert set(variations) == {"swapped_syllables", "extra_space", "similar_syllable", "email_uppercase", "phone_one_digit"}


def test_phones_are_korean_mobiles_in_e164_with_their_last_four_digits(report):
    phones = list(ContactPoint.objects.filter(kind="phone"))
    assert len(phones) >= 0.9 * 300
    for phone in phones:
        assert re.fullmatch(r"\+8210[2-9]\d{7}", phone.value)
        assert phone.last4 == phone.value[-4:] and phone.label == "mobile" and phone.is_primary
    for phone in phones:
        assert normalize_phone(phone.value) == phone.value
        assert normalize_phone(f"010-{phone.value[5:9]}-{phone.value[9:]}") == phone.value
    # the persons' numbers are distinct; only a duplicate record repeats one
    shared = Counter(p.value for p in phones)
    same_phone_pairs = GeneratedDuplicate.objects.filter(
        variation__in=["swapped_syllables", "extra_space", "similar_syllable"]).count()
    assert sum(n - 1 for n in shared.values()) == same_phone_pairs
    emails = ContactPoint.objects.filter(kind="email")
    assert 0.3 * 300 <= emails.count() <= 0.9 * 300
    for email in emails:
        assert re.fullmatch(r"[a-z.0-9]+@[a-z.]+", email.value) or email.value.isupper()
        assert email.last4 == "" and email.is_primary
    assert ContactPoint.objects.values("customer", "kind").annotate(n=Count("id")).filter(n__gt=1).count() == 0


def test_names_regions_and_anniversaries_look_korean(report):
    surnames = Counter(name[0] for name in Customer.objects.values_list("name", flat=True))
    assert surnames.most_common(1)[0][0] == "김"
    assert set(Customer.objects.values_list("gender", flat=True)) <= {"F", "M", ""}
    sidos = Counter(Address.objects.values_list("sido", flat=True))
    assert sidos.most_common(1)[0][0] == "서울특별시" and "부산광역시" in sidos and "경기도" in sidos
    birthdays = Anniversary.objects.filter(kind="birthday")
    assert 0.6 * 300 <= birthdays.count() <= 0.95 * 300
    lunar_share = birthdays.filter(is_lunar=True).count() / birthdays.count()
    assert 0.05 <= lunar_share <= 0.3
    assert Anniversary.objects.filter(kind="wedding").exists()
    for a in Anniversary.objects.all():
        assert validate_date_parts(year=a.year, month=a.month, day=a.day, is_lunar=a.is_lunar) is None
    years = [y for y in birthdays.exclude(year=None).values_list("year", flat=True)]
    assert min(years) >= END.year - 76 and max(years) <= END.year - 19


def test_consents_are_marketing_grants_recorded_when_the_customer_joined(report):
    consents = Consent.objects.select_related("customer")
    assert consents.count() > 300
    assert set(consents.values_list("channel", flat=True)) == {"sms", "kakao", "email", "post", "phone"}
    assert set(consents.values_list("source", flat=True)) == {"store", "web"}
    for consent in consents[:200]:
        assert consent.granted and consent.purpose == "marketing" and consent.evidence
        assert consent.at == consent.customer.joined_at and consent.unit_id == consent.customer.home_unit_id


def test_memberships_and_stages_follow_the_purchases(report):
    assert Membership.objects.filter(source="registered").count() == 300
    assert not Membership.objects.filter(source="registered").exclude(unit_id=F("customer__home_unit_id")).exists()
    bought_at = Order.objects.values("customer_id", "unit_id").annotate(first=Min("ordered_at"))
    memberships = {(m.customer_id, m.unit_id): m for m in Membership.objects.all()}
    for row in bought_at:
        assert memberships[(row["customer_id"], row["unit_id"])].joined_at <= row["first"]
    year_ago = END - dt.timedelta(days=365)
    sales = Customer.objects.annotate(
        n=Count("orders", filter=Q(orders__kind="sale")),
        recent=Count("orders", filter=Q(orders__kind="sale", orders__ordered_at__gte=year_ago)))
    assert not sales.filter(stage="prospect", n__gt=0).exists()
    assert not sales.filter(stage__in=["customer", "regular"], n=0).exists()
    assert not sales.filter(stage="regular", recent__lt=6).exists()
    assert not sales.filter(stage="customer", recent__gte=6).exists()
    assert set(Customer.objects.values_list("stage", flat=True)) == {"prospect", "customer", "regular"}


def test_times_lie_in_the_window_and_follow_the_customer(report):
    start = END - dt.timedelta(days=2 * 366 + 1)
    assert not Order.objects.filter(Q(ordered_at__gt=END) | Q(ordered_at__lt=start)).exists()
    assert not Customer.objects.filter(Q(joined_at__gt=END) | Q(joined_at__lt=start)).exists()
    assert not Order.objects.filter(ordered_at__lt=F("customer__joined_at")).exists()
    lapsed = Customer.objects.annotate(n=Count("orders"), last=Max("orders__ordered_at"))
    assert lapsed.filter(n__gte=2, last__lt=END - dt.timedelta(days=183)).exists()


def test_behaviour_has_seasons_and_gendered_tastes():
    generate(customers=3000, seed=5, end=END)
    hotel_months = Counter(
        at.month for at in Order.objects.filter(kind="sale", unit__code__in=["seoul-hotel", "busan-hotel"])
        .values_list("ordered_at", flat=True))
    assert hotel_months[8] > 1.2 * hotel_months[3]
    bakery_days = Counter(
        (at + dt.timedelta(hours=9)).weekday() for at in Order.objects.filter(kind="sale", unit__code="bakery")
        .values_list("ordered_at", flat=True))
    assert (bakery_days[5] + bakery_days[6]) / sum(bakery_days.values()) > 1.25 * 2 / 7
    lines = OrderLine.objects.filter(order__kind="sale")
    women_share = lines.filter(order__customer__gender="F").count() / lines.count()
    spa = lines.filter(product__category__name="스파")
    assert spa.filter(order__customer__gender="F").count() / spa.count() > women_share + 0.1
    bakery_hours = Counter((at + dt.timedelta(hours=9)).hour for at in Order.objects.filter(unit__code="bakery")
                           .values_list("ordered_at", flat=True))
    assert bakery_hours[3] == 0 and bakery_hours[8] > 0


def test_the_orm_reads_the_generated_rows(report):
    customer = Customer.objects.prefetch_related("contacts", "addresses", "anniversaries", "memberships").get(
        pk=report.first_customer_id)
    assert customer.name and customer.joined_at.tzinfo is not None
    assert customer.created_at == customer.joined_at and customer.home_unit.code in {u.code for u in UNITS}
    assert all(contact.customer_id == customer.pk for contact in customer.contacts.all())
    order = Order.objects.filter(kind="sale").order_by("-total").first()
    assert order.total == sum(line.line_total for line in order.lines.all())
    assert Order.objects.aggregate(s=Sum("total"))["s"] == OrderLine.objects.aggregate(s=Sum("line_total"))["s"]
    # datetimes are stored as Django stores them: filters on a range agree with the values read back
    cutoff = END - dt.timedelta(days=30)
    read_back = [at for at in Order.objects.values_list("ordered_at", flat=True) if at >= cutoff]
    assert Order.objects.filter(ordered_at__gte=cutoff).count() == len(read_back) > 0
    assert Customer.objects.filter(joined_at=customer.joined_at).filter(pk=customer.pk).exists()
    assert Order.objects.filter(ordered_at__date__gte=cutoff.date()).exists()


def test_the_app_writes_after_a_generation_without_id_collisions(report):
    created = create_customer(actor=Actor.system("test"), unit=BusinessUnit.objects.get(code="bakery"),
                              data=CustomerInput(name="홍길동", phone="010-1234-5678"))
    assert created.pk > report.last_customer_id
    assert ContactPoint.objects.filter(customer=created).count() == 1


def _fingerprint(first_id: int, last_id: int) -> str:
    """The generated data of one run with the ids replaced by positions in that run."""
    digest = hashlib.sha256()
    customers = Customer.objects.filter(id__range=(first_id, last_id)).order_by("id")
    for row in customers.values_list("id", "name", "gender", "stage", "joined_at", "home_unit__code"):
        digest.update(repr((row[0] - first_id, *row[1:])).encode())
    for row in (ContactPoint.objects.filter(customer__id__range=(first_id, last_id)).order_by("id")
                .values_list("customer_id", "kind", "value", "last4")):
        digest.update(repr((row[0] - first_id, *row[1:])).encode())
    for row in (Order.objects.filter(customer__id__range=(first_id, last_id)).order_by("id")
                .values_list("customer_id", "unit__code", "kind", "ordered_at", "total", "channel")):
        digest.update(repr((row[0] - first_id, *row[1:])).encode())
    for row in (OrderLine.objects.filter(order__customer__id__range=(first_id, last_id)).order_by("id")
                .values_list("product__sku", "quantity", "unit_price")):
        digest.update(repr(row).encode())
    for row in (GeneratedDuplicate.objects.filter(duplicate__id__range=(first_id, last_id)).order_by("id")
                .values_list("duplicate_id", "original_id", "variation")):
        digest.update(repr((row[0] - first_id, row[1] - first_id, row[2])).encode())
    return digest.hexdigest()


def test_the_same_seed_gives_the_same_data_and_another_seed_other_data():
    runs = [generate(customers=250, seed=seed, end=END, chunk_size=100) for seed in (9, 9, 10)]
    first, again, other = (_fingerprint(r.first_customer_id, r.last_customer_id) for r in runs)
    assert runs[1].first_customer_id == runs[0].last_customer_id + 1  # appended after the existing rows
    assert first == again
    assert first != other
    assert Customer.objects.count() == 750


def test_it_reports_progress_and_validates_its_arguments():
    messages = []
    generate(customers=120, seed=1, end=END, chunk_size=50, progress=messages.append)
    assert len(messages) == 5 and "120/120" in messages[-2]
    for bad in (dict(customers=-1), dict(customers=10, years=0), dict(customers=10, lines_per_customer=0.5),
                dict(customers=10, end=dt.datetime(2025, 1, 1))):
        with pytest.raises(ValueError):
            generate(**bad)


def test_the_generate_command(capsys):
    call_command("generate", customers=60, seed=2, end="2025-06-30", quiet=True)
    out = capsys.readouterr().out
    assert "customers 60" in out and "2025-06-30T14:59:59+00:00" in out
    assert Customer.objects.count() == 60
    assert Order.objects.order_by("-ordered_at").first().ordered_at <= dt.datetime(2025, 6, 30, 15, tzinfo=dt.timezone.utc)


def test_every_name_syllable_has_a_romanisation():
    syllables = {s for pools in people.GIVEN_POOLS.values() for pool in pools for s in pool}
    assert syllables <= set(people.ROMANISED_SYLLABLES)
    assert all(0 < sum(people.region_weights(u.code)) < 1.0001 for u in UNITS)


def test_generated_numbers_avoid_unallocated_ranges_and_stay_distinct():
    import numpy as np
    import phonenumbers

    from dangol.demo.generator import PHONE_SPACE, _phone_numbers

    class Plan:
        phone_multiplier, phone_offset = 12_345_679, 777
    positions = np.arange(0, PHONE_SPACE, 37)  # 2.15 million positions across the whole space
    numbers = _phone_numbers(Plan, positions)
    assert len(np.unique(numbers)) == len(numbers)
    assert numbers.min() >= 20_000_000 and numbers.max() <= 99_999_999
    assert not ((numbers >= 59_700_000) & (numbers < 60_000_000)).any()
    for middle in range(2000, 10000):  # every middle group the generator can produce is a valid number
        if not 5970 <= middle <= 5999:
            assert phonenumbers.is_valid_number(phonenumbers.parse(f"+8210{middle}1234", None)), middle
