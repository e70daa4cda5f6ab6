"""Relationship stage suggested by rules (prospect → customer → regular → advocate; partner is staff's call).

The rules, applied to each live customer as of the refresh day, the first that matches wins:

1. **advocate** — has bought, and in the last 365 days made a referral that was rewarded (the newcomer made their
   first qualifying purchase: loyalty's ``Referral`` with status rewarded) or gave a top satisfaction score (9–10 of
   10, or 5 of 5, in a service survey).
2. **regular** — bought on at least ``REGULAR_MIN_PURCHASE_DAYS`` (6) different days in the last 365 days.
3. **customer** — at least one purchase (sales fully refunded and orders waiting for review do not count).
4. **prospect** — known to the group, no purchase yet.

**partner** (a business relationship: travel agency, corporate account, supplier) is never suggested: it is set by
staff, and the rules have nothing to say about it.

The result is stored in ``CustomerMetrics.suggested_stage`` and, at the end of each refresh, becomes the customer's
stage (``customers.services.apply_rule_stages``) — unless staff chose the stage by hand (``Customer.stage_set_by_staff``,
set when a profile's stage is changed in the staff app or the API) or the customer is a partner.
"""
from __future__ import annotations

import datetime as dt

import numpy as np

from dangol.customers.models import Stage

REGULAR_MIN_PURCHASE_DAYS = 6
LOOKBACK_DAYS = 365


def suggest(*, has_purchase: np.ndarray, purchase_days_last_year: np.ndarray, advocate: np.ndarray) -> np.ndarray:
    """The suggested stage of each customer (arrays of equal length) as an array of Stage values."""
    has_purchase = np.asarray(has_purchase, dtype=bool)
    regular = np.asarray(purchase_days_last_year) >= REGULAR_MIN_PURCHASE_DAYS
    advocate = np.asarray(advocate, dtype=bool) & has_purchase
    choices = np.array([Stage.PROSPECT.value, Stage.CUSTOMER.value, Stage.REGULAR.value, Stage.ADVOCATE.value], dtype=object)
    level = np.where(advocate, 3, np.where(has_purchase & regular, 2, np.where(has_purchase, 1, 0)))
    return choices[level]


def advocacy_signals(customer_ids: np.ndarray, *, as_of: dt.date) -> np.ndarray:
    """Whether each customer showed advocacy in the LOOKBACK_DAYS up to the end of ``as_of`` (a boolean array):
    one query for the referrers of rewarded referrals and one for the promoters of service surveys."""
    from dangol.loyalty.models import Referral, ReferralStatus
    from dangol.service.selectors import promoter_customer_ids

    from .facts import day_number, end_of_day

    until = end_of_day(day_number(as_of))
    since = end_of_day(day_number(as_of) - LOOKBACK_DAYS)
    referrers = (Referral.objects.filter(status=ReferralStatus.REWARDED, rewarded_at__gte=since, rewarded_at__lt=until)
                 .values_list("referrer_id", flat=True).distinct())
    promoters = promoter_customer_ids(since=since, until=until)
    advocates = np.union1d(np.fromiter(referrers, dtype=np.int64), np.fromiter(promoters, dtype=np.int64))
    return np.isin(np.asarray(customer_ids), advocates)


def rule_table() -> list[dict]:
    return [
        {"stage": Stage.ADVOCATE.value, "rule": "bought, and in the last 365 days made a rewarded referral or gave "
                                                "a top satisfaction score"},
        {"stage": Stage.REGULAR.value, "rule": f"bought on at least {REGULAR_MIN_PURCHASE_DAYS} different days in "
                                               f"the last {LOOKBACK_DAYS} days"},
        {"stage": Stage.CUSTOMER.value, "rule": "at least one purchase"},
        {"stage": Stage.PROSPECT.value, "rule": "no purchase yet"},
        {"stage": Stage.PARTNER.value, "rule": "never suggested: set by staff"},
    ]
