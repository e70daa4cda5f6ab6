"""Lifecycle automations per business unit, run hourly by the scheduler and by loyalty's events.

Each trigger finds its customers in SQL, and ``dispatch`` handles them once per customer and occurrence: the
``AutomationSend`` unique constraint (and messaging's idempotency key with the same occurrence) makes a second run of the
job, or of the event, do nothing. Occurrences: the calendar year for birthdays (the lunar year for a lunar birthday,
so that a lunar birthday falling twice in one solar year is still celebrated once per its own year), the date for the
others (the anniversary, the purchase, the last purchase before a lapse, the tier change, the expiry notice).
A reproducible share of each automation's customers (``holdout_pct``) is recorded but not sent to: the comparison group
of its results.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict

import numpy as np
from django.db import transaction
from django.db.models import Exists, Max, Min, OuterRef, Q
from django.utils import timezone
from korean_lunar_calendar import KoreanLunarCalendar

from dangol.customers.anniversaries import solar_date_in_year
from dangol.customers.models import Anniversary, AnniversaryKind, Membership
from dangol.loyalty.models import Coupon, CouponSource
from dangol.loyalty.wallet import issue_coupons
from dangol.messaging import services as messaging
from dangol.sales.models import Order, OrderKind

from . import selectors, templating
from .models import Automation, AutomationKind, AutomationSend
from .services import coupon_template_for, create_offer, holdout_mask, offer_text, personal_values

HOLDOUT_SALT = 1_000_000_007


def _today(now: dt.datetime) -> dt.date:
    return timezone.localdate(now)


def _members(automation: Automation, ids) -> list[int]:
    """Of these customers, those an automation of this unit may write to (members, live, not suspended)."""
    ids = sorted({int(i) for i in ids})
    out: list[int] = []
    for start in range(0, len(ids), 5000):
        chunk = ids[start:start + 5000]
        out.extend(selectors.reachable_customers().filter(pk__in=chunk).filter(
            Exists(Membership.objects.filter(customer_id=OuterRef("pk"), unit_id=automation.unit_id)))
            .values_list("pk", flat=True))
    return sorted(out)


def dispatch(automation: Automation, occurrences: dict[int, str], *, now: dt.datetime) -> dict:
    """Send (or hold back) the automation's message to each customer for their occurrence, once. Returns counts."""
    eligible = set(_members(automation, occurrences))
    pending = {cid: occ for cid, occ in occurrences.items() if cid in eligible}
    if not pending:
        return {"new": 0, "sent": 0, "holdout": 0}
    done = set()
    keys = list(pending.items())
    for start in range(0, len(keys), 5000):
        chunk = keys[start:start + 5000]
        done.update(AutomationSend.objects.filter(automation=automation, customer_id__in=[c for c, _o in chunk])
                    .values_list("customer_id", "occurrence"))
    new = {cid: occ for cid, occ in pending.items() if (cid, occ) not in done}
    if not new:
        return {"new": 0, "sent": 0, "holdout": 0}
    ids = np.asarray(sorted(new), dtype=np.int64)
    held = holdout_mask(automation.pk + HOLDOUT_SALT, ids, automation.holdout_pct)
    treated = ids[~held]
    coupon_by_customer: dict[int, int] = {}
    codes: dict[int, str] = {}
    with transaction.atomic():
        if automation.offer is not None and len(treated):
            template = coupon_template_for(automation.offer, str(automation))
            ref = f"{automation.source}:{_today(now).isoformat()}"
            issued = issue_coupons(template=template, customer_ids=treated.tolist(), source=CouponSource.CAMPAIGN,
                                   source_ref=ref, now=now)
            coupon_by_customer = dict(zip(treated.tolist(), issued))
            codes = dict(Coupon.objects.filter(pk__in=issued).values_list("customer_id", "code"))
        used = templating.variables_in(automation.body)
        values = personal_values(treated, used, unit=automation.unit)
        common = {"coupon_value": offer_text(automation.offer)}
        if automation.offer is not None:
            common["coupon_expires"] = _today(now + dt.timedelta(days=automation.offer.valid_days)).isoformat()
        by_occurrence: dict[str, list[int]] = defaultdict(list)
        for cid in treated.tolist():
            by_occurrence[new[cid]].append(cid)
        for occurrence, customers in by_occurrence.items():
            rows = []
            for cid in customers:
                row = {key: values[key].get(cid, "") for key in used if key in values}
                row.update(common)
                row["coupon_code"] = codes.get(cid, "")
                rows.append({"customer_id": cid, "body": templating.render(automation.body, row)})
            messaging.send_bulk(rows=rows, channel=automation.channel, kind="ad" if automation.offer else "info",
                                source=automation.source, occurrence=occurrence, unit=automation.unit)
        held_ids = set(ids[held].tolist())
        AutomationSend.objects.bulk_create([
            AutomationSend(automation=automation, customer_id=cid, occurrence=new[cid], at=now, is_holdout=cid in held_ids,
                           coupon_id=coupon_by_customer.get(cid)) for cid in ids.tolist()],
            batch_size=2000, ignore_conflicts=True)
    return {"new": len(ids), "sent": int(len(treated)), "holdout": int(held.sum())}


# --- triggers -----------------------------------------------------------------------------------------------------------

def _lunar_of(day: dt.date) -> tuple[int, int, int, bool]:
    converter = KoreanLunarCalendar()
    converter.setSolarDate(day.year, day.month, day.day)
    return converter.lunarYear, converter.lunarMonth, converter.lunarDay, bool(converter.isIntercalation)


def anniversaries_on(target: dt.date, kinds: list[str]) -> dict[int, str]:
    """Customers with an anniversary of these kinds falling on ``target`` (solar, or lunar converted to the solar date
    of the lunar year it falls in) → occurrence (the anniversary's own calendar year)."""
    out: dict[int, str] = {}
    solar = Q(is_lunar=False, month=target.month, day=target.day)
    if (target.month, target.day) == (2, 28) and not _is_leap(target.year):
        solar |= Q(is_lunar=False, month=2, day=29)  # leap-day anniversaries on 28 February in common years
    for cid, kind in Anniversary.objects.filter(solar, kind__in=kinds).values_list("customer_id", "kind"):
        out[cid] = str(target.year) if kind == AnniversaryKind.BIRTHDAY else target.isoformat()
    # Lunar: the lunar date of the target day, and the dates that fall back onto it (a missing leap month or 30th).
    lunar_year, month, day, leap = _lunar_of(target)
    candidates = Anniversary.objects.filter(kind__in=kinds, is_lunar=True, month=month, day__gte=min(day, 29))
    for cid, kind, a_month, a_day, a_leap in candidates.values_list("customer_id", "kind", "month", "day", "is_leap_month"):
        if solar_date_in_year(year=lunar_year, month=a_month, day=a_day, is_lunar=True, is_leap_month=a_leap) == target:
            out[cid] = f"{lunar_year}L" if kind == AnniversaryKind.BIRTHDAY else target.isoformat()
    return out


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _sales_at(automation: Automation):
    return Order.objects.filter(unit_id=automation.unit_id, kind=OrderKind.SALE, needs_review=False, customer__isnull=False)


def due_customers(automation: Automation, *, now: dt.datetime) -> dict[int, str]:
    today = _today(now)
    kind = automation.kind
    if kind == AutomationKind.BIRTHDAY:
        return anniversaries_on(today + dt.timedelta(days=automation.days), [AnniversaryKind.BIRTHDAY])
    if kind == AutomationKind.ANNIVERSARY:
        return anniversaries_on(today + dt.timedelta(days=automation.days), [AnniversaryKind.WEDDING, AnniversaryKind.OTHER])
    if kind == AutomationKind.WELCOME:
        # First purchase anywhere in the group, at this unit, in the last two days: welcomed once ("first").
        firsts = Order.objects.filter(kind=OrderKind.SALE, needs_review=False, customer__isnull=False) \
            .values("customer_id").annotate(first=Min("ordered_at")).filter(first__gte=now - dt.timedelta(days=2))
        recent = _sales_at(automation).filter(ordered_at__gte=now - dt.timedelta(days=2)).values("customer_id")
        return {row["customer_id"]: "first" for row in firsts.filter(customer_id__in=recent)}
    if kind == AutomationKind.THANK_YOU:
        start = now - dt.timedelta(days=automation.days + 1)
        end = now - dt.timedelta(days=automation.days)
        return {cid: timezone.localdate(at).isoformat() for cid, at in
                _sales_at(automation).filter(ordered_at__gte=start, ordered_at__lt=end).values_list("customer_id", "ordered_at")}
    if kind == AutomationKind.WINBACK:
        # Lapsed: the last purchase at this unit is N to N+30 days old; one win-back per lapse (keyed by that date).
        lapsed = _sales_at(automation).values("customer_id").annotate(last=Max("ordered_at")) \
            .filter(last__lt=now - dt.timedelta(days=automation.days),
                    last__gte=now - dt.timedelta(days=automation.days + 30))
        return {row["customer_id"]: timezone.localdate(row["last"]).isoformat() for row in lapsed}
    return {}  # tier and points triggers come as events


def run_automations(*, now: dt.datetime | None = None, unit_id: int | None = None) -> dict:
    """The hourly job: every active scheduled automation. Returns counts per automation id."""
    now = now or timezone.now()
    out = {}
    automations = Automation.objects.filter(is_active=True).select_related("unit", "offer") \
        .exclude(kind__in=[AutomationKind.TIER_UP, AutomationKind.TIER_DOWN, AutomationKind.POINTS_EXPIRING])
    if unit_id:
        automations = automations.filter(unit_id=unit_id)
    for automation in automations:
        out[automation.pk] = dispatch(automation, due_customers(automation, now=now), now=now)
    return out


def on_tier_changed(*, changes, **_ignored) -> None:
    """loyalty's ``tier_changed``: congratulate upgrades, soften downgrades, once per customer and day."""
    if not changes:
        return
    now = timezone.now()
    for kind, direction in ((AutomationKind.TIER_UP, "up"), (AutomationKind.TIER_DOWN, "down")):
        picked = {c.customer_id: timezone.localdate(c.at).isoformat() for c in changes if c.direction == direction}
        if not picked:
            continue
        for automation in Automation.objects.filter(is_active=True, kind=kind).select_related("unit", "offer"):
            dispatch(automation, picked, now=now)


def on_points_expiring(*, notices, **_ignored) -> None:
    """loyalty's ``points_expiring_soon``: remind once per customer and first expiry date."""
    if not notices:
        return
    now = timezone.now()
    picked = {n.customer_id: timezone.localdate(n.first_expiry).isoformat() for n in notices}
    for automation in Automation.objects.filter(is_active=True, kind=AutomationKind.POINTS_EXPIRING).select_related("unit", "offer"):
        dispatch(automation, picked, now=now)


@transaction.atomic
def save_automation(*, actor, unit, kind: str, channel: str, body: str, days: int = 7, holdout_pct: int = 10,
                    offer=None, is_active: bool = True) -> Automation:
    """Create or replace the unit's automation of this kind (managers and admins of the unit)."""
    from django.core.exceptions import PermissionDenied, ValidationError
    from django.utils.translation import gettext as _

    from dangol.core import audit

    from .segments import check_unit
    from .services import _clean_offer, may_approve

    if not may_approve(actor.user):
        raise PermissionDenied(_("Only a manager or an admin sets up automations."))
    check_unit(actor.user, unit)
    if kind not in AutomationKind.values:
        raise ValidationError({"kind": [_("Choose a trigger.")]})
    body = (body or "").strip()
    if not body:
        raise ValidationError({"body": [_("Write the message.")]})
    templating.variables_in(body)
    if not 0 <= int(days) <= 365 or not 0 <= int(holdout_pct) <= 90:
        raise ValidationError({"days": [_("Days 0 to 365, holdout 0 to 90 %.")]})
    offer = _clean_offer(offer)
    automation, _created = Automation.objects.update_or_create(unit=unit, kind=kind, defaults={
        "channel": channel, "body": body, "days": int(days), "holdout_pct": int(holdout_pct), "is_active": is_active})
    if offer is not None:
        automation.offer = create_offer(offer, [unit] if unit is not None else [])
        automation.save(update_fields=["offer"])
    audit.record(actor=actor, action="automation.save", obj=automation, fields=["body", "kind"])
    return automation
