"""Coupons issued into customers' wallets, set-based (a campaign or a tier review may issue thousands at once)."""
from __future__ import annotations

import datetime as dt
from typing import Sequence

import numpy as np
from django.db import IntegrityError, transaction
from django.utils import timezone

from dangol.core import bulk
from dangol.core.bulk import Rows, Timestamps

from . import db, rules
from .models import Coupon, CouponStatus, CouponTemplate

CODE_LENGTH = 10


def issue_coupons(*, template: CouponTemplate, customer_ids: Sequence[int], source: str, source_ref: str = "",
                  now: dt.datetime | None = None) -> list[int]:
    """One coupon of ``template`` for each customer (a customer listed twice gets two). Returns the new coupons' ids.

    Codes are drawn at random from 31¹⁰ values; a clash with an existing code (about one chance in a billion per
    coupon at ten million coupons) makes the batch draw again."""
    customers = np.asarray(list(customer_ids), dtype=np.int64)
    count = len(customers)
    if count == 0:
        return []
    now = now or timezone.now()
    issued_s = int(now.timestamp())
    expires_s = issued_s + int(template.valid_days) * rules.DAY_S
    for attempt in range(3):
        codes = rules.new_codes(count, CODE_LENGTH)
        if len(set(codes)) != count:
            continue
        ids = db.allocate_ids(Coupon, count)
        try:
            with transaction.atomic():
                bulk.write(Rows(Coupon, count, {
                    "id": ids, "template": template.pk, "customer": customers, "code": codes,
                    "status": CouponStatus.ACTIVE.value, "source": source, "source_ref": source_ref[:60],
                    "issued_at": Timestamps(np.full(count, issued_s)), "expires_at": Timestamps(np.full(count, expires_s)),
                    "used_at": None, "used_unit": None, "used_by": None,
                }))
        except IntegrityError:
            if attempt == 2:
                raise
            continue
        return ids.tolist()
    raise IntegrityError("could not draw unique coupon codes")
