"""Recommendations: cross-sell association rules, next-best products, the up-sell ladder, and lookalike prospects.

Cross-sell. A *basket* is an order (what is bought together) or a customer (what one person buys over time, across
the group's business units). Baskets and product pairs are counted in the database: the distinct (basket, product)
rows of the counted sales are joined with themselves on the basket, so the work grows with the pairs inside baskets,
not with the product of customers and products. Above ``max_baskets`` baskets a deterministic sample is counted
(evenly spaced windows of basket ids); support, confidence and lift are ratios, so a sample of a few hundred thousand baskets
estimates them to within a fraction of a percent, and the result says that it was sampled.

For a rule X → Y over N baskets, with n(X) baskets holding X and n(XY) holding both:
  support = n(XY) / N,   confidence = n(XY) / n(X),   lift = confidence / (n(Y) / N).
Lift above 1 means Y is bought with X more often than by chance. For order baskets N is the number of orders of the
products' own business unit (see ``Associations``).

Next-best products of a customer: every product the customer has not bought, scored by
  1 − ∏ over the products X they bought of (1 − confidence(X → Y)), over the rules with lift > 1,
the chance that at least one of their purchases "leads to" Y if the rules acted independently. For many customers
at once this is one sparse matrix product (customers × products) · log(1 − confidence), done in numpy.

Up-sell: within a category, products ordered by list price form a ladder; the next rung above the dearest product a
customer bought in that category is the up-sell offer.

Lookalikes: a logistic regression tells the current top-value customers (the top decile of 12-month CLV among
customers of at least three months) from the rest, on what is known of a customer early — profile (gender, age band,
region, where they registered, email, marketing consent) and the first purchase (amount, channel, business unit,
spend in the first 30 days). Prospects and new customers are scored with it; the features that raised a score most
(coefficient × standardised value) are named, so a manager sees why someone looks like the best customers.

Sales that count: kind sale, not waiting for review (``needs_review``), not refunded.
"""
from __future__ import annotations

import bisect
import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Exists, F, IntegerField, Max, Min, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce, Mod
from django.utils import timezone
from django.utils.translation import gettext as _

from dangol.customers.models import (AnniversaryKind, Address, Anniversary, Consent, ContactKind, ContactPoint,
                                     Customer, Gender, Purpose)
from dangol.sales.models import Order, OrderKind, OrderLine, Product, SalesChannel

BASKET_ORDER = "order"
BASKET_CUSTOMER = "customer"
BASKETS = (BASKET_ORDER, BASKET_CUSTOMER)
DEFAULT_MAX_BASKETS = 200_000
CACHE_SECONDS = 6 * 3600


# --- the sales that count -------------------------------------------------------------------------------------------

def counted_sales(*, unit_ids: Iterable[int] | None = None, start: dt.datetime | None = None,
                  end: dt.datetime | None = None) -> QuerySet[Order]:
    """Sales in analytics: not flagged for review, not refunded; optionally of some units and in [start, end)."""
    refunded = Order.objects.filter(refund_of=OuterRef("pk"), kind=OrderKind.REFUND)
    qs = Order.objects.filter(kind=OrderKind.SALE, needs_review=False).exclude(Exists(refunded))
    if unit_ids is not None:
        qs = qs.filter(unit_id__in=list(unit_ids))
    if start is not None:
        qs = qs.filter(ordered_at__gte=start)
    if end is not None:
        qs = qs.filter(ordered_at__lt=end)
    return qs


def counted_lines(*, unit_ids=None, start=None, end=None) -> QuerySet[OrderLine]:
    refunded = Order.objects.filter(refund_of=OuterRef("order_id"), kind=OrderKind.REFUND)
    qs = OrderLine.objects.filter(order__kind=OrderKind.SALE, order__needs_review=False).exclude(Exists(refunded))
    if unit_ids is not None:
        qs = qs.filter(order__unit_id__in=list(unit_ids))
    if start is not None:
        qs = qs.filter(order__ordered_at__gte=start)
    if end is not None:
        qs = qs.filter(order__ordered_at__lt=end)
    return qs.order_by()


# --- association rules ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    antecedent: int  # product id
    consequent: int
    together: int  # baskets holding both
    antecedent_count: int
    consequent_count: int
    baskets: int

    @property
    def support(self) -> float:
        return self.together / self.baskets

    @property
    def confidence(self) -> float:
        return self.together / self.antecedent_count

    @property
    def lift(self) -> float:
        return self.together * self.baskets / (self.antecedent_count * self.consequent_count)


@dataclass(frozen=True)
class Pair:
    """Two products bought together, with the rule's figures both ways."""

    first: int
    second: int
    together: int
    first_count: int
    second_count: int
    baskets: int

    @property
    def support(self) -> float:
        return self.together / self.baskets

    @property
    def confidence_first_to_second(self) -> float:
        return self.together / self.first_count

    @property
    def confidence_second_to_first(self) -> float:
        return self.together / self.second_count

    @property
    def lift(self) -> float:
        return self.together * self.baskets / (self.first_count * self.second_count)


@dataclass
class Associations:
    """Counts of baskets, products and product pairs; the rules are derived from them.

    Order baskets are counted per business unit (a stratum): an order holds the products of one unit, so the
    chance level of a pair is that of its own unit — over all the group's orders, any two products of a small
    unit would look strongly associated only because they are sold at the same place. Customer baskets span the
    group and form one stratum."""

    basket: str
    baskets: int  # counted (the sample, when sampled), all strata together
    total_baskets: int  # in the data
    item_counts: dict[int, int] = field(default_factory=dict)
    pair_counts: dict[tuple[int, int], int] = field(default_factory=dict)  # (smaller id, larger id) -> baskets
    stratum_baskets: dict[int, int] = field(default_factory=dict)
    item_stratum: dict[int, int] = field(default_factory=dict)

    @property
    def sampled(self) -> bool:
        return self.baskets < self.total_baskets

    def base(self, item: int) -> int:
        """The number of baskets an item's support is measured against (its stratum's)."""
        stratum = self.item_stratum.get(item)
        return self.stratum_baskets.get(stratum, self.baskets) if stratum is not None else self.baskets

    def pairs(self, *, min_support: float = 0.0, min_count: int = 1) -> list[Pair]:
        out = []
        for (x, y), n in self.pair_counts.items():
            base = self.base(x)
            if n >= max(min_count, math.ceil(min_support * base)):
                out.append(Pair(x, y, n, self.item_counts[x], self.item_counts[y], base))
        return out

    def rules(self, *, min_support: float = 0.0, min_count: int = 1, min_confidence: float = 0.0,
              min_lift: float = 0.0) -> list[Rule]:
        out = []
        for pair in self.pairs(min_support=min_support, min_count=min_count):
            for x, y in ((pair.first, pair.second), (pair.second, pair.first)):
                rule = Rule(x, y, pair.together, self.item_counts[x], self.item_counts[y], pair.baskets)
                if rule.confidence >= min_confidence and rule.lift >= min_lift:
                    out.append(rule)
        out.sort(key=lambda r: (-r.lift, -r.together, r.antecedent, r.consequent))
        return out

    def top_pairs(self, *, limit: int = 10, min_support: float = 0.002, min_count: int = 3) -> list[Pair]:
        """The pairs most bought together beyond chance: by lift, among pairs frequent enough to trust."""
        pairs = [p for p in self.pairs(min_support=min_support, min_count=min_count) if p.lift > 1]
        pairs.sort(key=lambda p: (-p.lift, -p.together, p.first, p.second))
        return pairs[:limit]


def basket_counts(*, basket: str = BASKET_ORDER, unit_ids: Iterable[int] | None = None,
                  start: dt.datetime | None = None, end: dt.datetime | None = None,
                  max_baskets: int = DEFAULT_MAX_BASKETS, min_pair_count: int = 1) -> Associations:
    """Count baskets, products per basket and product pairs per basket of the counted sales, in two queries: the
    number of baskets (to choose the sample), then one pass over the distinct (basket, product) rows that counts
    the pairs, the products (the pairs of a product with itself) and the baskets per stratum."""
    if basket not in BASKETS:
        raise ValidationError(_("A basket is an order or a customer."))
    if max_baskets < 1:
        raise ValidationError(_("Count at least one basket."))
    lines = counted_lines(unit_ids=unit_ids, start=start, end=end)
    key = "order_id" if basket == BASKET_ORDER else "order__customer_id"
    if basket == BASKET_CUSTOMER:
        lines = lines.filter(order__customer__isnull=False)
        # Customers with a counted sale: a semi-join probing the (customer, date) index, where a DISTINCT over every
        # order would sort millions of rows.
        sales = counted_sales(unit_ids=unit_ids, start=start, end=end).filter(customer_id=OuterRef("pk"))
        total = Customer.objects.filter(Exists(sales)).count()
        stratum = Value(0, output_field=IntegerField())
    else:
        total = counted_sales(unit_ids=unit_ids, start=start, end=end).count()
        stratum = F("order__unit_id")
    result = Associations(basket=basket, baskets=0, total_baskets=total)
    if total == 0:
        return result
    sampled = total > max_baskets
    if sampled:
        lines = lines.filter(_id_windows(key, Order if basket == BASKET_ORDER else Customer, max_baskets / total))
    distinct = lines.annotate(basket=F(key), item=F("product_id"), stratum=stratum) \
        .values("basket", "item", "stratum").distinct()
    inner, params = distinct.query.sql_with_params()
    item_strata: dict[int, list[tuple[int, int]]] = {}
    with connection.cursor() as cursor:
        cursor.execute(f"""
            WITH bi AS ({inner})
            SELECT a.item, b.item, a.stratum, COUNT(*) FROM bi a
            JOIN bi b ON a.basket = b.basket AND a.item <= b.item
            GROUP BY a.item, b.item, a.stratum HAVING a.item = b.item OR COUNT(*) >= %s
            UNION ALL
            SELECT NULL, NULL, stratum, COUNT(DISTINCT basket) FROM bi GROUP BY stratum""",
                       [*params, max(1, min_pair_count)])
        for x, y, group, count in cursor.fetchall():
            count = int(count)
            if x is None:
                result.stratum_baskets[int(group)] = count
            elif x == y:
                result.item_counts[int(x)] = result.item_counts.get(int(x), 0) + count
                item_strata.setdefault(int(x), []).append((count, int(group)))
            else:
                result.pair_counts[int(x), int(y)] = result.pair_counts.get((int(x), int(y)), 0) + count
    result.baskets = sum(result.stratum_baskets.values())
    # A product belongs to one unit; should imported data put it in another unit's orders, its main one counts.
    result.item_stratum = {item: max(found)[1] for item, found in item_strata.items()}
    if not sampled:
        result.total_baskets = result.baskets  # the same set, counted the same way
    return result


SAMPLE_WINDOWS = 64


def _id_windows(field_name: str, model, fraction: float) -> Q:
    """A sample of baskets by id: up to SAMPLE_WINDOWS evenly spaced id ranges covering ``fraction`` of the id span.
    Deterministic, independent of what a basket holds, and read through the id indexes — a sample by ``id % k``
    would still scan every line. Evenly spread windows keep old and new customers (ids grow with time) in it."""
    bounds = model.objects.aggregate(low=Min("pk"), high=Max("pk"))
    low, high = bounds["low"] or 0, (bounds["high"] or 0) + 1
    fraction = min(1.0, fraction)
    count = max(1, min(SAMPLE_WINDOWS, math.floor((high - low) * fraction)))
    stride = (high - low) / count
    width = max(1, round(stride * fraction))
    windows = Q()
    for i in range(count):
        start = low + math.floor(i * stride)
        windows |= Q(**{f"{field_name}__gte": start, f"{field_name}__lt": start + width})
    return windows


def _data_version() -> str:
    """What the cached rules depend on: the latest analytics run. Rules describe years of buying and move slowly;
    recounting them after every sale would cost more than it could change (the cache also expires them)."""
    from . import selectors

    run = selectors.latest_run()
    return str(run.pk if run else 0)


CUSTOMER_SAMPLE = 50_000  # customers whose baskets make the next-best rules; plenty for catalogues of hundreds


def customer_associations(*, max_baskets: int = CUSTOMER_SAMPLE) -> Associations:
    """What customers buy over their whole history across the group (customer baskets), counted once per data
    version and kept in the cache: the next-best products of the 360° page read it."""
    key = f"dangol:analytics:assoc:customer:{max_baskets}:{_data_version()}"
    found = cache.get(key)
    if found is None:
        found = basket_counts(basket=BASKET_CUSTOMER, max_baskets=max_baskets)
        cache.set(key, found, CACHE_SECONDS)
    return found


# --- next-best products ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class NextBest:
    product: Product
    score: float  # 0..1
    because_of: Product | None  # the bought product with the strongest rule to this one
    confidence: float
    lift: float


def _rule_matrices(assoc: Associations, *, min_count: int, min_support: float):
    """Product index, and P×P matrices of confidence and lift of the rules with lift > 1 (zero elsewhere)."""
    products = np.array(sorted(assoc.item_counts), dtype=np.int64)
    index = {int(p): i for i, p in enumerate(products)}
    size = len(products)
    confidence = np.zeros((size, size))
    lift = np.zeros((size, size))
    for rule in assoc.rules(min_count=min_count, min_support=min_support, min_lift=1.0 + 1e-9):
        i, j = index[rule.antecedent], index[rule.consequent]
        confidence[i, j] = rule.confidence
        lift[i, j] = rule.lift
    return products, index, confidence, lift


BOUGHT_CHUNK = 30_000  # ids per query: under SQLite's limit of bound parameters, and few scans of the lines


def _bought_pairs(customer_ids) -> tuple[np.ndarray, np.ndarray]:
    """(customer id, product id) of every product the customers bought, as two arrays. A queryset of customers is
    read in one query (a semi-join); a list of ids in chunks."""
    if isinstance(customer_ids, QuerySet):
        chunks = [customer_ids.values("pk")]
    else:
        chunks = [list(customer_ids[i:i + BOUGHT_CHUNK]) for i in range(0, len(customer_ids), BOUGHT_CHUNK)]
    customers, products = [], []
    for chunk in chunks:
        rows = counted_lines().filter(order__customer_id__in=chunk) \
            .values_list("order__customer_id", "product_id").distinct()
        if rows:
            c, p = zip(*rows)
            customers.extend(c)
            products.extend(p)
    return np.asarray(customers, dtype=np.int64), np.asarray(products, dtype=np.int64)


def next_best_scores(*, customer_ids: Sequence[int] | QuerySet, allowed_product_ids: Iterable[int] | None = None, limit: int = 3,
                     associations: Associations | None = None, min_count: int = 3, min_support: float = 0.001):
    """Next-best products of many customers at once, set-based: returns (customer ids, product ids [n × limit],
    scores [n × limit]); an empty slot has product id 0 and score 0. Bought products are never proposed. Give a
    queryset of customers (a segment) to read their purchases in one query."""
    from scipy import sparse

    assoc = associations if associations is not None else customer_associations()
    source = customer_ids
    if isinstance(customer_ids, QuerySet):
        customer_ids = customer_ids.order_by().values_list("pk", flat=True)
    ids = np.unique(np.fromiter(customer_ids, dtype=np.int64))
    out_products = np.zeros((len(ids), limit), dtype=np.int64)
    out_scores = np.zeros((len(ids), limit))
    if not len(ids) or not assoc.item_counts or limit < 1:
        return ids, out_products, out_scores
    products, index, confidence, _lift = _rule_matrices(assoc, min_count=min_count, min_support=min_support)
    log_miss = np.log1p(-np.clip(confidence, 0.0, 1.0 - 1e-9))
    allowed = np.ones(len(products), dtype=bool)
    if allowed_product_ids is not None:
        allowed = np.isin(products, np.fromiter(allowed_product_ids, dtype=np.int64))
    bought_c, bought_p = _bought_pairs(source if isinstance(source, QuerySet) else ids.tolist())
    known = np.isin(bought_p, products)
    rows = np.searchsorted(ids, bought_c[known])
    cols = np.searchsorted(products, bought_p[known])
    bought = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(ids), len(products)))
    bought.data[:] = 1.0  # a product bought in many orders counts once
    for start in range(0, len(ids), 20_000):
        block = bought[start:start + 20_000]
        scores = 1.0 - np.exp(np.asarray((block @ log_miss)))
        scores[block.toarray() > 0] = 0.0
        scores[:, ~allowed] = 0.0
        k = min(limit, len(products))
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        top_scores = np.take_along_axis(scores, top, axis=1)
        out_products[start:start + block.shape[0], :k] = np.where(top_scores > 0, products[top], 0)
        out_scores[start:start + block.shape[0], :k] = np.where(top_scores > 0, top_scores, 0.0)
    return ids, out_products, out_scores


def next_best_products(*, customer: Customer, allowed_product_ids: Iterable[int] | None = None, limit: int = 3,
                       associations: Associations | None = None, min_count: int = 3,
                       min_support: float = 0.001) -> list[NextBest]:
    """A customer's next-best products with the purchase that suggests each (for the 360° page)."""
    assoc = associations if associations is not None else customer_associations()
    allowed = None
    if allowed_product_ids is not None:
        allowed = set(Product.objects.filter(pk__in=list(allowed_product_ids), is_active=True).values_list("pk", flat=True))
    else:
        allowed = set(Product.objects.filter(is_active=True).values_list("pk", flat=True))
    _ids, top_products, top_scores = next_best_scores(customer_ids=[customer.pk], allowed_product_ids=allowed,
                                                      limit=limit, associations=assoc, min_count=min_count,
                                                      min_support=min_support)
    picked = [(int(p), float(s)) for p, s in zip(top_products[0], top_scores[0]) if p]
    if not picked:
        return []
    products, index, confidence, lift = _rule_matrices(assoc, min_count=min_count, min_support=min_support)
    bought = [index[p] for p in counted_lines().filter(order__customer_id=customer.pk)
              .values_list("product_id", flat=True).distinct() if p in index]
    names = Product.objects.select_related("unit", "category").in_bulk(
        [p for p, _s in picked] + [int(products[i]) for i in bought])
    out = []
    for product_id, score in picked:
        j = index[product_id]
        best = max(bought, key=lambda i: (confidence[i, j], lift[i, j]), default=None)
        out.append(NextBest(product=names[product_id], score=score,
                            because_of=names.get(int(products[best])) if best is not None else None,
                            confidence=float(confidence[best, j]) if best is not None else 0.0,
                            lift=float(lift[best, j]) if best is not None else 0.0))
    return out


# --- up-sell --------------------------------------------------------------------------------------------------------

def upsell_ladder(products: QuerySet[Product] | None = None) -> dict[int, Product]:
    """Product id -> the next active product up in its category: the cheapest strictly dearer one (ties by id).
    Products of equal price share a rung."""
    qs = (products if products is not None else Product.objects.all()).filter(is_active=True)
    ladder: dict[int, Product] = {}
    by_category: dict[int, list[Product]] = {}
    for product in qs.order_by("category_id", "price", "id").select_related("unit", "category"):
        by_category.setdefault(product.category_id, []).append(product)
    for rungs in by_category.values():
        prices = [p.price for p in rungs]
        for product in rungs:
            above = bisect.bisect_right(prices, product.price)
            if above < len(rungs):
                ladder[product.pk] = rungs[above]
    return ladder


@dataclass(frozen=True)
class Upsell:
    bought: Product  # the dearest product bought in the category
    offer: Product  # the next rung up


def upsell_for(*, customer: Customer, allowed_unit_ids: Iterable[int] | None = None) -> list[Upsell]:
    """Per category the customer bought in (in the allowed units), the next product up from the dearest one they
    bought (a product no longer sold is still a rung to step up from); nothing where they bought the top rung."""
    lines = counted_lines().filter(order__customer_id=customer.pk)
    if allowed_unit_ids is not None:
        lines = lines.filter(product__unit_id__in=list(allowed_unit_ids))
    bought_ids = set(lines.values_list("product_id", flat=True).distinct())
    if not bought_ids:
        return []
    top: dict[int, Product] = {}
    for product in Product.objects.filter(pk__in=bought_ids).select_related("unit", "category"):
        current = top.get(product.category_id)
        if current is None or (product.price, product.pk) > (current.price, current.pk):
            top[product.category_id] = product
    active: dict[int, list[Product]] = {}
    for product in (Product.objects.filter(category_id__in=list(top), is_active=True)
                    .order_by("category_id", "price", "id").select_related("unit", "category")):
        active.setdefault(product.category_id, []).append(product)
    out = []
    for product in sorted(top.values(), key=lambda p: (p.unit_id, p.category.name, p.category_id)):
        rungs = active.get(product.category_id, [])
        above = bisect.bisect_right([p.price for p in rungs], product.price)
        if above < len(rungs) and rungs[above].pk not in bought_ids:
            out.append(Upsell(bought=product, offer=rungs[above]))
    return out


def upsell_offers(*, customer_ids: QuerySet | Sequence[int], allowed_unit_ids: Iterable[int] | None = None) -> list[dict]:
    """Up-sell of many customers in one query: per customer and category bought, the dearest list price bought and
    the next active product up (a correlated subquery on the ladder). Pass tens of thousands of ids at a time."""
    lines = counted_lines().filter(order__customer_id__in=customer_ids)
    if allowed_unit_ids is not None:
        lines = lines.filter(product__unit_id__in=list(allowed_unit_ids))
    grouped = (lines.values(customer=F("order__customer_id"), category=F("product__category_id"))
               .annotate(top_price=Max("product__price")))
    inner, params = grouped.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"""
            SELECT customer, category, top_price, offer_id FROM (
                SELECT g.customer, g.category, g.top_price,
                       (SELECT p.id FROM sales_product p WHERE p.category_id = g.category AND p.is_active = %s
                        AND p.price > g.top_price ORDER BY p.price, p.id LIMIT 1) AS offer_id
                FROM ({inner}) g) offers
            WHERE offer_id IS NOT NULL ORDER BY customer, category""", [True, *params])
        return [{"customer_id": c, "category_id": k, "top_price": t, "offer_id": o} for c, k, t, o in cursor.fetchall()]


# --- lookalikes -----------------------------------------------------------------------------------------------------

TOP_SHARE = 0.10  # the top decile of 12-month CLV are "our best customers"
ESTABLISHED_DAYS = 90  # customers this long past their first purchase have shown their value
NEW_DAYS = 90  # prospects, and customers whose first purchase is this recent, are scored
EARLY_DAYS = 30  # the spend of a customer's first month is an early signal
MAX_TRAINING = 30_000
MAX_CANDIDATES = 50_000
AGE_BANDS = ((0, 30, "<30"), (30, 40, "30-39"), (40, 50, "40-49"), (50, 60, "50-59"), (60, 200, "60+"))


@dataclass(frozen=True)
class Lookalike:
    customer_id: int
    score: float  # 0..1: how much the customer looks like the top-value customers
    reasons: list[str]  # the features that raised the score most, in words


@dataclass
class LookalikeResult:
    results: list[Lookalike]
    seeds: int  # top-value customers the model learned from
    trained_on: int
    candidates: int
    threshold_clv: int  # the 12-month CLV from which a customer counts as top-value
    features: list[tuple[str, float]]  # (feature, coefficient) most positive first
    traits: list[tuple[str, float, float]] = field(default_factory=list)  # (trait, share of the best, of the rest)


def _early_features(qs: QuerySet[Customer], as_of: dt.date) -> list[tuple]:
    """Per customer what is known early, in one query of correlated subqueries (indexes on customer + date)."""
    first_sale = Order.objects.filter(customer=OuterRef("pk"), kind=OrderKind.SALE, needs_review=False).order_by("ordered_at", "id")
    early = (Order.objects.filter(customer=OuterRef("pk"), kind=OrderKind.SALE, needs_review=False,
                                  ordered_at__lt=OuterRef("first_at") + dt.timedelta(days=EARLY_DAYS))
             .order_by().values("customer").annotate(s=Sum("total")).values("s"))
    return list(qs.annotate(
        birth_year=Subquery(Anniversary.objects.filter(customer=OuterRef("pk"), kind=AnniversaryKind.BIRTHDAY,
                                                       year__isnull=False).values("year")[:1]),
        sido=Subquery(Address.objects.filter(customer=OuterRef("pk"), is_primary=True).values("sido")[:1]),
        sigungu=Subquery(Address.objects.filter(customer=OuterRef("pk"), is_primary=True).values("sigungu")[:1]),
        has_email=Exists(ContactPoint.objects.filter(customer=OuterRef("pk"), kind=ContactKind.EMAIL)),
        marketing=Exists(Consent.objects.filter(customer=OuterRef("pk"), purpose=Purpose.MARKETING, granted=True)),
        first_at=Subquery(first_sale.values("ordered_at")[:1]),
        first_total=Subquery(first_sale.values("total")[:1]),
        first_channel=Subquery(first_sale.values("channel")[:1]),
        first_unit=Subquery(first_sale.values("unit_id")[:1]),
    ).annotate(early_spend=Subquery(early)).order_by("pk").values_list(
        "pk", "gender", "home_unit_id", "birth_year", "sido", "sigungu", "has_email", "marketing",
        "first_at", "first_total", "first_channel", "first_unit", "early_spend"))


class _Encoder:
    """Turns early-feature rows into a numeric matrix with a readable name per column."""

    def __init__(self, rows: list[tuple], as_of: dt.date, unit_names: dict[int, str], top_regions: int = 12):
        self.as_of = as_of
        self.unit_names = unit_names
        sido = _most_common([r[4] for r in rows if r[4]], top_regions)
        sigungu = _most_common([r[5] for r in rows if r[5]], top_regions)
        units = sorted({r[2] for r in rows if r[2]} | {r[11] for r in rows if r[11]})
        self.columns: list[tuple[str, object]] = (
            [("gender", Gender.FEMALE), ("gender", Gender.MALE)]
            + [("age", label) for _lo, _hi, label in AGE_BANDS]
            + [("sido", s) for s in sido] + [("sigungu", s) for s in sigungu]
            + [("home_unit", u) for u in units]
            + [("email", True), ("marketing", True), ("bought", True), ("first_total", None), ("early_spend", None)]
            + [("first_channel", c) for c in SalesChannel.values] + [("first_unit", u) for u in units])
        self.position = {c: i for i, c in enumerate(self.columns)}

    def matrix(self, rows: list[tuple]) -> np.ndarray:
        x = np.zeros((len(rows), len(self.columns)))
        if not rows:
            return x
        (_pk, gender, home, year, sido, sigungu, email, marketing, first_at, first_total, channel, first_unit,
         early) = (np.asarray(column, dtype=object) for column in zip(*rows))
        categorical = {"gender": gender, "sido": sido, "sigungu": sigungu, "home_unit": home,
                       "first_channel": channel, "first_unit": first_unit}
        age = self.as_of.year - _numbers(year)
        bought = np.not_equal(first_at, None)
        for j, (kind, value) in enumerate(self.columns):
            if kind in categorical:
                x[:, j] = categorical[kind] == value
            elif kind == "age":
                lo, hi = next((lo, hi) for lo, hi, label in AGE_BANDS if label == value)
                x[:, j] = np.not_equal(year, None) & (age >= lo) & (age < hi)
            elif kind == "email":
                x[:, j] = email.astype(bool)
            elif kind == "marketing":
                x[:, j] = marketing.astype(bool)
            elif kind == "bought":
                x[:, j] = bought
            elif kind == "first_total":
                x[:, j] = np.log1p(np.clip(_numbers(first_total), 0, None))
            elif kind == "early_spend":
                x[:, j] = np.log1p(np.clip(_numbers(early), 0, None))
        return x

    def label(self, column: tuple[str, object]) -> str:
        kind, value = column
        if kind == "gender":
            return _("woman") if value == Gender.FEMALE else _("man")
        if kind == "age":
            return _("age %(band)s") % {"band": value}
        if kind in ("sido", "sigungu"):
            return _("lives in %(region)s") % {"region": value}
        if kind == "home_unit":
            return _("registered at %(unit)s") % {"unit": self.unit_names.get(value, value)}
        if kind == "first_unit":
            return _("first bought at %(unit)s") % {"unit": self.unit_names.get(value, value)}
        if kind == "first_channel":
            return _("first bought via %(channel)s") % {"channel": SalesChannel(value).label}
        return {"email": _("gave an email address"), "marketing": _("accepts marketing messages"),
                "bought": _("has bought"), "first_total": _("large first purchase"),
                "early_spend": _("spent much in the first 30 days")}[kind]


def _numbers(column: np.ndarray) -> np.ndarray:
    """An object column of numbers and None as floats, None as 0."""
    return np.where(np.equal(column, None), 0, column).astype(float)


def _most_common(values: list, limit: int) -> list:
    counts: dict = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return [v for v, _n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]


def _sample(qs: QuerySet, total: int, limit: int) -> QuerySet:
    if total <= limit:
        return qs
    step = math.ceil(total / limit)
    return qs.annotate(sample_bucket=Mod(F("pk"), Value(step), output_field=IntegerField())).filter(sample_bucket=0)


def lookalikes(*, customers: QuerySet[Customer], as_of: dt.date | None = None, limit: int = 50,
               reasons: int = 3) -> LookalikeResult:
    """Score the prospects and new customers among ``customers`` (already scoped by the caller) by how much they
    look like the top-value customers among them; best first, each with the features that raised the score."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from dangol.core.models import BusinessUnit

    if limit < 1 or reasons < 0:
        raise ValidationError(_("Ask for at least one result."))
    as_of = as_of or timezone.localdate()
    live = customers.filter(merged_into__isnull=True)
    established = live.filter(metrics__orders__gte=1,
                              metrics__first_order_at__lte=_aware(as_of - dt.timedelta(days=ESTABLISHED_DAYS)))
    n_established = established.count()
    empty = LookalikeResult(results=[], seeds=0, trained_on=0, candidates=0, threshold_clv=0, features=[])
    if n_established < 10:
        return empty
    rank = max(0, math.ceil(n_established * TOP_SHARE) - 1)
    threshold = established.order_by(F("metrics__clv_12m").desc(nulls_last=True), "pk") \
        .values_list("metrics__clv_12m", flat=True)[rank:rank + 1]
    threshold_value = float(next(iter(threshold), 0) or 0)
    candidates = live.filter(Q(metrics__isnull=True) | Q(metrics__orders=0)
                             | Q(metrics__first_order_at__gte=_aware(as_of - dt.timedelta(days=NEW_DAYS))))
    candidates = candidates.order_by("-joined_at", "-pk")[:MAX_CANDIDATES]
    training_qs = _sample(established, n_established, MAX_TRAINING)
    training = list(training_qs.annotate(value=Coalesce("metrics__clv_12m", Value(0))).order_by("pk")
                    .values_list("pk", "value"))
    labels = np.array([1 if (v or 0) >= threshold_value and threshold_value > 0 else 0 for _pk, v in training])
    seeds = int(labels.sum())
    if seeds < 3 or seeds == len(labels):
        return empty
    train_rows = _early_features(Customer.objects.filter(pk__in=[pk for pk, _v in training]), as_of)
    candidate_ids = list(candidates.values_list("pk", flat=True))
    cand_rows = _early_features(Customer.objects.filter(pk__in=candidate_ids), as_of) if candidate_ids else []
    unit_names = dict(BusinessUnit.objects.values_list("pk", "name"))
    encoder = _Encoder(train_rows, as_of, unit_names)
    x_train = encoder.matrix(train_rows)
    scaler = StandardScaler().fit(x_train)
    model = LogisticRegression(C=0.5, class_weight="balanced", max_iter=2000).fit(scaler.transform(x_train), labels)
    coef = model.coef_[0]
    features = sorted(((encoder.label(c), float(w)) for c, w in zip(encoder.columns, coef)), key=lambda t: -t[1])
    results: list[Lookalike] = []
    if cand_rows:
        x = scaler.transform(encoder.matrix(cand_rows))
        scores = model.predict_proba(x)[:, 1]
        # What each feature adds to the log-odds against the average customer. Only features the customer has (above
        # the average) and that raise the odds are reasons: "not bought at the bakery" is no reason to name.
        contributions = np.where((x > 0) & (coef > 0), x * coef, 0.0)
        order = np.argsort(-scores, kind="stable")[:limit]
        for i in order:
            top = [j for j in np.argsort(-contributions[i], kind="stable")[:reasons] if contributions[i, j] > 0]
            results.append(Lookalike(customer_id=int(cand_rows[i][0]), score=float(scores[i]),
                                     reasons=[encoder.label(encoder.columns[j]) for j in top]))
    return LookalikeResult(results=results, seeds=seeds, trained_on=len(labels), candidates=len(cand_rows),
                           threshold_clv=int(round(threshold_value)), features=features,
                           traits=_traits(encoder, x_train, labels))


def _traits(encoder: "_Encoder", x: np.ndarray, labels: np.ndarray, limit: int = 6) -> list[tuple[str, float, float]]:
    """Features far more common among the best customers than among the rest, one at a time, so that they read
    plainly (the model's coefficients share credit between correlated features). An amount counts as "large" above
    the median of everyone's."""
    flags = x.copy()
    for j, (kind, _v) in enumerate(encoder.columns):
        if kind in ("first_total", "early_spend"):
            flags[:, j] = x[:, j] > np.median(x[:, j])
    best, rest = flags[labels == 1].mean(axis=0), flags[labels == 0].mean(axis=0)
    ratio = (best + 0.01) / (rest + 0.01)
    keep = [j for j in np.argsort(-ratio, kind="stable") if best[j] >= 0.1 and ratio[j] >= 1.1][:limit]
    return [(encoder.label(encoder.columns[j]), float(best[j]), float(rest[j])) for j in keep]


def _aware(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))
