"""Cross-sell rules, next-best products, the up-sell ladder and lookalike prospects, checked by hand on tiny data."""
from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone, translation

from dangol.analytics import recommendations as rec
from dangol.core.audit import Actor
from dangol.customers.models import Customer, Gender
from dangol.sales.models import Category, Order, Product
from dangol.sales.services import LineInput, record_order, record_refund

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("test")


@pytest.fixture
def bakery_shelf(units):
    """Products of the bakery: a bread ladder (one price shared by two, one product no longer sold) and cakes."""
    bakery = units["bakery"]
    bread = Category.objects.create(name="식사빵", unit=bakery)
    cakes = Category.objects.create(name="케이크", unit=bakery)

    def product(sku, name, price, category=bread, active=True):
        return Product.objects.create(unit=bakery, category=category, sku=sku, name=name, price=price, is_active=active)

    return {
        "A": product("B-1", "크루아상", 4500),
        "B": product("B-2", "바게트", 5000),
        "B2": product("B-3", "단팥빵", 5000),
        "C": product("B-4", "식빵", 6000),
        "old": product("B-5", "옛날 식빵", 7000, active=False),
        "top": product("B-6", "호밀빵", 8000),
        "cake": product("C-1", "딸기 케이크", 32000, cakes),
        "big_cake": product("C-2", "웨딩 케이크", 250000, cakes),
    }


def buy(customer, unit, *products, days_ago=10):
    at = timezone.now() - dt.timedelta(days=days_ago)
    return record_order(actor=ACTOR, unit=unit, customer=customer, at=at,
                        lines=[LineInput(product_id=p.pk, quantity=1) for p in products])


# --- association rules ----------------------------------------------------------------------------------------------

@pytest.fixture
def five_baskets(units, bakery_shelf, make_customer, products):
    """Five counted bakery orders {A,B} {A,B,C} {A} {B,C} {C}; plus orders that must not count: one flagged for
    review, one refunded, one at the hotel."""
    s, bakery = bakery_shelf, units["bakery"]
    someone = make_customer("bakery")
    for basket in ([s["A"], s["B"]], [s["A"], s["B"], s["C"]], [s["A"]], [s["B"], s["C"]], [s["C"]]):
        buy(someone, bakery, *basket)
    flagged = buy(someone, bakery, s["A"], s["C"])
    Order.objects.filter(pk=flagged.pk).update(needs_review=True)
    refunded = buy(someone, bakery, s["A"], s["C"], days_ago=12)
    record_refund(actor=ACTOR, order=refunded)
    buy(someone, units["seoul-hotel"], products["deluxe"])
    return s


def test_it_computes_support_confidence_and_lift_of_order_baskets(units, five_baskets):
    s = five_baskets
    assoc = rec.basket_counts(basket=rec.BASKET_ORDER, unit_ids=[units["bakery"].pk])
    assert assoc.baskets == assoc.total_baskets == 5 and not assoc.sampled
    assert assoc.item_counts == {s["A"].pk: 3, s["B"].pk: 3, s["C"].pk: 3}
    rules = {(r.antecedent, r.consequent): r for r in assoc.rules()}
    ab = rules[(s["A"].pk, s["B"].pk)]
    assert ab.together == 2 and ab.support == pytest.approx(2 / 5)
    assert ab.confidence == pytest.approx(2 / 3)
    assert ab.lift == pytest.approx((2 / 3) / (3 / 5))  # 10/9
    ac = rules[(s["A"].pk, s["C"].pk)]
    assert ac.support == pytest.approx(1 / 5) and ac.confidence == pytest.approx(1 / 3)
    assert ac.lift == pytest.approx((1 / 3) / (3 / 5))  # 5/9: bought together less than by chance
    assert rules[(s["C"].pk, s["B"].pk)].confidence == pytest.approx(2 / 3)
    # Filters on the rules: only the lift > 1 pairs survive a lift floor, and top pairs leave lift ≤ 1 out.
    assert {(r.antecedent, r.consequent) for r in assoc.rules(min_lift=1.01)} == {
        (s["A"].pk, s["B"].pk), (s["B"].pk, s["A"].pk), (s["B"].pk, s["C"].pk), (s["C"].pk, s["B"].pk)}
    top = assoc.top_pairs(min_count=1, min_support=0)
    assert [(p.first, p.second) for p in top] == sorted([(s["A"].pk, s["B"].pk), (s["B"].pk, s["C"].pk)])
    assert top[0].confidence_first_to_second == pytest.approx(2 / 3)


def test_it_counts_the_whole_group_and_periods(units, five_baskets, products):
    everything = rec.basket_counts(basket=rec.BASKET_ORDER)
    assert everything.baskets == 6  # the hotel stay too
    assert everything.item_counts[products["deluxe"].pk] == 1
    # Each product is measured against its own unit's orders: the hotel stay does not dilute the bakery's pairs.
    assert everything.base(five_baskets["A"].pk) == 5 and everything.base(products["deluxe"].pk) == 1
    ab = next(r for r in everything.rules() if (r.antecedent, r.consequent) == (five_baskets["A"].pk, five_baskets["B"].pk))
    assert ab.baskets == 5 and ab.lift == pytest.approx(10 / 9)
    nothing = rec.basket_counts(basket=rec.BASKET_ORDER, start=timezone.now() - dt.timedelta(days=5))
    assert nothing.baskets == 0 and nothing.item_counts == {} and nothing.rules() == []
    assert rec.basket_counts(basket=rec.BASKET_ORDER, min_pair_count=3).pair_counts == {}


def test_it_samples_windows_of_basket_ids_above_the_limit(units, five_baskets):
    assoc = rec.basket_counts(basket=rec.BASKET_ORDER, unit_ids=[units["bakery"].pk], max_baskets=2)
    counted = rec.counted_sales(unit_ids=[units["bakery"].pk])
    in_sample = counted.filter(rec._id_windows("pk", Order, 2 / 5))
    assert assoc.total_baskets == 5 and assoc.sampled
    assert 0 < assoc.baskets == in_sample.count() < 5
    assert sum(assoc.item_counts.values()) == sum(o.lines.count() for o in in_sample)


def test_it_refuses_bad_basket_arguments(db):
    with pytest.raises(ValidationError):
        rec.basket_counts(basket="shelf")
    with pytest.raises(ValidationError):
        rec.basket_counts(max_baskets=0)


@pytest.fixture
def seven_customers(units, bakery_shelf, make_customer):
    """Customer baskets (over separate orders): c1 {A,B} c2 {A,B} c3 {A,B,C} c4 {C,D} c5 {C,D} c6 {A} c7 {A,B},
    with D the strawberry cake. N=7, n(A)=5 n(B)=4 n(C)=3 n(D)=2, AB=4 AC=1 BC=1 CD=2."""
    s, bakery = bakery_shelf, units["bakery"]
    D = s["cake"]
    baskets = {"c1": [s["A"], s["B"]], "c2": [s["A"], s["B"]], "c3": [s["A"], s["B"], s["C"]], "c4": [s["C"], D],
               "c5": [s["C"], D], "c6": [s["A"]], "c7": [s["A"], s["B"]]}
    people = {}
    for name, basket in baskets.items():
        people[name] = make_customer("bakery", name=f"고객{name}")
        for days, product in enumerate(basket):  # one order per product: what a customer buys over time
            buy(people[name], bakery, product, days_ago=30 - days)
    return people


def test_it_computes_customer_baskets_across_orders(bakery_shelf, seven_customers):
    s = bakery_shelf
    assoc = rec.basket_counts(basket=rec.BASKET_CUSTOMER)
    assert assoc.baskets == 7
    assert assoc.item_counts == {s["A"].pk: 5, s["B"].pk: 4, s["C"].pk: 3, s["cake"].pk: 2}
    rules = {(r.antecedent, r.consequent): r for r in assoc.rules()}
    assert rules[(s["A"].pk, s["B"].pk)].confidence == pytest.approx(4 / 5)
    assert rules[(s["A"].pk, s["B"].pk)].lift == pytest.approx((4 / 5) / (4 / 7))
    assert rules[(s["C"].pk, s["cake"].pk)].lift == pytest.approx((2 / 3) / (2 / 7))


def test_next_best_products_exclude_what_the_customer_bought(bakery_shelf, seven_customers):
    s, people = bakery_shelf, seven_customers
    assoc = rec.basket_counts(basket=rec.BASKET_CUSTOMER)
    only_a = rec.next_best_products(customer=people["c6"], associations=assoc, min_count=1, min_support=0)
    assert [n.product.pk for n in only_a] == [s["B"].pk]
    assert only_a[0].score == pytest.approx(4 / 5)
    assert only_a[0].because_of.pk == s["A"].pk and only_a[0].lift == pytest.approx(1.4)
    # c3 bought A, B and C: only the cake is left, led by C → D (2/3); A → D and B → D have no rule.
    c3 = rec.next_best_products(customer=people["c3"], associations=assoc, min_count=1, min_support=0)
    assert [n.product.pk for n in c3] == [s["cake"].pk]
    assert c3[0].score == pytest.approx(2 / 3) and c3[0].because_of.pk == s["C"].pk
    # c7 bought A and B: C and D have only rules with lift below 1 from them, so nothing is proposed.
    assert rec.next_best_products(customer=people["c7"], associations=assoc, min_count=1, min_support=0) == []
    # Restricted to products the viewer sells: nothing from elsewhere.
    assert rec.next_best_products(customer=people["c6"], associations=assoc, min_count=1, min_support=0,
                                  allowed_product_ids=[s["cake"].pk]) == []


def test_next_best_scores_many_customers_at_once(bakery_shelf, seven_customers):
    s, people = bakery_shelf, seven_customers
    assoc = rec.basket_counts(basket=rec.BASKET_CUSTOMER)
    ids, top, scores = rec.next_best_scores(customer_ids=[people[n].pk for n in ("c7", "c3", "c6", "c4")],
                                            associations=assoc, limit=2, min_count=1, min_support=0)
    rows = {int(i): (list(p), list(sc)) for i, p, sc in zip(ids, top, scores)}
    assert rows[people["c6"].pk][0] == [s["B"].pk, 0]
    assert rows[people["c3"].pk][0] == [s["cake"].pk, 0]
    assert rows[people["c7"].pk][0] == [0, 0]
    # c4 bought C and D: C → B has lift (1/3)/(4/7) < 1, C → A too; nothing.
    assert rows[people["c4"].pk][0] == [0, 0]
    for pk, (products, _scores) in rows.items():
        bought = set(Customer.objects.get(pk=pk).orders.values_list("lines__product_id", flat=True))
        assert not bought & set(products)
    # A segment given as a queryset is read in one query and gives the same answer.
    segment = Customer.objects.filter(pk__in=[people[n].pk for n in ("c7", "c3", "c6", "c4")])
    same_ids, same_top, same_scores = rec.next_best_scores(customer_ids=segment, associations=assoc, limit=2,
                                                           min_count=1, min_support=0)
    assert (same_ids == ids).all() and (same_top == top).all() and (same_scores == scores).all()


def test_a_customer_with_two_rules_to_a_product_combines_them(units, bakery_shelf, make_customer):
    """Score = 1 − Π(1 − confidence): two purchases that each lead to the cake add up."""
    s, bakery = bakery_shelf, units["bakery"]
    plan = [[s["A"], s["cake"]], [s["B"], s["cake"]], [s["A"]], [s["B"]], [s["C"]], [s["C"]], [s["top"]]]
    for i, basket in enumerate(plan):
        person = make_customer("bakery", name=f"손님{i}")
        for product in basket:
            buy(person, bakery, product)
    target = make_customer("bakery", name="대상")
    buy(target, bakery, s["A"], s["B"])
    assoc = rec.basket_counts(basket=rec.BASKET_CUSTOMER)
    # N = 8; n(A)=3 (incl. target), n(B)=3, n(cake)=2; A→cake = 1/3, lift (1/3)/(2/8) = 4/3; the same for B.
    best = rec.next_best_products(customer=target, associations=assoc, min_count=1, min_support=0)
    assert best[0].product.pk == s["cake"].pk
    assert best[0].score == pytest.approx(1 - (1 - 1 / 3) ** 2)


# --- up-sell --------------------------------------------------------------------------------------------------------

def test_the_upsell_ladder_steps_to_the_next_dearer_active_product(bakery_shelf):
    s = bakery_shelf
    ladder = rec.upsell_ladder()
    assert ladder[s["A"].pk].pk == s["B"].pk  # 4,500 → 5,000 (the first created of the two at 5,000)
    assert ladder[s["B"].pk].pk == s["C"].pk and ladder[s["B2"].pk].pk == s["C"].pk  # equal prices share a rung
    assert ladder[s["C"].pk].pk == s["top"].pk  # 7,000 is no longer sold: skipped
    assert s["top"].pk not in ladder and s["old"].pk not in ladder
    assert ladder[s["cake"].pk].pk == s["big_cake"].pk  # categories are separate ladders


def test_upsell_for_a_customer_starts_from_the_dearest_product_bought(units, bakery_shelf, make_customer, products):
    s, bakery = bakery_shelf, units["bakery"]
    regular = make_customer("bakery")
    buy(regular, bakery, s["A"], s["B"], s["cake"])
    buy(regular, units["seoul-hotel"], products["deluxe"])
    offers = {(o.bought.pk, o.offer.pk) for o in rec.upsell_for(customer=regular)}
    assert offers == {(s["B"].pk, s["C"].pk), (s["cake"].pk, s["big_cake"].pk)}  # the hotel has one room: no ladder
    assert {o.offer.pk for o in rec.upsell_for(customer=regular, allowed_unit_ids=[units["seoul-hotel"].pk])} == set()
    # Who bought the old loaf (no longer sold) is offered the next one still on sale; the top rung has no offer.
    retro = make_customer("bakery")
    buy(retro, bakery, s["A"])
    Product.objects.filter(pk=s["old"].pk).update(is_active=True)
    buy(retro, bakery, s["old"])
    Product.objects.filter(pk=s["old"].pk).update(is_active=False)
    assert [(o.bought.pk, o.offer.pk) for o in rec.upsell_for(customer=retro)] == [(s["old"].pk, s["top"].pk)]
    topper = make_customer("bakery")
    buy(topper, bakery, s["top"], s["big_cake"])
    assert rec.upsell_for(customer=topper) == []
    assert rec.upsell_for(customer=make_customer("bakery")) == []


def test_upsell_offers_of_many_customers_in_one_query(units, bakery_shelf, make_customer, django_assert_num_queries):
    s, bakery = bakery_shelf, units["bakery"]
    first, second = make_customer("bakery"), make_customer("bakery")
    buy(first, bakery, s["A"], s["cake"])
    buy(second, bakery, s["top"], s["B2"])
    with django_assert_num_queries(1):
        rows = list(rec.upsell_offers(customer_ids=[first.pk, second.pk]))
    assert {(r["customer_id"], r["offer_id"]) for r in rows} == {
        (first.pk, s["B"].pk), (first.pk, s["big_cake"].pk)}  # the second already buys the top loaf


# --- lookalikes -----------------------------------------------------------------------------------------------------

AS_OF = dt.date(2025, 6, 30)


def _at(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(12)))


def _established(make_customer, unit, product, *, name, gender, sido, sigungu, quantity, clv, channel):
    from dangol.analytics.models import CustomerMetrics

    person = make_customer(unit.code, name=name, gender=gender, sido=sido, sigungu=sigungu)
    first = AS_OF - dt.timedelta(days=200)
    record_order(actor=ACTOR, unit=unit, customer=person, at=_at(first), channel=channel,
                 lines=[LineInput(product_id=product.pk, quantity=quantity)])
    CustomerMetrics.objects.create(customer=person, as_of=AS_OF, orders=1, first_order_at=_at(first),
                                   last_order_at=_at(first), clv_12m=clv, monetary_total=product.price * quantity)
    return person


@pytest.fixture
def best_and_rest(units, products, make_customer):
    """Four top-value hotel guests (women in 강남구 who booked several nights on the web) and 36 bakery customers
    (men in 해운대구, one croissant at the counter): the top decile of 40 is the four guests."""
    hotel, bakery = units["seoul-hotel"], units["bakery"]
    for i in range(4):
        _established(make_customer, hotel, products["deluxe"], name=f"우수{i}", gender=Gender.FEMALE, sido="서울특별시",
                     sigungu="강남구", quantity=3, clv=3_000_000 + i, channel="web")
    for i in range(36):
        _established(make_customer, bakery, products["croissant"], name=f"일반{i}", gender=Gender.MALE, sido="부산광역시",
                     sigungu="해운대구", quantity=1, clv=20_000 + i, channel="store")
    alike = make_customer("seoul-hotel", name="닮은꼴", gender=Gender.FEMALE, sido="서울특별시", sigungu="강남구")
    unlike = make_customer("bakery", name="다른꼴", gender=Gender.MALE, sido="부산광역시", sigungu="해운대구")
    return alike, unlike


def test_lookalikes_rank_a_prospect_like_the_best_customers_first_and_say_why(best_and_rest):
    alike, unlike = best_and_rest
    with translation.override("en"):
        result = rec.lookalikes(customers=Customer.objects.all(), as_of=AS_OF)
    assert result.seeds == 4 and result.trained_on == 40 and result.candidates == 2
    assert result.threshold_clv == 3_000_000
    ranked = [r.customer_id for r in result.results]
    assert ranked == [alike.pk, unlike.pk]
    best, worst = result.results
    assert best.score > 10 * worst.score
    assert best.reasons and set(best.reasons) <= {"woman", "lives in 강남구", "lives in 서울특별시",
                                                  "registered at 한빛호텔 서울"}
    assert worst.reasons == [] or not set(worst.reasons) & {"woman", "lives in 강남구"}
    traits = {name: (best, rest) for name, best, rest in result.traits}
    assert traits["woman"] == traits["lives in 강남구"] == traits["large first purchase"] == (1.0, 0.0)
    assert "man" not in traits  # common among the rest, not the best
    assert result.features[0][1] > 0 and result.features[0][0] in (
        "woman", "lives in 강남구", "lives in 서울특별시", "registered at 한빛호텔 서울", "large first purchase",
        "spent much in the first 30 days", "first bought at 한빛호텔 서울", "first bought via Web")


def test_lookalikes_score_new_customers_and_keep_to_the_given_customers(units, products, best_and_rest, make_customer):
    alike, unlike = best_and_rest
    newcomer = make_customer("seoul-hotel", name="새손님", gender=Gender.FEMALE, sido="서울특별시", sigungu="강남구")
    record_order(actor=ACTOR, unit=units["seoul-hotel"], customer=newcomer, at=_at(AS_OF - dt.timedelta(days=5)),
                 channel="web", lines=[LineInput(product_id=products["deluxe"].pk, quantity=3)])
    with translation.override("en"):
        result = rec.lookalikes(customers=Customer.objects.all(), as_of=AS_OF)
    first, second = result.results[:2]
    assert (first.customer_id, second.customer_id) == (newcomer.pk, alike.pk)  # alike in profile and first purchase
    assert first.score > second.score and len(first.reasons) == 3
    assert rec.lookalikes(customers=Customer.objects.all(), as_of=AS_OF, reasons=5).results[0].reasons[3:]
    hotel_only = Customer.objects.filter(memberships__unit=units["seoul-hotel"])
    scoped = rec.lookalikes(customers=hotel_only, as_of=AS_OF)
    assert unlike.pk not in {r.customer_id for r in scoped.results}


def test_lookalikes_need_enough_established_customers(units, products, make_customer):
    make_customer("bakery")
    result = rec.lookalikes(customers=Customer.objects.all(), as_of=AS_OF)
    assert result.results == [] and result.seeds == 0
    with pytest.raises(ValidationError):
        rec.lookalikes(customers=Customer.objects.all(), limit=0)
