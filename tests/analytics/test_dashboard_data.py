"""The dashboard's numbers, checked by hand on a small business.

The period is 2025-04-01 – 2025-06-30 (91 days); the previous period 2024-12-31 – 2025-03-31.

    kim   seoul-hotel since 2024-11-01: stays 2025-01-10 (250,000), 04-05 (250,000), 05-20 (2 nights, 500,000);
          bakery 04-07 croissant (4,500)
    lee   bakery since 2025-02-01: 04-10 croissant + baguette (9,500); 06-01 baguette (5,000) refunded 06-02
    park  bakery since 2025-04-15: 04-20 croissant (4,500); seoul-hotel 06-10 (250,000); a 25,000,000 stay
          on 05-01 waiting for review (left out of everything)
    choi  seoul-hotel since 2024-12-01: 02-14 (250,000)
    jung  bakery since 2025-05-01, a prospect (never bought)
    walk-ins at the bakery (no customer): 05-02 and 05-03 croissant + baguette, 05-05 croissant, 05-06 and
          05-07 a cake (30,000)
"""
from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from dangol.analytics import dashboard as data
from dangol.analytics.models import CustomerMetrics, RfmSegment
from dangol.core.audit import Actor
from dangol.customers.models import Customer, Membership
from dangol.sales.models import Order, Product
from dangol.sales.services import LineInput, record_order, record_refund

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_cache(settings):
    settings.DANGOL_DASHBOARD_CACHE_SECONDS = 0  # every request computes: the figures follow each test's data

ACTOR = Actor.system("test")
SEOUL = data.SEOUL
START, END = dt.date(2025, 4, 1), dt.date(2025, 6, 30)


def at(day: str, hour: int = 12) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour), tzinfo=SEOUL)


def sell(unit, customer, day, *lines):
    return record_order(actor=ACTOR, unit=unit, customer=customer, at=at(day),
                        lines=[LineInput(product_id=p.pk, quantity=q) for p, q in lines])


def joined(customer, day: str) -> None:
    Customer.objects.filter(pk=customer.pk).update(joined_at=at(day, 9))
    Membership.objects.filter(customer=customer, source="registered").update(joined_at=at(day, 9))


def metrics(customer, *, orders, r, f, m, clv, churn, monetary=0):
    segment = "" if r is None else data.SEGMENT_GRID[r - 1][f - 1].value
    return CustomerMetrics.objects.create(
        customer=customer, as_of=END, orders=orders, r_score=r, f_score=f, m_score=m, rfm_segment=segment,
        clv_12m=clv, churn_risk=churn, monetary_total=monetary, frequency=max(orders - 1, 0))


@pytest.fixture
def business(units, products, make_customer):
    hotel, bakery = units["seoul-hotel"], units["bakery"]
    room, croissant, baguette = products["deluxe"], products["croissant"], products["baguette"]
    kim = make_customer("seoul-hotel", name="김민준")
    lee = make_customer("bakery", name="이서연")
    park = make_customer("bakery", name="박지호")
    choi = make_customer("seoul-hotel", name="최유나")
    jung = make_customer("bakery", name="정하은")
    for person, day in ((kim, "2024-11-01"), (lee, "2025-02-01"), (park, "2025-04-15"), (choi, "2024-12-01"),
                        (jung, "2025-05-01")):
        joined(person, day)
    sell(hotel, kim, "2025-01-10", (room, 1))
    sell(hotel, kim, "2025-04-05", (room, 1))
    sell(hotel, kim, "2025-05-20", (room, 2))
    sell(bakery, kim, "2025-04-07", (croissant, 1))
    sell(bakery, lee, "2025-04-10", (croissant, 1), (baguette, 1))
    refunded = sell(bakery, lee, "2025-06-01", (baguette, 1))
    record_refund(actor=ACTOR, order=refunded, at=at("2025-06-02"))
    sell(bakery, park, "2025-04-20", (croissant, 1))
    sell(hotel, park, "2025-06-10", (room, 1))
    flagged = record_order(actor=ACTOR, unit=hotel, customer=park, at=at("2025-05-01"),
                           lines=[LineInput(product_id=room.pk, quantity=1, unit_price=25_000_000)])
    Order.objects.filter(pk=flagged.pk).update(needs_review=True)
    sell(hotel, choi, "2025-02-14", (room, 1))
    sell(bakery, None, "2025-05-02", (croissant, 1), (baguette, 1))
    sell(bakery, None, "2025-05-03", (croissant, 1), (baguette, 1))
    sell(bakery, None, "2025-05-05", (croissant, 1))
    cake = Product.objects.create(unit=bakery, category=croissant.category, sku="B-CAKE", name="딸기 케이크", price=30_000)
    sell(bakery, None, "2025-05-06", (cake, 1))
    sell(bakery, None, "2025-05-07", (cake, 1))
    metrics(kim, orders=4, r=5, f=4, m=5, clv=2_000_000, churn=0.1, monetary=1_004_500)
    metrics(lee, orders=1, r=4, f=1, m=2, clv=30_000, churn=0.6, monetary=9_500)
    metrics(park, orders=2, r=5, f=2, m=4, clv=600_000, churn=0.3, monetary=254_500)
    metrics(choi, orders=1, r=1, f=1, m=4, clv=0, churn=0.9, monetary=250_000)
    metrics(jung, orders=0, r=None, f=None, m=None, clv=None, churn=None)
    return {"kim": kim, "lee": lee, "park": park, "choi": choi, "jung": jung}


def period(user, unit=""):
    return data.make_filter(user=user, unit=unit, period="custom", start=START, end=END)


# --- the filter -----------------------------------------------------------------------------------------------------

def test_the_filter_knows_its_period_and_the_previous_one(alice):
    f = period(alice)
    assert f.days == 91 and f.previous_start == dt.date(2024, 12, 31)
    assert f.start_at == dt.datetime(2025, 4, 1, tzinfo=SEOUL) and f.end_at == dt.datetime(2025, 7, 1, tzinfo=SEOUL)
    assert f.unit_ids is None  # the whole group
    today = dt.date(2025, 6, 30)
    assert data.make_filter(user=alice, period="30d", today=today).start == dt.date(2025, 6, 1)
    assert data.make_filter(user=alice, period="ytd", today=today).start == dt.date(2025, 1, 1)
    assert data.make_filter(user=alice, today=today).start == dt.date(2024, 7, 1)  # 12 months by default


def test_the_filter_refuses_bad_input_and_other_units(alice, mina, units):
    with pytest.raises(ValidationError) as e:
        data.make_filter(user=mina, unit="bakery")
    assert "unit" in e.value.message_dict
    with pytest.raises(ValidationError) as e:
        data.make_filter(user=alice, period="forever")
    assert "period" in e.value.message_dict
    for start, end, field in (("2025-05-01", "2025-04-01", "end"), ("2025-13-01", "2025-04-01", "start"),
                              ("2015-01-01", "2025-04-01", "start"), ("2025-01-01", "2999-01-01", "end")):
        with pytest.raises(ValidationError) as e:
            data.make_filter(user=alice, period="custom", start=start, end=end)
        assert field in e.value.message_dict
    mine = data.make_filter(user=mina)
    assert mine.unit_ids == (units["seoul-hotel"].pk,) and mine.scope_unit_ids == (units["seoul-hotel"].pk,)
    assert data.make_filter(user=alice, unit="bakery").unit_ids == (units["bakery"].pk,)


# --- KPIs -----------------------------------------------------------------------------------------------------------

def test_group_kpis_are_hand_checked(alice, business):
    k = data.kpis(period(alice))
    assert (k.get("customers").value, k.get("customers").previous) == (5, 3)
    assert (k.get("active").value, k.get("active").previous) == (3, 2)  # kim, lee, park | kim, choi
    # kim bought three times, park twice; lee's second sale was refunded, so once.
    assert k.get("repeat_rate").value == pytest.approx(2 / 3) and k.get("repeat_rate").previous == 0
    # 750,000 + 4,500 (kim) + 9,500 + 5,000 − 5,000 (lee) + 254,500 (park) + 83,500 walk-ins; the flagged stay is out.
    assert k.get("revenue").value == 1_102_000 and k.get("revenue").previous == 500_000
    assert k.get("revenue").change_ratio == pytest.approx(1.204)
    # Pareto: the top fifth of 3 buyers is 1 buyer, kim: 754,500 of 1,018,500; before, 250,000 of 500,000.
    assert k.get("top20_share").value == pytest.approx(754_500 / 1_018_500)
    assert k.get("top20_share").previous == pytest.approx(0.5)
    assert k.get("avg_clv").value == round((2_000_000 + 30_000 + 600_000 + 0) / 4)
    assert k.get("churn_risk").value == 2  # lee 0.6, choi 0.9
    assert k.as_of == END and k.grain == "month"
    assert [(p.start, p.revenue, p.active) for p in k.series] == [
        (dt.date(2025, 4, 1), 250_000 + 4_500 + 9_500 + 4_500, 3), (dt.date(2025, 5, 1), 500_000 + 83_500, 1),
        (dt.date(2025, 6, 1), 5_000 - 5_000 + 250_000, 2)]


def test_a_manager_sees_only_her_units_figures(mina, business):
    k = data.kpis(period(mina))
    # Seoul hotel: kim, choi registered; park known since his stay on 06-10.
    assert (k.get("customers").value, k.get("customers").previous) == (3, 2)
    assert (k.get("active").value, k.get("active").previous) == (2, 2)
    assert k.get("revenue").value == 1_000_000 and k.get("revenue").previous == 500_000
    assert k.get("repeat_rate").value == pytest.approx(0.5)
    assert k.get("top20_share").value == pytest.approx(0.75)
    assert k.get("avg_clv").value == round((2_000_000 + 0 + 600_000) / 3)
    assert k.get("churn_risk").value == 1


def test_kpi_trend_directions(alice, business):
    k = data.kpis(period(alice))
    assert k.get("revenue").trend == "up" and k.get("revenue").good is True
    assert k.get("top20_share").trend == "up" and k.get("top20_share").good is False  # more dependence on a few
    assert k.get("avg_clv").trend == "flat" and k.get("avg_clv").change is None  # the snapshot has no history


def test_short_periods_have_a_daily_series(alice, business):
    f = data.make_filter(user=alice, period="custom", start="2025-06-01", end="2025-06-10")
    series = data.kpis(f).series
    assert len(series) == 10 and series[0].revenue == 5_000 and series[1].revenue == -5_000
    assert series[9].revenue == 250_000 and sum(p.revenue for p in series) == 250_000


def test_an_empty_database_gives_zeros_not_errors(alice):
    board = data.dashboard(period(alice))
    assert board.kpis.get("revenue").value == 0 and board.kpis.get("repeat_rate").value is None
    assert board.kpis.get("avg_clv").value is None and board.rfm.customers == 0 and board.clv.customers == 0
    assert all(r.size == 0 for r in board.cohorts.rows) and board.overlap.customers == 0 and board.pairs.rows == []


# --- RFM, CLV, cohorts, overlap, pairs ------------------------------------------------------------------------------

def test_the_rfm_grid_counts_customers_and_the_periods_revenue_per_cell(alice, mina, business):
    grid = data.rfm_grid(period(alice))
    cells = {(c.r, c.f): c for c in grid.cells}
    assert len(grid.cells) == 25 and [c.r for c in grid.rows[0]] == [5] * 5  # R = 5 on top
    assert (cells[5, 4].customers, cells[5, 4].revenue, cells[5, 4].segment) == (1, 754_500, "champions")
    assert (cells[4, 1].customers, cells[4, 1].revenue) == (1, 9_500)
    assert (cells[5, 2].customers, cells[5, 2].revenue) == (1, 254_500)
    assert (cells[1, 1].customers, cells[1, 1].revenue, cells[1, 1].segment) == (1, 0, "lost")
    assert grid.customers == 4  # jung has no scores
    segments = {s.segment: s for s in grid.segments}
    assert segments["champions"].customers == 1 and segments["promising"].customers == 1
    assert len(grid.segments) == len(RfmSegment)
    mine = {(c.r, c.f): c for c in data.rfm_grid(period(mina)).cells}
    assert mine[4, 1].customers == 0  # lee is a bakery customer
    assert mine[5, 4].revenue == 750_000 and mine[5, 2].revenue == 250_000  # hotel sales only


def test_segment_customers_are_scoped(alice, mina, business):
    assert list(data.segment_customers(period(alice), r=5, f_score=4)) == [business["kim"]]
    assert list(data.segment_customers(period(mina), r=4, f_score=1)) == []
    assert list(data.segment_customers(period(alice), segment="promising")) == [business["lee"]]
    lost = data.segment_customers(period(mina), segment="lost")
    assert list(lost) == [business["choi"]] and lost[0].metrics.clv_12m == 0
    for bad in ({"r": 6, "f_score": 1}, {"r": 1}, {"segment": "vip"}, {}):
        with pytest.raises(ValidationError):
            data.segment_customers(period(alice), **bad)


def test_the_clv_histogram(alice, business):
    h = data.clv_histogram(period(alice))
    counts = {(b.low, b.high): (b.customers, b.clv_total) for b in h.bins}
    assert counts[(0, 50_000)] == (2, 30_000)  # lee, choi
    assert counts[(500_000, 1_000_000)] == (1, 600_000)
    assert counts[(2_000_000, 5_000_000)] == (1, 2_000_000)
    assert counts[(10_000_000, None)] == (0, 0)
    assert h.customers == 4 and h.max_customers == 2


def test_cohort_retention_cells(alice, business):
    cohorts = data.cohort_retention(period(alice))
    assert [r.month for r in cohorts.rows] == [dt.date(2025, 4, 1), dt.date(2025, 5, 1), dt.date(2025, 6, 1)]
    april = cohorts.rows[0]
    # lee and park bought first in April (kim and choi earlier); park came back in June, lee's June sale was refunded.
    assert april.size == 2 and april.retained[:4] == [2, 0, 1, None]
    assert april.rates[:3] == [1.0, 0.0, 0.5]
    assert cohorts.rows[1].size == 0 and cohorts.rows[2].retained[0] == 0 and cohorts.rows[2].retained[1] is None


def test_cohorts_of_a_year_show_twelve_months(alice, business):
    f = data.make_filter(user=alice, period="custom", start="2024-06-01", end="2025-06-30")
    cohorts = data.cohort_retention(f)
    assert len(cohorts.rows) == 12 and cohorts.rows[0].month == dt.date(2024, 7, 1)
    january = next(r for r in cohorts.rows if r.month == dt.date(2025, 1, 1))
    assert january.size == 1 and january.retained[:6] == [1, 0, 0, 1, 1, 0]  # kim: Jan, Apr, May


def test_unit_overlap(alice, mina, units, business):
    o = data.unit_overlap(period(alice))
    names = [u.code for u in o.units]
    m = {(a, b): o.matrix[i][j] for i, a in enumerate(names) for j, b in enumerate(names)}
    assert m["seoul-hotel", "seoul-hotel"] == 2 and m["bakery", "bakery"] == 3
    assert m["seoul-hotel", "bakery"] == m["bakery", "seoul-hotel"] == 2  # kim and park
    assert m["restaurant", "restaurant"] == 0
    assert (o.multi_unit, o.customers, o.max_shared) == (2, 3, 2)
    mine = data.unit_overlap(period(mina))
    assert [u.code for u in mine.units] == ["seoul-hotel"] and mine.matrix == [[2]] and mine.multi_unit == 0


def test_top_pairs_of_the_period(alice, mina, products, business):
    pairs = data.top_pairs(period(alice))
    assert len(pairs.rows) == 1
    row = pairs.rows[0]
    assert {row.first.pk, row.second.pk} == {products["croissant"].pk, products["baguette"].pk}
    # 11 orders, 8 of them at the bakery (the pair's own unit, its chance level): croissant in 6, baguette in 3,
    # together in 3 (lee 04-10, walk-ins 05-02 and 05-03).
    assert pairs.baskets == 11 and row.pair.baskets == 8 and row.pair.together == 3
    assert row.pair.lift == pytest.approx(3 * 8 / (6 * 3)) and row.pair.support == pytest.approx(3 / 8)
    assert row.pair.confidence_second_to_first == 1.0  # every baguette came with a croissant
    assert data.top_pairs(period(mina)).rows == []


def test_the_dashboard_runs_a_fixed_number_of_queries(alice, mina, business, make_customer, units, products,
                                                      django_assert_num_queries, django_assert_max_num_queries):
    group, hers = period(alice), period(mina)
    with django_assert_num_queries(QUERIES):
        data.dashboard(group)
    with django_assert_max_num_queries(QUERIES):
        data.dashboard(hers)
    for i in range(5):  # more customers, orders and pairs: not more queries
        someone = make_customer("bakery", name=f"손님{i}")
        sell(units["bakery"], someone, "2025-05-1%d" % i, (products["croissant"], 1), (products["baguette"], 1))
        metrics(someone, orders=1, r=5, f=1, m=1, clv=10_000, churn=0.2)
    with django_assert_num_queries(QUERIES):
        data.dashboard(group)


# a savepoint and its release (PostgreSQL: and the session settings) · KPIs 5 (customers, revenue, buyers, snapshot,
# series) · RFM 2 · cohorts 1 · CLV 1 · overlap 2 (units, pairs) · pairs 3 (baskets, pairs and products, product names)
QUERIES = 16 + (connection.vendor == "postgresql")
