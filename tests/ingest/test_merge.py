"""Reversible merges of duplicate customers (ingest.merge)."""
import datetime as dt
import os
import threading
import time

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation

from dangol.core import events
from dangol.core.audit import Actor
from dangol.core.models import AuditEvent
from dangol.customers import selectors
from dangol.customers.models import (
    Address,
    Anniversary,
    Consent,
    ContactPoint,
    Customer,
    Interaction,
    Membership,
    Preference,
    Tag,
)
from dangol.customers.services import DateParts, add_note, add_preference, current_consents
from dangol.ingest.merge import choose_survivor, merge_customers, unmerge
from dangol.ingest.models import CandidateStatus, DuplicateCandidate, Merge, SourceRecord
from dangol.sales.models import Order
from dangol.sales.services import LineInput, record_order

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def at(days: float) -> dt.datetime:
    return T0 + dt.timedelta(days=days)


def touched(customer: Customer, when: dt.datetime) -> Customer:
    """Set when the record was last updated (survivorship compares it) without the auto_now of save()."""
    Customer.objects.filter(pk=customer.pk).update(updated_at=when)
    customer.refresh_from_db()
    return customer


def buy(actor, units, products, customer, product="croissant", when=None):
    unit = units["bakery"] if product in ("croissant", "baguette") else units["seoul-hotel"]
    return record_order(actor=actor, unit=unit, customer=customer, lines=[LineInput(products[product].pk, 1)],
                        at=when or timezone.now() - dt.timedelta(days=1))


def consent(customer, channel, granted, when, purpose="marketing"):
    return Consent.objects.create(customer=customer, channel=channel, purpose=purpose, granted=granted, at=when, source="store")


def state(customer: Customer) -> dict:
    """Everything a merge touches of one customer, comparable before and after."""
    customer = Customer.objects.get(pk=customer.pk)
    ids = lambda qs: sorted(qs.values_list("id", flat=True))  # noqa: E731
    return {
        "profile": (customer.name, customer.gender, customer.stage, customer.joined_at, customer.home_unit_id,
                    customer.updated_at, customer.merged_into_id),
        "tags": sorted(customer.tags.values_list("name", flat=True)),
        "contacts": sorted(ContactPoint.objects.filter(customer=customer).values_list("id", "kind", "value", "is_primary")),
        "addresses": sorted(Address.objects.filter(customer=customer).values_list("id", "line", "is_primary")),
        "anniversaries": ids(Anniversary.objects.filter(customer=customer)),
        "preferences": ids(Preference.objects.filter(customer=customer)),
        "interactions": ids(Interaction.objects.filter(customer=customer)),
        "memberships": sorted(Membership.objects.filter(customer=customer).values_list("id", "unit_id")),
        "consents": ids(Consent.objects.filter(customer=customer)),
        "orders": ids(Order.objects.filter(customer=customer)),
        "sources": sorted(SourceRecord.objects.filter(customer=customer).values_list("id", "original_customer_id")),
    }


@pytest.fixture
def actor(alice):
    return Actor(user=alice, ip="10.0.0.9")


@pytest.fixture
def pair(units, products, make_customer, actor):
    """Two records of one person: the survivor (hotel, 2 orders) and the merged one (bakery, 1 order), each with
    contacts, an address, anniversaries, preferences, consents, tags and a member number."""
    survivor = make_customer("seoul-hotel", name="김하늘", phone="010-1111-2222", email="sky@hotel.example",
                             sido="서울", address_line="세종대로 1", tags=["VIP"], birthday=DateParts(month=3, day=4))
    merged = make_customer("bakery", name="김 하늘", phone="010-3333-4444", email="sky@bakery.example", gender="F",
                           sido="부산", address_line="중앙대로 2", tags=["빵", "VIP"],
                           birthday=DateParts(month=5, day=6), wedding=DateParts(month=7, day=8))
    ContactPoint.objects.create(customer=merged, kind="phone", value="+821011112222", last4="2222")  # same number, secondary
    add_preference(actor=actor, customer=merged, unit=units["bakery"], topic="빵", value="크루아상")
    add_note(actor=actor, customer=merged, unit=units["bakery"], text="단골 손님")
    for _ in range(2):
        buy(actor, units, products, survivor, "deluxe")
    buy(actor, units, products, merged)
    SourceRecord.objects.create(unit=units["bakery"], source_id="B-77", customer=merged)
    SourceRecord.objects.create(unit=units["busan-hotel"], source_id="P-9", customer=merged, original_customer=merged)
    SourceRecord.objects.create(unit=units["seoul-hotel"], source_id="H-1", customer=survivor)
    Customer.objects.filter(pk=survivor.pk).update(joined_at=at(10), stage="regular")
    Customer.objects.filter(pk=merged.pk).update(joined_at=at(5), stage="customer")
    touched(survivor, at(100))
    touched(merged, at(50))
    return survivor, merged


# --- choosing the survivor -------------------------------------------------------------------------------------

def test_it_chooses_the_record_with_more_orders_then_the_earlier_join_then_the_lower_id(units, products, make_customer, actor):
    a, b = make_customer(), make_customer()
    Customer.objects.filter(pk=a.pk).update(joined_at=at(2))
    Customer.objects.filter(pk=b.pk).update(joined_at=at(1))
    a.refresh_from_db(), b.refresh_from_db()
    assert choose_survivor(a, b) == (b, a)  # no orders: the earlier joined
    buy(actor, units, products, a)
    assert choose_survivor(b, a) == (a, b)  # more orders wins over the earlier join
    buy(actor, units, products, b)
    Customer.objects.filter(pk__in=[a.pk, b.pk]).update(joined_at=at(1))
    a.refresh_from_db(), b.refresh_from_db()
    assert choose_survivor(b, a) == (a, b) == choose_survivor(a, b)  # all equal: the lower id
    with pytest.raises(ValidationError):
        choose_survivor(a, a)


# --- survivorship --------------------------------------------------------------------------------------------

def test_it_keeps_each_profile_field_by_its_own_rule(pair, actor, units):
    survivor, merged = pair
    touched(merged, at(200))  # the merged record was updated more recently: its name and gender win
    merge_customers(actor=actor, survivor=survivor, merged=merged)
    survivor.refresh_from_db()
    assert survivor.name == "김 하늘" and survivor.gender == "F"
    assert survivor.stage == "regular"  # the further along of regular and customer
    assert survivor.joined_at == at(5)  # the earlier
    assert survivor.home_unit == units["seoul-hotel"]  # the survivor's
    assert survivor.updated_at == at(200)
    assert sorted(survivor.tags.values_list("name", flat=True)) == ["VIP", "빵"]
    assert Customer.objects.get(pk=merged.pk).merged_into == survivor


def test_an_older_record_only_fills_what_the_newer_one_leaves_empty(pair, actor, units):
    survivor, merged = pair  # the survivor is newer; its gender is empty, the merged one's is F
    Customer.objects.filter(pk=survivor.pk).update(home_unit=None, stage="prospect")
    Customer.objects.filter(pk=merged.pk).update(stage="partner")
    survivor.refresh_from_db()
    merge_customers(actor=actor, survivor=survivor, merged=merged)
    survivor.refresh_from_db()
    assert (survivor.name, survivor.gender) == ("김하늘", "F")
    assert survivor.stage == "partner"
    assert survivor.home_unit == units["bakery"]  # the survivor had none
    assert survivor.updated_at == at(100)


def test_contacts_move_without_duplicates_and_the_newer_records_primary_stays_primary(pair, actor):
    survivor, merged = pair
    touched(merged, at(200))
    merge = merge_customers(actor=actor, survivor=survivor, merged=merged)
    assert set(ContactPoint.objects.filter(customer=survivor).values_list("kind", "value", "is_primary")) == {
        ("phone", "+821011112222", False), ("phone", "+821033334444", True),
        ("email", "sky@hotel.example", False), ("email", "sky@bakery.example", True)}
    # the number both had stays on the (hidden) merged record, so no contact is duplicated
    assert list(ContactPoint.objects.filter(customer=merged).values_list("value", flat=True)) == ["+821011112222"]
    assert sorted(merge.moved["contacts"]) == sorted(
        ContactPoint.objects.filter(customer=survivor, value__in=["+821033334444", "sky@bakery.example"]).values_list("id", flat=True))


def test_the_survivors_primaries_stay_when_it_is_the_newer_record(pair, actor):
    survivor, merged = pair
    merge_customers(actor=actor, survivor=survivor, merged=merged)
    assert set(ContactPoint.objects.filter(customer=survivor, is_primary=True).values_list("value", flat=True)) == {
        "+821011112222", "sky@hotel.example"}
    assert Address.objects.get(customer=survivor, is_primary=True).line == "세종대로 1"
    assert Address.objects.filter(customer=survivor).count() == 2


def test_a_newer_primary_the_survivor_already_has_becomes_its_primary(make_customer, actor):
    survivor = make_customer(phone="010-1212-3434")
    ContactPoint.objects.create(customer=survivor, kind="phone", value="+821056567878", last4="7878")
    merged = make_customer(phone="010-5656-7878")
    touched(survivor, at(1)), touched(merged, at(2))
    merge = merge_customers(actor=actor, survivor=survivor, merged=merged)
    assert set(ContactPoint.objects.filter(customer=survivor).values_list("value", "is_primary")) == {
        ("+821012123434", False), ("+821056567878", True)}
    assert merge.moved["contacts"] == []
    unmerge(actor=actor, merge=merge)
    assert set(ContactPoint.objects.filter(customer=survivor).values_list("value", "is_primary")) == {
        ("+821012123434", True), ("+821056567878", False)}
    assert set(ContactPoint.objects.filter(customer=merged).values_list("value", "is_primary")) == {("+821056567878", True)}


def test_addresses_anniversaries_preferences_and_memberships_move(pair, actor, units):
    survivor, merged = pair
    merge = merge_customers(actor=actor, survivor=survivor, merged=merged)
    # anniversaries: the wedding day (a kind the survivor lacked) moves, the second birthday does not
    assert sorted(Anniversary.objects.filter(customer=survivor).values_list("kind", "month")) == [("birthday", 3), ("wedding", 7)]
    assert list(Anniversary.objects.filter(customer=merged).values_list("kind", flat=True)) == ["birthday"]
    assert list(Preference.objects.filter(customer=survivor).values_list("value", flat=True)) == ["크루아상"]
    assert set(Membership.objects.filter(customer=survivor).values_list("unit__code", flat=True)) == {"seoul-hotel", "bakery"}
    assert sorted(Address.objects.filter(customer=survivor).values_list("line", flat=True)) == ["세종대로 1", "중앙대로 2"]
    assert set(merge.moved) >= {"contacts", "addresses", "anniversaries", "preferences", "interactions", "memberships",
                                "consents", "orders", "source_records"}


def test_orders_timeline_and_source_ids_move_and_the_merge_shows_on_the_timeline(pair, actor, units):
    survivor, merged = pair
    merged_orders = list(Order.objects.filter(customer=merged).values_list("id", flat=True))
    merged_timeline = list(Interaction.objects.filter(customer=merged).values_list("id", flat=True))
    merge = merge_customers(actor=actor, survivor=survivor, merged=merged)
    assert Order.objects.filter(customer=survivor).count() == 3 and not Order.objects.filter(customer=merged).exists()
    assert merge.moved["orders"] == sorted(merged_orders)
    assert merge.moved["interactions"] == sorted(merged_timeline)
    assert not Interaction.objects.filter(customer=merged).exists()
    note = Interaction.objects.get(customer=survivor, ref_type="merge")
    assert (note.kind, note.ref_id, note.summary) == ("note", merge.pk, f"Merged with customer #{merged.pk}")
    assert "하늘" not in note.summary and "+82" not in note.summary
    # the next import of the bakery's member number finds the survivor; whom it was first given to is kept
    assert set(SourceRecord.objects.filter(source_id__in=["B-77", "P-9"]).values_list("customer", "original_customer")) == {
        (survivor.pk, merged.pk)}
    assert SourceRecord.objects.get(source_id="H-1").original_customer is None


def test_the_merged_record_is_hidden_from_lists_search_and_phone_lookup(pair, actor, alice, mina):
    survivor, merged = pair
    merge_customers(actor=actor, survivor=survivor, merged=merged)
    assert list(selectors.customers_for(alice).filter(pk__in=[survivor.pk, merged.pk])) == [survivor]
    # the number both had, and the number only the merged record had, both find the survivor only
    assert [c.pk for c in selectors.phone_lookup(user=alice, phone_e164="+821011112222")] == [survivor.pk]
    assert [c.pk for c in selectors.phone_lookup(user=alice, phone_e164="+821033334444")] == [survivor.pk]
    assert [c.pk for c in selectors.customers_with_phone(user=alice, phone_e164="+821011112222").visible] == [survivor.pk]
    # the survivor is now a member of the bakery too; the Seoul manager still sees it through the hotel
    assert [c.pk for c in selectors.search_customers(user=mina, query="4444")] == [survivor.pk]


# --- consents --------------------------------------------------------------------------------------------------

def test_a_newer_withdrawal_on_the_merged_record_beats_an_older_grant_on_the_survivor(make_customer, actor):
    survivor, merged = make_customer(), make_customer()
    consent(survivor, "sms", True, at(1))
    consent(merged, "sms", False, at(2))
    consent(merged, "kakao", True, at(3))
    merge_customers(actor=actor, survivor=survivor, merged=merged)
    state_ = current_consents(survivor)
    assert state_[("sms", "marketing")] is False and state_[("kakao", "marketing")] is True
    overview = {(i["channel"], i["purpose"]): i["record"] for i in selectors.consent_overview(survivor)}
    assert overview[("sms", "marketing")].granted is False and overview[("sms", "marketing")].at == at(2)
    assert Consent.objects.filter(customer=survivor).count() == 3  # the history of both


def test_a_newer_withdrawal_on_the_survivor_beats_an_older_grant_on_the_merged_record(make_customer, actor):
    survivor, merged = make_customer(), make_customer()
    consent(merged, "sms", True, at(1))
    consent(survivor, "sms", False, at(2))
    consent(merged, "email", False, at(1))
    consent(survivor, "email", True, at(2))  # a newer grant does win over an older withdrawal: the latest decision
    merge_customers(actor=actor, survivor=survivor, merged=merged)
    assert current_consents(survivor)[("sms", "marketing")] is False
    assert current_consents(survivor)[("email", "marketing")] is True


def test_a_withdrawal_wins_over_a_grant_made_at_the_same_instant(make_customer, actor):
    survivor, merged = make_customer(), make_customer()
    consent(survivor, "sms", False, at(1))
    consent(merged, "sms", True, at(1))  # inserted later, so a higher id
    merge_customers(actor=actor, survivor=survivor, merged=merged)
    overview = {(i["channel"], i["purpose"]): i["record"] for i in selectors.consent_overview(survivor)}
    assert overview[("sms", "marketing")].granted is False
    assert current_consents(survivor)[("sms", "marketing")] is False


# --- unmerge ---------------------------------------------------------------------------------------------------

def test_unmerge_restores_both_records_exactly_and_marks_the_pair_not_the_same(pair, actor, alice):
    survivor, merged = pair
    consent(survivor, "sms", True, at(1))
    consent(merged, "sms", False, at(2))
    candidate = DuplicateCandidate.objects.create(left_id=min(survivor.pk, merged.pk), right_id=max(survivor.pk, merged.pk),
                                                  match_probability=0.93, match_weight=7.5)
    touched(merged, at(200))  # so that names, primaries and the address all change hands
    before = state(survivor), state(merged)
    merge = merge_customers(actor=actor, survivor=survivor, merged=merged, automatic=True, match_probability=0.93)
    candidate.refresh_from_db()
    assert (candidate.status, candidate.decided_by) == (CandidateStatus.MERGED, alice)
    assert state(survivor) != before[0]

    unmerge(actor=actor, merge=merge)
    assert (state(survivor), state(merged)) == before
    assert current_consents(survivor) == {("sms", "marketing"): True}
    merge.refresh_from_db()
    candidate.refresh_from_db()
    assert merge.undone_at is not None and merge.undone_by == alice
    assert (candidate.status, candidate.decided_by) == (CandidateStatus.NOT_SAME, alice)
    assert not Interaction.objects.filter(ref_type="merge").exists()
    assert set(selectors.customers_for(alice).filter(pk__in=[survivor.pk, merged.pk])) == {survivor, merged}


def test_unmerge_without_a_candidate_records_the_not_the_same_decision(make_customer, actor):
    survivor, merged = make_customer(), make_customer()
    unmerge(actor=actor, merge=merge_customers(actor=actor, survivor=survivor, merged=merged))
    candidate = DuplicateCandidate.objects.get()
    assert (candidate.left_id, candidate.right_id, candidate.status) == (min(survivor.pk, merged.pk), max(survivor.pk, merged.pk),
                                                                         CandidateStatus.NOT_SAME)


def test_rows_added_to_the_survivor_after_the_merge_stay_with_it(pair, actor, units, products):
    survivor, merged = pair
    merge = merge_customers(actor=actor, survivor=survivor, merged=merged)
    later_order = buy(actor, units, products, survivor)  # at the bakery, known to it through the merged record
    later_note = add_note(actor=actor, customer=survivor, unit=None, text="merged later")
    later_consent = consent(survivor, "kakao", True, timezone.now())
    later_phone = ContactPoint.objects.create(customer=survivor, kind="phone", value="+821077778888", last4="8888")
    unmerge(actor=actor, merge=merge)
    assert Order.objects.get(pk=later_order.pk).customer_id == survivor.pk
    assert Interaction.objects.get(pk=later_note.pk).customer_id == survivor.pk
    assert Consent.objects.get(pk=later_consent.pk).customer_id == survivor.pk
    assert ContactPoint.objects.get(pk=later_phone.pk).customer_id == survivor.pk
    # the bakery membership went back with the merged record; the survivor's own purchase there keeps it a member
    assert Membership.objects.filter(customer=survivor, unit=units["bakery"], source="purchase").exists()
    assert Membership.objects.filter(customer=merged, unit=units["bakery"], source="registered").exists()


def test_a_survivor_can_absorb_two_records_and_give_them_back_in_reverse_order(make_customer, actor):
    survivor, first, second = make_customer(), make_customer(), make_customer()
    original = state(survivor), state(first), state(second)
    m1 = merge_customers(actor=actor, survivor=survivor, merged=first)
    m2 = merge_customers(actor=actor, survivor=survivor, merged=second)
    with pytest.raises(ValidationError, match="undo the later merge first"):
        unmerge(actor=actor, merge=m1)
    unmerge(actor=actor, merge=m2)
    unmerge(actor=actor, merge=m1)
    assert (state(survivor), state(first), state(second)) == original


# --- bad input -------------------------------------------------------------------------------------------------

def test_bad_merges_are_refused_and_change_nothing(make_customer, actor):
    a, b, c = make_customer(), make_customer(), make_customer()
    with pytest.raises(ValidationError, match="itself"):
        merge_customers(actor=actor, survivor=a, merged=a)
    with pytest.raises(ValidationError, match="between 0 and 1"):
        merge_customers(actor=actor, survivor=a, merged=b, match_probability=1.5)
    merge_customers(actor=actor, survivor=a, merged=b)
    snapshot = state(a), state(b), state(c), AuditEvent.objects.count()
    stale_b = Customer.objects.get(pk=b.pk)
    stale_b.merged_into = None  # a caller holding an old copy: the locked row decides
    with pytest.raises(ValidationError, match="already been merged"):
        merge_customers(actor=actor, survivor=c, merged=stale_b)
    with pytest.raises(ValidationError, match="already been merged"):
        merge_customers(actor=actor, survivor=b, merged=c)
    assert (state(a), state(b), state(c), AuditEvent.objects.count()) == snapshot
    assert Merge.objects.count() == 1


def test_bad_unmerges_are_refused(make_customer, actor):
    a, b, c = make_customer(), make_customer(), make_customer()
    first = merge_customers(actor=actor, survivor=a, merged=b)
    later = merge_customers(actor=actor, survivor=c, merged=a)  # the survivor has since been merged into c
    with pytest.raises(ValidationError, match="undo the later merge first"):
        unmerge(actor=actor, merge=first)
    unmerge(actor=actor, merge=later)
    unmerge(actor=actor, merge=first)
    with pytest.raises(ValidationError, match="already been undone"):
        unmerge(actor=actor, merge=first)
    assert Customer.objects.filter(merged_into__isnull=False).count() == 0


# --- events, audit, queries ------------------------------------------------------------------------------------

def test_an_event_handler_sees_the_moved_rows_and_can_add_its_own(make_customer, actor, units, products):
    survivor, merged = make_customer(), make_customer()
    buy(actor, units, products, merged)
    seen = []

    def on_merged(*, survivor, merged, merge, moved):
        seen.append(("merged", survivor.pk, merged.pk, merge.pk, list(moved["orders"])))
        moved["points"] = [41, 42]

    def on_unmerged(*, survivor, merged, merge, moved):
        seen.append(("unmerged", survivor.pk, merged.pk, merge.pk, moved["points"]))

    events.subscribe("customers_merged", on_merged)
    events.subscribe("customers_unmerged", on_unmerged)
    try:
        merge = merge_customers(actor=actor, survivor=survivor, merged=merged)
        merge.refresh_from_db()
        assert merge.moved["points"] == [41, 42]
        unmerge(actor=actor, merge=merge)
    finally:
        events._handlers["customers_merged"].remove(on_merged)
        events._handlers["customers_unmerged"].remove(on_unmerged)
    order_id = Order.objects.get(customer=merged).pk
    assert seen == [("merged", survivor.pk, merged.pk, merge.pk, [order_id]),
                    ("unmerged", survivor.pk, merged.pk, merge.pk, [41, 42])]


def test_a_failing_handler_rolls_the_whole_merge_back(make_customer, actor):
    survivor, merged = make_customer(), make_customer()
    snapshot = state(survivor), state(merged)

    def broken(**payload):
        raise RuntimeError("points could not move")

    events.subscribe("customers_merged", broken)
    try:
        with pytest.raises(RuntimeError):
            merge_customers(actor=actor, survivor=survivor, merged=merged)
    finally:
        events._handlers["customers_merged"].remove(broken)
    assert (state(survivor), state(merged)) == snapshot and not Merge.objects.exists()


def test_merge_and_unmerge_are_audited_without_personal_values(pair, actor, alice):
    survivor, merged = pair
    unmerge(actor=actor, merge=merge_customers(actor=actor, survivor=survivor, merged=merged))
    audited = {(e.action, e.object_id) for e in AuditEvent.objects.filter(action__startswith="customer.").exclude(
        action__in=["customer.create", "customer.note", "customer.preference"])}
    assert audited == {("customer.merge", str(survivor.pk)), ("customer.merged_into", str(merged.pk)),
                       ("customer.unmerge", str(survivor.pk)), ("customer.unmerged", str(merged.pk))}
    merge_event = AuditEvent.objects.get(action="customer.merge")
    assert merge_event.actor == alice and "moved.orders" in merge_event.fields and "tags" in merge_event.fields
    text = str(list(AuditEvent.objects.values_list("fields", flat=True)))
    assert "하늘" not in text and "+82" not in text and "@" not in text


# The merge itself (35 / 30 for the undo) plus loyalty moving its ledger, lots, coupons and referrals; PostgreSQL
# takes a few more for its row locks.
MERGE_QUERIES = {"sqlite": 56, "postgresql": 62}  # incl. the handlers of loyalty, stamps, service, privacy, partners, events, messaging
UNMERGE_QUERIES = {"sqlite": 42, "postgresql": 42}


@pytest.mark.parametrize("orders", [1, 12])
def test_a_merge_costs_the_same_number_of_queries_whatever_it_moves(make_customer, actor, units, products, orders):
    survivor = make_customer("seoul-hotel", email="a@example.com", sido="서울", tags=["VIP"])
    merged = make_customer(email="b@example.com", sido="부산", tags=["빵"], birthday=DateParts(month=1, day=2))
    ContactPoint.objects.create(customer=merged, kind="phone", value="+821098765432", last4="5432")
    add_preference(actor=actor, customer=merged, unit=units["bakery"], topic="빵", value="바게트")
    consent(merged, "sms", True, at(1))
    for _ in range(orders):
        buy(actor, units, products, merged)
    SourceRecord.objects.create(unit=units["bakery"], source_id="B-1", customer=merged)
    touched(merged, timezone.now())
    with CaptureQueriesContext(connection) as merging:
        merge = merge_customers(actor=actor, survivor=survivor, merged=merged)
    assert len(merge.moved["orders"]) == orders and len(merge.moved["interactions"]) == orders
    with CaptureQueriesContext(connection) as undoing:
        unmerge(actor=actor, merge=merge)
    # nearly every path of the merge is taken here (savepoints included); the counts do not grow with the rows moved
    assert len(merging) == MERGE_QUERIES[connection.vendor], "\n".join(q["sql"] for q in merging.captured_queries)
    assert len(undoing) == UNMERGE_QUERIES[connection.vendor], "\n".join(q["sql"] for q in undoing.captured_queries)


# --- PostgreSQL only: the row lock, and the speed of 1,000 merges -----------------------------------------------

postgres_only = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="row locks need PostgreSQL")


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_merges_of_the_same_record_cannot_both_win(make_customer, alice):
    actor = Actor(user=alice)
    a, b, c = make_customer(), make_customer(), make_customer()
    first_has_locked, results = threading.Event(), {}

    def slow_handler(**payload):
        first_has_locked.set()
        time.sleep(0.5)  # hold the locks while the second merge tries

    def second():
        first_has_locked.wait(5)
        try:
            with translation.override("en"):  # a thread has its own active language
                merge_customers(actor=actor, survivor=c, merged=b)
            results["second"] = "merged"
        except ValidationError as exc:
            results["second"] = exc.messages[0]
        finally:
            connection.close()

    events.subscribe("customers_merged", slow_handler)
    thread = threading.Thread(target=second)
    thread.start()
    try:
        merge_customers(actor=actor, survivor=a, merged=b)
    finally:
        events._handlers["customers_merged"].remove(slow_handler)
        thread.join(10)
    assert "already been merged" in results["second"]
    assert Customer.objects.get(pk=b.pk).merged_into_id == a.pk and Merge.objects.count() == 1


@postgres_only
@pytest.mark.skipif(not os.environ.get("DANGOL_MERGE_BENCH"), reason="a timing run: set DANGOL_MERGE_BENCH=1")
def test_the_time_of_a_thousand_merges(units, products, actor):
    from dangol.sales.models import OrderLine

    n = 1000
    now = timezone.now()
    customers = Customer.objects.bulk_create([Customer(name=f"고객{i}", joined_at=now, home_unit=units["bakery"]) for i in range(2 * n)])
    Membership.objects.bulk_create([Membership(customer=c, unit=units["bakery"], joined_at=now) for c in customers])
    ContactPoint.objects.bulk_create([ContactPoint(customer=c, kind="phone", value=f"+8210{i:08d}", last4=f"{i:04d}"[-4:],
                                                   is_primary=True) for i, c in enumerate(customers)])
    Consent.objects.bulk_create([Consent(customer=c, channel="sms", granted=bool(i % 2), at=now, source="import")
                                 for i, c in enumerate(customers)])
    orders = Order.objects.bulk_create([Order(unit=units["bakery"], customer=c, ordered_at=now, total=4500)
                                        for c in customers for _ in range(3)])
    OrderLine.objects.bulk_create([OrderLine(order=o, product=products["croissant"], quantity=1, unit_price=4500, line_total=4500)
                                   for o in orders])
    Interaction.objects.bulk_create([Interaction(customer_id=o.customer_id, kind="purchase", occurred_at=now, ref_type="sales.order",
                                                 ref_id=o.pk) for o in orders])
    tag = Tag.objects.create(name="bench")
    Customer.tags.through.objects.bulk_create([Customer.tags.through(customer_id=c.pk, tag_id=tag.pk) for c in customers[1::2]])
    started = time.perf_counter()
    merges = [merge_customers(actor=actor, survivor=customers[2 * i], merged=customers[2 * i + 1]) for i in range(n)]
    merged_seconds = time.perf_counter() - started
    started = time.perf_counter()
    for merge in reversed(merges):
        unmerge(actor=actor, merge=merge)
    unmerged_seconds = time.perf_counter() - started
    print(f"\n{n} merges: {merged_seconds:.2f} s ({merged_seconds / n * 1000:.1f} ms each); "
          f"{n} unmerges: {unmerged_seconds:.2f} s ({unmerged_seconds / n * 1000:.1f} ms each)")
    assert Order.objects.filter(customer__merged_into__isnull=False).count() == 0
