"""The refresh on a generated business (2,000 customers, two years to 2025-06-30): every customer's figures against
an independent ORM computation, the churn model's time split, and one fingerprint of the whole snapshot that both
SQLite and PostgreSQL must reproduce (the suite runs on both)."""
from __future__ import annotations

import datetime as dt
import hashlib
from zoneinfo import ZoneInfo

import pytest
from django.db.models import Count, Exists, F, Max, Min, OuterRef, Sum
from django.db.models.functions import TruncDate

from dangol.analytics import services
from dangol.analytics.facts import end_of_day, day_number
from dangol.analytics.models import CustomerMetrics
from dangol.core.audit import Actor
from dangol.customers.models import Customer
from dangol.demo.generator import generate
from dangol.sales.models import Order, OrderLine, Product
from dangol.sales.services import LineInput, record_order

pytestmark = pytest.mark.django_db

SEOUL = ZoneInfo("Asia/Seoul")
AS_OF = dt.date(2025, 6, 30)
END = dt.datetime(2025, 6, 30, 20, 0, tzinfo=SEOUL)
ACTOR = Actor.system("test")
UNTIL = end_of_day(day_number(AS_OF))
# The snapshot's fingerprint (see ``fingerprint``) and a few model figures: the same on SQLite and PostgreSQL. They
# change when the generator or the metrics change on purpose; then both databases must agree on the new values.
FINGERPRINT = "27620b1bf836eb90"
EXPECTED_MODELS = (0.391835, 2.111538, 0.78610954)  # BG/NBD r, Gamma-Gamma p, churn AUC


@pytest.fixture
def generated(db):
    generate(customers=2000, seed=42, end=END)
    return services.refresh_metrics(actor=ACTOR, as_of=AS_OF)


def counted_sales():
    refunded = Order.objects.filter(refund_of=OuterRef("pk"), kind="refund", needs_review=False, ordered_at__lt=UNTIL)
    return Order.objects.filter(kind="sale", needs_review=False, customer__isnull=False,
                                ordered_at__lt=UNTIL).exclude(Exists(refunded))


def test_every_customers_figures_match_an_independent_orm_computation(generated):
    # The generator refunds whole sales only: a refunded sale is cancelled.
    assert not Order.objects.filter(kind="refund").exclude(total=-F("refund_of__total")).exists()
    expected = {row["customer_id"]: row for row in counted_sales().values("customer_id").annotate(
        orders=Count("id"), monetary=Sum("total"), first=Min("ordered_at"), last=Max("ordered_at"))}
    purchase_days = dict(counted_sales().annotate(day=TruncDate("ordered_at", tzinfo=SEOUL)).values("customer_id")
                         .annotate(days=Count("day", distinct=True)).values_list("customer_id", "days"))
    money = {row["order__customer_id"]: row for row in OrderLine.objects.filter(
        order__customer__isnull=False, order__needs_review=False, order__ordered_at__lt=UNTIL,
    ).values("order__customer_id").annotate(revenue=Sum("line_total"), cost=Sum(F("quantity") * F("unit_cost")))}
    rows = {m.customer_id: m for m in CustomerMetrics.objects.all()}
    assert generated.customers == len(rows) == Customer.objects.filter(merged_into__isnull=True).count() == 2000
    assert len(expected) > 1500
    for customer_id, metrics in rows.items():
        want = expected.get(customer_id)
        if want is None:
            assert (metrics.orders, metrics.monetary_total, metrics.r_score, metrics.rfm_segment) == (0, 0, None, "")
            continue
        assert (metrics.orders, metrics.monetary_total) == (want["orders"], want["monetary"]), customer_id
        assert (metrics.first_order_at, metrics.last_order_at) == (want["first"], want["last"]), customer_id
        assert metrics.frequency == purchase_days[customer_id] - 1, customer_id
        assert metrics.recency_days == (AS_OF - want["last"].astimezone(SEOUL).date()).days
        assert metrics.monetary_avg == (2 * want["monetary"] + want["orders"]) // (2 * want["orders"])  # half up
        assert (metrics.revenue, metrics.cost) == (money[customer_id]["revenue"], money[customer_id]["cost"])
        assert metrics.profit == metrics.revenue - metrics.cost
        assert metrics.wallet_share == metrics.units_used / 4
        assert 1 <= metrics.r_score <= 5 and metrics.rfm_segment
        assert 0 <= metrics.p_alive <= 1 and 0 <= metrics.churn_risk <= 1
        assert 0 <= metrics.expected_purchases_90 <= metrics.expected_purchases_365
        assert metrics.clv_12m >= 0 and metrics.expected_avg_spend > 0
    # Quintiles: about a fifth of the buyers in each R score (days tie, so not exactly).
    buyers = CustomerMetrics.objects.filter(orders__gt=0)
    for score in range(1, 6):
        assert 0.1 < buyers.filter(r_score=score).count() / buyers.count() < 0.3, score
    assert set(buyers.values_list("rfm_segment", flat=True)) >= {"champions", "loyal", "lost", "hibernating", "new"}
    assert set(CustomerMetrics.objects.values_list("suggested_stage", flat=True)) == {"prospect", "customer", "regular"}


def test_the_models_are_fitted_and_churn_is_validated_on_a_later_period(generated):
    run = generated
    assert set(run.bgnbd) >= {"r", "alpha", "a", "b", "ll"} and set(run.gamma_gamma) >= {"p", "q", "gamma", "ll"}
    assert run.details["churn_horizon_days"] == 180
    train_day, test_day = AS_OF - dt.timedelta(days=360), AS_OF - dt.timedelta(days=180)
    assert run.details["churn_cutoffs"] == [str(train_day), str(test_day)]

    def buyers_by(day):  # customers with a purchase that still counted at the end of that day
        until = end_of_day(day_number(day))
        refunded = Order.objects.filter(refund_of=OuterRef("pk"), kind="refund", ordered_at__lt=until)
        return (Order.objects.filter(kind="sale", needs_review=False, customer__isnull=False, ordered_at__lt=until)
                .exclude(Exists(refunded)).values("customer_id").distinct().count())

    assert run.details["churn_train_rows"] == buyers_by(train_day)
    assert run.details["churn_test_rows"] == buyers_by(test_day)
    # The generator's lapsed and one-time customers make churn predictable; the BG/NBD baseline, which calls every
    # one-time buyer certainly alive, ranks them worse.
    assert run.churn_auc > 0.7 and run.baseline_auc is not None and run.churn_auc > run.baseline_auc
    assert CustomerMetrics.objects.filter(orders__gt=0, churn_risk__isnull=True).count() == 0


def test_purchases_in_the_held_out_period_do_not_change_the_trained_model(generated):
    risk_before = dict(CustomerMetrics.objects.values_list("customer_id", "churn_risk"))
    product = Product.objects.filter(unit__code="bakery", is_active=True).first()
    touched = list(Customer.objects.filter(metrics__orders__gt=0).order_by("pk").values_list("pk", flat=True)[:40])
    for customer in Customer.objects.filter(pk__in=touched):  # a purchase 100 days ago: inside (D − 180, D]
        record_order(actor=ACTOR, unit=product.unit, customer=customer, at=END - dt.timedelta(days=100),
                     lines=[LineInput(product_id=product.pk, quantity=1)])
    again = services.refresh_metrics(actor=ACTOR, as_of=AS_OF)
    risk_after = dict(CustomerMetrics.objects.values_list("customer_id", "churn_risk"))
    untouched = [c for c in risk_before if c not in touched and risk_before[c] is not None]
    assert untouched and all(risk_after[c] == risk_before[c] for c in untouched)  # the same model
    assert again.churn_auc != generated.churn_auc  # evaluated on labels that changed


def fingerprint() -> str:
    def significant(value):
        return "-" if value is None else f"{value:.5g}"

    digest = hashlib.sha256()
    for row in CustomerMetrics.objects.order_by("customer_id").values_list(
            "orders", "frequency", "recency_days", "tenure_days", "monetary_total", "monetary_avg", "r_score", "f_score",
            "m_score", "rfm_segment", "revenue", "cost", "profit", "units_used", "suggested_stage", "first_order_at",
            "last_order_at", "p_alive", "expected_purchases_90", "expected_purchases_365", "expected_avg_spend",
            "churn_risk", "clv_12m"):
        exact, floats, value = row[:17], row[17:22], row[22]
        digest.update(repr((exact, [significant(v) for v in floats],
                            None if value is None else round(value, -2))).encode())
    return digest.hexdigest()[:16]


def test_sqlite_and_postgresql_give_the_same_snapshot(generated):
    run = generated
    assert (round(run.bgnbd["r"], 6), round(run.gamma_gamma["p"], 6), round(run.churn_auc, 9)) == EXPECTED_MODELS
    assert fingerprint() == FINGERPRINT


