"""Reads of the analytics snapshot, with the user's business-unit scope applied."""
from __future__ import annotations

from django.db.models import QuerySet

from dangol.core.models import User
from dangol.customers.models import Customer
from dangol.customers.selectors import customers_for

from . import rfm, stages
from .models import CustomerMetrics, ModelRun


def latest_run() -> ModelRun | None:
    """The most recent refresh (its fitted models, AUCs and timings), or None before the first one."""
    return ModelRun.objects.order_by("-finished_at", "-id").first()


def metrics_for(customer: Customer) -> CustomerMetrics | None:
    """The customer's row of the snapshot, or None (no refresh since they were added). The caller has already
    checked that the user may see this customer (the 360° page gets it through customers_for)."""
    return CustomerMetrics.objects.filter(customer_id=customer.pk).first()


def metrics_queryset(user: User) -> QuerySet[CustomerMetrics]:
    """The snapshot rows of the customers the user may see (unit scope; merged records never show)."""
    return CustomerMetrics.objects.filter(customer__in=customers_for(user))


def segment_rules() -> list[dict]:
    """The RFM rule table as data: per segment its value, label, the (R, F) score cells it covers and a description
    (see ``rfm`` for how scores are computed)."""
    return rfm.rule_table()


def stage_rules() -> list[dict]:
    """The relationship-stage rules, in the order they are applied (see ``stages``)."""
    return stages.rule_table()
