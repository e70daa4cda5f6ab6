"""The review pages of data cleansing: the duplicate queue and its side-by-side page, merges and their undo, flagged
orders; their services and selectors; scope, permissions, audit and query counts."""
import re

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.urls import reverse

from dangol.core.audit import Actor
from dangol.core.models import AuditEvent, Role
from dangol.core.services import create_staff_user
from dangol.customers.models import Customer
from dangol.customers.services import DateParts
from dangol.ingest import review, selectors
from dangol.ingest.models import CandidateStatus, DuplicateCandidate, FlagReason, FlagStatus, Merge, OrderFlag
from dangol.sales.models import Order
from dangol.sales.services import LineInput, record_order

from tests.helpers import PASSWORD, login

SYSTEM = Actor.system("test")


@pytest.fixture(autouse=True)
def english(client):
    """The assertions read the English source strings; the app's default language is Korean."""
    from django.utils import translation

    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    with translation.override("en"):
        yield


def pair(a, b, probability=0.82, weight=4.6, agreements=None, status=CandidateStatus.OPEN):
    left, right = sorted([a, b], key=lambda c: c.pk)
    return DuplicateCandidate.objects.create(left=left, right=right, match_probability=probability, match_weight=weight,
                                             agreements=agreements or {}, status=status)


def buy(customer, unit, product, quantity=1):
    return record_order(actor=SYSTEM, unit=unit, customer=customer, lines=[LineInput(product_id=product.pk, quantity=quantity)])


def flag(order, reason=FlagReason.EXTREME_PRICE, detail="250,000원 → 2,500,000원"):
    Order.objects.filter(pk=order.pk).update(needs_review=True)
    return OrderFlag.objects.create(order=order, reason=reason, detail=detail)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


@pytest.fixture
def hotel_pair(make_customer):
    a = make_customer("seoul-hotel", name="김하늘", phone="010-1234-5678")
    b = make_customer("seoul-hotel", name="김하늘", phone="010-1234-5679")
    return pair(a, b, agreements={"name": "exact", "phone": "close", "email": "missing", "birth_date": "different"})


# --- permissions and scope ------------------------------------------------------------------------------------------

def test_it_needs_a_login(client, units):
    response = client.get(reverse("web:review_duplicates"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("web:login"))


def test_it_refuses_staff_on_every_page_and_action(client, bora, make_customer, products, units):
    a, b = make_customer("bakery"), make_customer("bakery")
    candidate = pair(a, b)
    order_flag = flag(buy(a, units["bakery"], products["croissant"]))
    login(client, bora)
    for url in [reverse("web:review_duplicates"), reverse("web:review_candidate", args=[candidate.pk]),
                reverse("web:review_merges"), reverse("web:review_orders")]:
        response = client.get(url)
        assert response.status_code == 403, url
        assert 'data-testid="forbidden"' in response.content.decode()
    for url, data in [(reverse("web:review_candidate_merge", args=[candidate.pk]), {"survivor_id": a.pk}),
                      (reverse("web:review_candidate_not_same", args=[candidate.pk]), {}),
                      (reverse("web:review_flag_accept", args=[order_flag.pk]), {}),
                      (reverse("web:review_flag_reject", args=[order_flag.pk]), {})]:
        assert client.post(url, data).status_code == 403, url
    candidate.refresh_from_db()
    order_flag.refresh_from_db()
    assert candidate.status == CandidateStatus.OPEN and order_flag.status == FlagStatus.OPEN
    assert 'data-testid="nav-review"' not in client.get(reverse("web:home")).content.decode()


def test_the_review_link_shows_for_managers_and_admins(client, alice, mina):
    for user in (alice, mina):
        login(client, user)
        assert 'data-testid="nav-review"' in client.get(reverse("web:home")).content.decode()
        client.logout()


def test_a_manager_sees_only_pairs_with_both_records_in_her_units(client, mina, alice, make_customer, hotel_pair):
    hotel = make_customer("seoul-hotel", name="박민수")
    bakery = make_customer("bakery", name="박민수")
    crossing = pair(hotel, bakery, probability=0.95)
    login(client, mina)
    html = client.get(reverse("web:review_duplicates")).content.decode()
    assert html.count('data-testid="pair"') == 1
    assert reverse("web:review_candidate", args=[hotel_pair.pk]) in html
    assert reverse("web:review_candidate", args=[crossing.pk]) not in html
    assert client.get(reverse("web:review_candidate", args=[crossing.pk])).status_code == 404
    assert client.post(reverse("web:review_candidate_merge", args=[crossing.pk]), {"survivor_id": hotel.pk}).status_code == 404
    assert client.post(reverse("web:review_candidate_not_same", args=[crossing.pk])).status_code == 404
    assert DuplicateCandidate.objects.get(pk=crossing.pk).status == CandidateStatus.OPEN
    client.logout()
    login(client, alice)
    assert client.get(reverse("web:review_duplicates")).content.decode().count('data-testid="pair"') == 2


def test_pairs_with_a_record_merged_elsewhere_leave_the_queue(alice, make_customer):
    a, b, c = make_customer("bakery"), make_customer("bakery"), make_customer("bakery")
    first, second = pair(a, b), pair(a, c)
    review.merge_candidate(actor=Actor(user=alice), candidate=first, survivor_id=b.pk)  # a is now merged into b
    assert list(selectors.open_candidates_for(alice)) == []
    with pytest.raises(ValidationError, match="merged into another customer"):
        review.merge_candidate(actor=Actor(user=alice), candidate=second, survivor_id=c.pk)
    assert DuplicateCandidate.objects.get(pk=second.pk).status == CandidateStatus.OPEN


def test_action_urls_refuse_get(client, mina, hotel_pair, make_customer, units, products):
    order_flag = flag(buy(hotel_pair.left, units["seoul-hotel"], products["deluxe"]))
    merge = review.merge_candidate(actor=Actor(user=mina), candidate=hotel_pair, survivor_id=hotel_pair.left_id)
    login(client, mina)
    for url in [reverse("web:review_candidate_merge", args=[hotel_pair.pk]),
                reverse("web:review_candidate_not_same", args=[hotel_pair.pk]),
                reverse("web:review_merge_undo", args=[merge.pk]),
                reverse("web:review_flag_accept", args=[order_flag.pk]),
                reverse("web:review_flag_reject", args=[order_flag.pk])]:
        assert client.get(url).status_code == 405, url
    assert Merge.objects.get().undone_at is None and OrderFlag.objects.get().status == FlagStatus.OPEN


def test_actions_need_the_csrf_token(mina, hotel_pair):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(mina)
    assert strict.post(reverse("web:review_candidate_not_same", args=[hotel_pair.pk])).status_code == 403
    page = strict.get(reverse("web:review_candidate", args=[hotel_pair.pk])).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = strict.post(reverse("web:review_candidate_not_same", args=[hotel_pair.pk]), {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert DuplicateCandidate.objects.get().status == CandidateStatus.NOT_SAME


# --- the queue and the side-by-side page ----------------------------------------------------------------------------

def test_the_queue_lists_pairs_with_probability_masked_names_phones_and_units(client, mina, hotel_pair):
    login(client, mina)
    html = client.get(reverse("web:review_duplicates")).content.decode()
    assert "82%" in html
    assert "김*늘" in html and "김하늘" not in html
    assert "010-****-5678" in html and "010-****-5679" in html and "1234" not in html
    assert "한빛호텔 서울" in html


def test_the_side_by_side_page_compares_the_fields_and_its_view_is_audited(client, mina, make_customer, units, products):
    a = make_customer("seoul-hotel", name="이서연", phone="010-2222-3333", email="seoyeon@example.com",
                      birthday=DateParts(month=3, day=9, year=1988, is_lunar=True), sido="서울특별시", sigungu="강남구")
    b = make_customer("seoul-hotel", name="이서연", phone="010-2222-3334")
    buy(b, units["seoul-hotel"], products["deluxe"], quantity=2)
    candidate = pair(a, b, probability=0.874, weight=5.25,
                     agreements={"name": "exact", "phone": "close", "email": "missing", "birth_date": "different", "gender": "exact"})
    login(client, mina)
    response = client.get(reverse("web:review_candidate", args=[candidate.pk]), REMOTE_ADDR="10.9.8.7")
    html = response.content.decode()
    assert response.status_code == 200
    assert "87%" in html and "5.3" in html
    assert "010-2222-3333" in html and "010-2222-3334" in html  # full numbers: the page is an audited view
    assert "seoyeon@example.com" in html and "1988-03-09" in html and "강남구" in html
    assert "1 order · 500,000원" in html and "0 orders · 0원" in html
    for key, level in [("name", "agree"), ("phone", "close"), ("email", "missing"), ("birth_date", "differ")]:
        assert re.search(rf'data-testid="row-{key}">\s*<th scope="row">[^<]*<span class="cmp cmp-{level}"', html), key
    assert re.search(r'data-testid="other-levels">[^<]*:\s*\S+ <span class="cmp cmp-agree">', html)
    # The record with more orders is suggested to keep.
    assert re.search(rf'value="{b.pk}" data-testid="merge-(left|right)" class="primary" data-suggested="true"', html)
    events = AuditEvent.objects.filter(action="customer.view_contacts")
    assert sorted(int(e.object_id) for e in events) == sorted([a.pk, b.pk])
    assert {(e.actor, e.ip) for e in events} == {(mina, "10.9.8.7")}


def test_merge_from_the_page_moves_the_orders_and_the_survivor_lists_two_units(client, mina, alice, make_customer, units, products):
    hotel_guest = make_customer("seoul-hotel", name="정우성", phone="010-8765-4321")
    bakery_guest = make_customer("bakery", name="정우성", phone="010-8765-4321")
    buy(hotel_guest, units["seoul-hotel"], products["deluxe"])
    buy(bakery_guest, units["bakery"], products["croissant"], quantity=3)
    bakery_guest.memberships.create(unit=units["seoul-hotel"], joined_at=bakery_guest.joined_at, source="linked")
    candidate = pair(hotel_guest, bakery_guest)
    login(client, mina)
    response = client.post(reverse("web:review_candidate_merge", args=[candidate.pk]), {"survivor_id": hotel_guest.pk}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("web:customer_detail", args=[hotel_guest.pk])
    assert any("Merged customer" in m for m in messages_of(response))
    assert set(Order.objects.filter(customer=hotel_guest).values_list("unit__code", flat=True)) == {"seoul-hotel", "bakery"}
    assert Customer.objects.get(pk=bakery_guest.pk).merged_into_id == hotel_guest.pk
    candidate.refresh_from_db()
    assert (candidate.status, candidate.decided_by) == (CandidateStatus.MERGED, mina)
    assert AuditEvent.objects.filter(action="duplicate.merge", object_id=str(candidate.pk), actor=mina).exists()
    client.logout()
    login(client, alice)
    html = client.get(reverse("web:customer_detail", args=[hotel_guest.pk])).content.decode()
    assert "한빛호텔 서울" in html and "한빛 베이커리" in html
    orders = client.get(reverse("web:customer_orders", args=[hotel_guest.pk])).content.decode()
    assert "디럭스 룸" in orders and "크루아상" in orders
    assert client.get(reverse("web:customer_detail", args=[bakery_guest.pk])).status_code == 404


def test_merge_needs_one_of_the_two_records(client, mina, hotel_pair, make_customer):
    stranger = make_customer("seoul-hotel")
    login(client, mina)
    url = reverse("web:review_candidate_merge", args=[hotel_pair.pk])
    for survivor in [str(stranger.pk), "", "abc", "-1", "9" * 30]:
        response = client.post(url, {"survivor_id": survivor}, follow=True)
        assert any("Choose one of the two records" in m for m in messages_of(response)), survivor
    assert not Merge.objects.exists() and DuplicateCandidate.objects.get().status == CandidateStatus.OPEN
    with pytest.raises(ValidationError):
        review.merge_candidate(actor=Actor(user=mina), candidate=hotel_pair, survivor_id=str(hotel_pair.left_id))


def test_not_the_same_removes_the_pair_and_deciding_twice_is_a_clear_error(client, mina, hotel_pair):
    login(client, mina)
    response = client.post(reverse("web:review_candidate_not_same", args=[hotel_pair.pk]), follow=True)
    assert response.redirect_chain[-1][0] == reverse("web:review_duplicates")
    assert 'data-testid="pair"' not in response.content.decode()
    hotel_pair.refresh_from_db()
    assert (hotel_pair.status, hotel_pair.decided_by) == (CandidateStatus.NOT_SAME, mina)
    for url, data in [(reverse("web:review_candidate_not_same", args=[hotel_pair.pk]), {}),
                      (reverse("web:review_candidate_merge", args=[hotel_pair.pk]), {"survivor_id": hotel_pair.left_id})]:
        response = client.post(url, data, follow=True)
        assert any("already decided (Not the same person)" in m for m in messages_of(response))
        assert 'data-testid="decided"' in response.content.decode()
        assert 'data-testid="merge-form"' not in response.content.decode()
    assert not Merge.objects.exists()
    assert AuditEvent.objects.filter(action="duplicate.not_same").count() == 1


def test_merging_twice_is_a_clear_error(client, mina, hotel_pair):
    login(client, mina)
    url = reverse("web:review_candidate_merge", args=[hotel_pair.pk])
    client.post(url, {"survivor_id": hotel_pair.left_id})
    response = client.post(url, {"survivor_id": hotel_pair.left_id}, follow=True)
    assert response.status_code == 200
    assert any("already decided (Merged)" in m for m in messages_of(response))
    assert Merge.objects.count() == 1


def test_htmx_actions_are_sent_on_with_hx_redirect(client, mina, hotel_pair):
    login(client, mina)
    response = client.post(reverse("web:review_candidate_not_same", args=[hotel_pair.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 204 and response["HX-Redirect"] == reverse("web:review_duplicates")


# --- merges and undo ------------------------------------------------------------------------------------------------

def test_undo_restores_both_records(client, mina, make_customer, units, products):
    a = make_customer("seoul-hotel", name="최다은", phone="010-3000-0001")
    b = make_customer("seoul-hotel", name="최다은", phone="010-3000-0002")
    order_a, order_b = buy(a, units["seoul-hotel"], products["deluxe"]), buy(b, units["seoul-hotel"], products["deluxe"])
    candidate = pair(a, b)
    merge = review.merge_candidate(actor=Actor(user=mina), candidate=candidate, survivor_id=a.pk)
    login(client, mina)
    html = client.get(reverse("web:review_merges")).content.decode()
    assert html.count('data-testid="merge"') == 1 and 'data-testid="confirm-undo"' in html
    assert "최*은" in html and "최다은" not in html
    response = client.post(reverse("web:review_merge_undo", args=[merge.pk]), follow=True)
    assert any("Merge undone" in m for m in messages_of(response))
    assert 'data-testid="confirm-undo"' not in response.content.decode()  # the list shows it undone
    assert Customer.objects.get(pk=b.pk).merged_into_id is None
    assert Order.objects.get(pk=order_b.pk).customer_id == b.pk and Order.objects.get(pk=order_a.pk).customer_id == a.pk
    assert client.get(reverse("web:customer_detail", args=[b.pk])).status_code == 200
    assert DuplicateCandidate.objects.get().status == CandidateStatus.NOT_SAME
    assert Merge.objects.get().undone_by == mina
    response = client.post(reverse("web:review_merge_undo", args=[merge.pk]), follow=True)
    assert any("already been undone" in m for m in messages_of(response))


def test_undo_through_htmx_returns_the_row(client, alice, hotel_pair):
    merge = review.merge_candidate(actor=Actor(user=alice), candidate=hotel_pair, survivor_id=hotel_pair.right_id)
    login(client, alice)
    response = client.post(reverse("web:review_merge_undo", args=[merge.pk]), HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert f'id="merge-{merge.pk}"' in html and "Merge undone" in html and 'data-testid="confirm-undo"' not in html
    html = client.post(reverse("web:review_merge_undo", args=[merge.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert "already been undone" in html and 'role="alert"' in html


def test_a_manager_sees_and_undoes_only_merges_of_her_units(client, mina, alice, make_customer):
    a, b = make_customer("bakery"), make_customer("bakery")
    merge = review.merge_candidate(actor=Actor(user=alice), candidate=pair(a, b), survivor_id=a.pk)
    login(client, mina)
    assert 'data-testid="merge"' not in client.get(reverse("web:review_merges")).content.decode()
    assert client.post(reverse("web:review_merge_undo", args=[merge.pk])).status_code == 404
    assert Merge.objects.get().undone_at is None


# --- flagged orders -------------------------------------------------------------------------------------------------

@pytest.fixture
def flagged(make_customer, units, products):
    guest = make_customer("seoul-hotel", name="한지민", phone="010-2468-1357")
    twice = buy(guest, units["seoul-hotel"], products["deluxe"])
    once = buy(guest, units["seoul-hotel"], products["deluxe"], quantity=2)
    return {"price": flag(twice), "many": flag(twice, FlagReason.MANY_ORDERS, "31 orders on 2025-03-01"),
            "zero": flag(once, FlagReason.ZERO_PRICE, ""), "twice": twice, "once": once, "guest": guest}


def test_the_flag_list_shows_reason_detail_unit_amount_and_a_link_to_the_customer(client, mina, flagged):
    login(client, mina)
    html = client.get(reverse("web:review_orders")).content.decode()
    assert html.count('data-testid="flag"') == 3
    assert "Price far from the product&#x27;s list price" in html and "250,000원 → 2,500,000원" in html
    assert "한빛호텔 서울" in html and "500,000원" in html
    assert reverse("web:customer_detail", args=[flagged["guest"].pk]) in html
    assert "한*민" in html and "한지민" not in html


def test_accepting_every_flag_returns_the_order_to_analytics_and_rejecting_keeps_it_out(client, mina, flagged):
    login(client, mina)
    client.post(reverse("web:review_flag_accept", args=[flagged["zero"].pk]))
    assert Order.objects.get(pk=flagged["once"].pk).needs_review is False

    response = client.post(reverse("web:review_flag_accept", args=[flagged["price"].pk]), follow=True)
    assert any("has other flags" in m for m in messages_of(response))
    assert Order.objects.get(pk=flagged["twice"].pk).needs_review is True  # the many-orders flag is still open
    client.post(reverse("web:review_flag_reject", args=[flagged["many"].pk]))
    assert Order.objects.get(pk=flagged["twice"].pk).needs_review is True
    statuses = dict(OrderFlag.objects.values_list("reason", "status"))
    assert statuses == {"extreme_price": "accepted", "many_orders": "rejected", "zero_price": "accepted"}
    assert OrderFlag.objects.get(pk=flagged["many"].pk).reviewed_by == mina
    assert AuditEvent.objects.filter(action__startswith="order_flag.").count() == 3

    response = client.post(reverse("web:review_flag_accept", args=[flagged["many"].pk]), follow=True)
    assert any("already decided (Kept out of analytics)" in m for m in messages_of(response))
    assert OrderFlag.objects.get(pk=flagged["many"].pk).status == FlagStatus.REJECTED
    assert Order.objects.get(pk=flagged["twice"].pk).needs_review is True
    html = client.get(reverse("web:review_orders") + "?status=rejected").content.decode()
    assert html.count('data-testid="flag"') == 1 and 'data-testid="accept"' not in html


def test_rejecting_after_an_accept_keeps_the_order_out(mina, flagged):
    review.accept_flag(actor=Actor(user=mina), flag=flagged["price"])
    review.reject_flag(actor=Actor(user=mina), flag=flagged["many"])
    assert Order.objects.get(pk=flagged["twice"].pk).needs_review is True


def test_a_flag_decision_through_htmx_returns_the_row(client, mina, flagged):
    login(client, mina)
    response = client.post(reverse("web:review_flag_accept", args=[flagged["zero"].pk]), HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert "<html" not in html and f'id="flag-{flagged["zero"].pk}"' in html
    assert "now counts in analytics" in html and 'data-testid="accept"' not in html
    html = client.post(reverse("web:review_flag_reject", args=[flagged["zero"].pk]), HTTP_HX_REQUEST="true").content.decode()
    assert "already decided (Accepted)" in html


def test_a_manager_sees_and_decides_only_flags_of_her_units(client, mina, make_customer, units, products):
    bakery_flag = flag(buy(make_customer("bakery"), units["bakery"], products["croissant"]))
    login(client, mina)
    assert 'data-testid="flag"' not in client.get(reverse("web:review_orders")).content.decode()
    assert client.post(reverse("web:review_flag_accept", args=[bakery_flag.pk])).status_code == 404
    assert OrderFlag.objects.get().status == FlagStatus.OPEN


def test_services_refuse_staff_and_unknown_statuses_fall_back(bora, flagged, hotel_pair):
    with pytest.raises(PermissionDenied):
        review.accept_flag(actor=Actor(user=bora), flag=flagged["zero"])
    with pytest.raises(PermissionDenied):
        review.mark_not_same(actor=Actor(user=bora), candidate=hotel_pair)
    assert OrderFlag.objects.get(pk=flagged["zero"].pk).status == FlagStatus.OPEN
    review.accept_flag(actor=SYSTEM, flag=flagged["zero"])  # a background job acts as the system
    assert OrderFlag.objects.get(pk=flagged["zero"].pk).status == FlagStatus.ACCEPTED


# --- selectors ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, level", [
    ("exact", "agree"), ("close", "close"), ("different", "differ"), ("missing", "missing"),  # ingest.dedupe's words
    ("Exact match on name", "agree"), (True, "agree"), (1, "agree"),
    ("similar", "close"), ("Jaro-Winkler distance of name >= 0.9", "close"), (0.7, "close"),
    ("differ", "differ"), ("All other comparisons", "differ"), ("not the same", "differ"), (False, "differ"), (0, "differ"),
    (None, "missing"), ("", "missing"), ("name is NULL", "missing"), (-1, "missing"), ({"level": "close"}, "close"),
])
def test_agreement_levels_are_read_in_whatever_words_the_linkage_used(value, level):
    assert selectors.agreement_level(value) == level


def test_compared_fields_group_the_linkage_keys_into_rows():
    candidate = DuplicateCandidate(agreements={"phone": "differ", "phone_last4": "exact", "birthday": "close", "gender": "differ"})
    assert selectors.compared_fields(candidate) == {"phone": "agree", "birth_date": "close", "gender": "differ"}


# --- query counts ---------------------------------------------------------------------------------------------------

def _many_pairs(make_customer, n, start):
    for i in range(n):
        a = make_customer("seoul-hotel", name=f"김{i}", phone=f"010-6{start:03d}-{i:04d}")
        b = make_customer("seoul-hotel", name=f"김{i}", phone=f"010-7{start:03d}-{i:04d}")
        pair(a, b, probability=0.7 + i / 1000)


# Session, user, the tab counts, the page's rows and their prefetches: the same whatever the number of rows.
QUERIES = {"web:review_duplicates": 9, "web:review_merges": 6, "web:review_orders": 6}


@pytest.mark.parametrize("url_name", list(QUERIES))
def test_list_pages_have_a_pinned_query_count(client, mina, make_customer, units, products, url_name,
                                              django_assert_max_num_queries, django_assert_num_queries):
    def fill(n, start):
        _many_pairs(make_customer, n, start)
        for candidate in DuplicateCandidate.objects.filter(status=CandidateStatus.OPEN)[:n // 2]:
            review.merge_candidate(actor=Actor(user=mina), candidate=candidate, survivor_id=candidate.left_id)
        for customer in Customer.objects.filter(merged_into__isnull=True)[:n]:
            flag(buy(customer, units["seoul-hotel"], products["deluxe"]))

    login(client, mina)
    fill(4, 1)
    with django_assert_max_num_queries(QUERIES[url_name]) as small:
        assert client.get(reverse(url_name)).status_code == 200
    fill(12, 2)
    with django_assert_num_queries(len(small.captured_queries)):  # more rows, not more queries
        html = client.get(reverse(url_name)).content.decode()
    assert html.count('data-testid="pair"') + html.count('data-testid="merge"') + html.count('data-testid="flag"') >= 8


def test_the_side_by_side_page_query_count_is_pinned(client, mina, hotel_pair, django_assert_max_num_queries):
    login(client, mina)
    with django_assert_max_num_queries(17):  # + 2 audit rows, choose_survivor and the order totals
        assert client.get(reverse("web:review_candidate", args=[hotel_pair.pk])).status_code == 200


def test_a_manager_of_two_units_reviews_pairs_across_them(client, units, make_customer):
    jun = create_staff_user(username="jun", password=PASSWORD, role=Role.MANAGER, units=[units["seoul-hotel"], units["busan-hotel"]])
    candidate = pair(make_customer("seoul-hotel"), make_customer("busan-hotel"))
    login(client, jun)
    assert client.get(reverse("web:review_candidate", args=[candidate.pk])).status_code == 200
