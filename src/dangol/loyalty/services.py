"""Writes of the loyalty program: redemption and adjustments at the counter, coupons, referrals, and the reactions to
orders and merges. Every write validates first (django ValidationError, keyed by field), runs in one transaction
and is audited; the ledger itself records who did what, where and through which door (``via``).

Set-based paths live beside this module and are re-exported here: ``apply_orders`` and ``backfill`` (earning,
``earning.py``), ``evaluate_tiers`` (``tiers.py``), ``expire_due_points`` and ``notify_expiring_points``
(``jobs.py``), ``issue_coupons`` (``wallet.py``).

Events emitted (``dangol.core.events``), inside the writing transaction:
- ``tier_changed(changes)`` — a list of ``tiers.TierChangeNotice`` (customer_id, from_tier, to_tier codes,
  direction "up"/"down", at, cause, coupon_ids), once per review (a purchase, the schedule, a merge);
- ``points_expiring_soon(notices, window_days)`` — a list of ``jobs.ExpiringPoints`` (customer_id, points,
  first_expiry), at most 10,000 per call, each lot announced once;
- ``referral_rewarded(referral, referrer_id, referred_id, referrer_points, referred_points)`` — once per referral,
  when the newcomer's first qualifying purchase is recorded.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from dangol.core import audit, events
from dangol.core.audit import Actor
from dangol.core.models import BusinessUnit, Role
from dangol.customers.models import ContactPoint, Customer, Interaction, Stage
from dangol.sales.models import Order

from . import db, rules
from .earning import apply_orders, backfill, ensure_accounts  # noqa: F401 (re-exported)
from .jobs import expire_due_points, notify_expiring_points  # noqa: F401 (re-exported)
from .models import (
    TIMELINE_KIND,
    Account,
    Coupon,
    CouponKind,
    CouponStatus,
    EntryKind,
    LedgerEntry,
    Lot,
    Program,
    Referral,
    ReferralStatus,
    TierCause,
    TierChange,
)
from .tiers import evaluate_tiers  # noqa: F401 (re-exported)
from .wallet import issue_coupons  # noqa: F401 (re-exported)

MAX_POINTS = 1_000_000_000


def _merged_duplicates() -> str:
    return _("The referrer and the newcomer are the same person (merged duplicates).")

ADVOCATE_FROM = {Stage.PROSPECT, Stage.CUSTOMER, Stage.REGULAR}  # a partner stays a partner


# --- helpers -----------------------------------------------------------------------------------------------------------

def live_customer(customer: Customer) -> Customer:
    """The record that holds the person's data now: a record merged into another stands for its survivor."""
    seen = 0
    while customer.merged_into_id is not None and seen < 50:
        customer = Customer.objects.get(pk=customer.merged_into_id)
        seen += 1
    return customer


def ensure_account(customer: Customer) -> Account:
    """The customer's account, created with a member number and a referral code on first need."""
    account = Account.objects.filter(pk=customer.pk).first()
    if account is None:
        ensure_accounts([customer.pk])
        account = Account.objects.get(pk=customer.pk)
    return account


def _lock_account(customer_id: int) -> Account:
    """The account row lock that every change of lots and debt of this customer takes first."""
    account = Account.objects.select_for_update().filter(pk=customer_id).first()
    if account is None:
        ensure_accounts([customer_id])
        account = Account.objects.select_for_update().get(pk=customer_id)
    return account


def _lock_pair(first_id: int, second_id: int) -> dict[int, Account]:
    """Both accounts locked, in id order (two merges or rewards of the same pair cannot deadlock)."""
    wanted = sorted({first_id, second_id})
    accounts = {a.pk: a for a in Account.objects.select_for_update().filter(pk__in=wanted).order_by("pk")}
    if len(accounts) < len(wanted):
        ensure_accounts([pk for pk in wanted if pk not in accounts])
        accounts = {a.pk: a for a in Account.objects.select_for_update().filter(pk__in=wanted).order_by("pk")}
    return accounts


def _check_points(value, *, field: str = "points", allow_negative: bool = False) -> int:
    if type(value) is not int:  # bool is not a number of points, and neither is 1.5
        raise ValidationError({field: [_("Enter a whole number of points.")]})
    if value == 0 or abs(value) > MAX_POINTS or (value < 0 and not allow_negative):
        raise ValidationError({field: [_("Enter a number of points between 1 and %(max)s.") % {"max": f"{MAX_POINTS:,}"}]})
    return value


def _timeline(customer_id: int, summary: str, *, at: dt.datetime, unit_id: int | None = None, user=None,
              entry: LedgerEntry | None = None) -> Interaction:
    return Interaction.objects.create(
        customer_id=customer_id, kind=TIMELINE_KIND, occurred_at=at, unit_id=unit_id, summary=summary[:300],
        ref_type="loyalty.ledgerentry" if entry else "loyalty", ref_id=entry.pk if entry else None, created_by=user,
    )


def _entry(customer_id: int, kind: str, points: int, *, at: dt.datetime, actor: Actor | None, unit_id: int | None = None,
           reason: str = "", idempotency_key: str = "", approved_by=None, referral=None, lot=None) -> LedgerEntry:
    return LedgerEntry.objects.create(
        customer_id=customer_id, kind=kind, points=points, at=at, created_at=timezone.now(), unit_id=unit_id,
        reason=reason[:300], created_by=actor.user if actor else None, approved_by=approved_by,
        via=(actor.via if actor else "system")[:20], idempotency_key=idempotency_key, referral=referral, lot=lot,
    )


def _new_lot(account: Account, entry: LedgerEntry, program: Program) -> Lot:
    """The lot of a positive entry; debt from refunds is paid first. The account is locked by the caller."""
    pay = min(account.points_owed, entry.points)
    if pay:
        account.points_owed -= pay
        account.save(update_fields=["points_owed"])
    expires_s = int(rules.expiry_seconds(np.array([int(entry.at.timestamp())]), program.validity_months)[0])
    return Lot.objects.create(customer_id=entry.customer_id, entry=entry, points=entry.points, remaining=entry.points - pay,
                              earned_at=entry.at, expires_at=dt.datetime.fromtimestamp(expires_s, dt.timezone.utc))


def _expire_due_locked(customer_id: int, now: dt.datetime) -> list[Lot]:
    """Expire this customer's lots that are past their date (the scheduled job may not have run yet) and return the
    open ones, in spending order. The account is locked by the caller."""
    lots = list(Lot.objects.filter(customer_id=customer_id, remaining__gt=0).order_by("expires_at", "pk"))
    due = [lot for lot in lots if lot.expires_at <= now]
    if due:
        for lot in due:
            _entry(customer_id, EntryKind.EXPIRE, -lot.remaining, at=lot.expires_at, actor=Actor.system("schedule"), lot=lot)
        Lot.objects.filter(pk__in=[lot.pk for lot in due]).update(remaining=0)
        total = sum(lot.remaining for lot in due)
        _timeline(customer_id, _("−%(points)s points expired") % {"points": f"{total:,}"}, at=now)
    return [lot for lot in lots if lot.expires_at > now]


def _take(lots: list[Lot], points: int) -> int:
    """Spend from the lots, first to expire first; saves the lots touched; returns what was taken."""
    pairs = [[lot.pk, lot.remaining] for lot in lots]
    taken = rules.consume_fifo(pairs, points)
    for lot, (_pk, remaining) in zip(lots, pairs):
        if remaining != lot.remaining:
            Lot.objects.filter(pk=lot.pk).update(remaining=remaining)
            lot.remaining = remaining
    return taken


def available_points(account: Account, open_lots: list[Lot]) -> int:
    return max(0, sum(lot.remaining for lot in open_lots) - account.points_owed)


# --- redemption and adjustments ------------------------------------------------------------------------------------------

@transaction.atomic
def redeem_points(*, actor: Actor, customer: Customer, points, unit: BusinessUnit | None, idempotency_key: str = "",
                  note: str = "", now: dt.datetime | None = None) -> LedgerEntry:
    """Spend points at a unit's counter, first to expire first. Holds the customer's account row lock, so that
    concurrent redemptions take turns and none can spend what another has just spent: the balance never goes below zero.

    ``idempotency_key`` (a request id): a redemption sent again with the same id returns the first one.

    The counter's hot path: its statements are written by hand (the ORM's query building cost more than the database
    did, as for the phone lookup); the rare paths (lots past their date, a replayed request) use the ORM."""
    minimum = db.fetch(f"SELECT min_redeem_points FROM {Program._meta.db_table} WHERE id = 1")
    minimum = minimum[0][0] if minimum else Program.current().min_redeem_points
    errors: dict[str, list[str]] = {}
    try:
        points = _check_points(points)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    else:
        if points < minimum:
            errors["points"] = [_("Redeem at least %(min)s points.") % {"min": f"{minimum:,}"}]
    if unit is None or not unit.is_active:
        errors["unit"] = [_("Choose the business unit where the points are spent.")]
    idempotency_key = (idempotency_key or "").strip()
    if len(idempotency_key) > 64:
        errors["idempotency_key"] = [_("A request id has at most 64 characters.")]
    if errors:
        raise ValidationError(errors)
    if customer.merged_into_id is not None:
        customer = live_customer(customer)
    now = now or timezone.now()
    owed = _lock_owed(customer.pk)
    if idempotency_key:
        # Looked up under the lock: a second copy of the request waits for the first and then finds its entry.
        earlier = LedgerEntry.objects.filter(idempotency_key=idempotency_key).first()
        if earlier is not None:
            if earlier.kind != EntryKind.REDEEM or earlier.customer_id != customer.pk or earlier.points != -points:
                raise ValidationError({"idempotency_key": [_("This request id was already used for another entry.")]})
            earlier.balance_after = max(0, sum(lot.remaining for lot in _expire_due_locked(customer.pk, now)) - owed)
            return earlier
    lots_table = Lot._meta.db_table
    query = (f"SELECT entry_id, remaining, {db.epoch('expires_at')} FROM {lots_table} WHERE customer_id = %s AND remaining > 0 "
             f"ORDER BY expires_at, entry_id")
    rows = db.fetch(query, [customer.pk])
    if any(expires <= now.timestamp() for _lot, _remaining, expires in rows):
        _expire_due_locked(customer.pk, now)  # rare: the hourly job usually did it
        rows = db.fetch(query, [customer.pk])
    lots = [[lot_id, remaining] for lot_id, remaining, expires in rows if expires > now.timestamp()]
    available = max(0, sum(lot[1] for lot in lots) - owed)
    if points > available:
        raise ValidationError({"points": [_("Only %(available)s points are available.") % {"available": f"{available:,}"}]},
                              code="insufficient_points")
    before = {lot[0]: lot[1] for lot in lots}
    rules.consume_fifo(lots, points)
    for lot_id, remaining in lots:
        if remaining != before[lot_id]:
            db.execute(f"UPDATE {lots_table} SET remaining = %s WHERE entry_id = %s", [remaining, lot_id])
    reason = (note or "").strip()[:300]
    user_id = actor.user.pk if actor.user else None
    via = (actor.via or "system")[:20]
    entry_id = _insert(LedgerEntry._meta.db_table, {
        "customer_id": customer.pk, "kind": EntryKind.REDEEM.value, "points": -points, "at": db.sql_time(now),
        "created_at": db.sql_time(now), "unit_id": unit.pk, "order_id": None, "reverses_id": None, "lot_id": None,
        "referral_id": None, "reason": reason, "created_by_id": user_id, "approved_by_id": None, "via": via,
        "idempotency_key": idempotency_key})
    _insert(Interaction._meta.db_table, {
        "customer_id": customer.pk, "kind": TIMELINE_KIND, "occurred_at": db.sql_time(now), "unit_id": unit.pk,
        "channel": "", "summary": (_("−%(points)s points redeemed") % {"points": f"{points:,}"})[:300], "body": "",
        "amount": None, "ref_type": "loyalty.ledgerentry", "ref_id": entry_id, "created_by_id": user_id})
    audit.record(actor=actor, action="loyalty.redeem", obj=customer, fields=["points"])
    entry = LedgerEntry(id=entry_id, customer_id=customer.pk, kind=EntryKind.REDEEM, points=-points, at=now, created_at=now,
                        unit=unit, reason=reason, created_by=actor.user, via=via, idempotency_key=idempotency_key)
    entry._state.adding, entry._state.db = False, "default"
    entry.balance_after = available - points
    return entry


def _lock_owed(customer_id: int) -> int:
    """Lock the customer's account row (creating the account first when needed) and return the points owed."""
    query = f"SELECT points_owed FROM {Account._meta.db_table} WHERE customer_id = %s" + db.for_update()
    row = db.fetch(query, [customer_id])
    if not row:
        ensure_accounts([customer_id])
        row = db.fetch(query, [customer_id])
    return int(row[0][0])


def _insert(table: str, values: dict) -> int:
    columns = ", ".join(connection.ops.quote_name(c) for c in values)
    row = db.fetch(f"INSERT INTO {connection.ops.quote_name(table)} ({columns}) VALUES ({db.placeholders(len(values))}) "
                   f"RETURNING id", list(values.values()))
    return int(row[0][0])


def may_adjust(user) -> bool:
    return user is not None and user.is_authenticated and (user.sees_all_units or user.role == Role.MANAGER)


@transaction.atomic
def adjust_points(*, actor: Actor, customer: Customer, points, reason: str, unit: BusinessUnit | None = None,
                  now: dt.datetime | None = None) -> LedgerEntry:
    """A manual correction by a manager or an admin, with its reason: added points form a new lot, removed points
    come from the lots first to expire (never more than the customer has)."""
    if not may_adjust(actor.user):
        raise PermissionDenied(_("Only a manager or an admin may adjust points."))
    errors: dict[str, list[str]] = {}
    try:
        points = _check_points(points, allow_negative=True)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    reason = " ".join((reason or "").split())
    if len(reason) < 3:
        errors["reason"] = [_("Give the reason for the adjustment.")]
    elif len(reason) > 300:
        errors["reason"] = [_("A reason has at most 300 characters.")]
    if errors:
        raise ValidationError(errors)
    customer = live_customer(customer)
    now = now or timezone.now()
    program = Program.current()
    account = _lock_account(customer.pk)
    unit_id = unit.pk if unit else None
    if points < 0:
        lots = _expire_due_locked(customer.pk, now)
        available = available_points(account, lots)
        if -points > available:
            raise ValidationError({"points": [_("Only %(available)s points are available: an adjustment cannot take more.")
                                              % {"available": f"{available:,}"}]}, code="insufficient_points")
        _take(lots, -points)
    entry = _entry(customer.pk, EntryKind.ADJUST, points, at=now, actor=actor, unit_id=unit_id, reason=reason,
                   approved_by=actor.user)
    if points > 0:
        _new_lot(account, entry, program)
    _timeline(customer.pk, _("%(points)s points adjusted: %(reason)s") % {"points": f"{points:+,}", "reason": reason},
              at=now, unit_id=unit_id, user=actor.user, entry=entry)
    audit.record(actor=actor, action="loyalty.adjust", obj=customer, fields=["points"])
    return entry


# --- coupons -------------------------------------------------------------------------------------------------------------

MAX_PURCHASE_KRW = 10_000_000_000


def coupon_problem(coupon: Coupon, *, unit: BusinessUnit | None, now: dt.datetime | None = None,
                   amount_krw: int | None = None) -> dict | None:
    """Why the coupon cannot be used at ``unit`` now ({field: [message]}), or None: the counter's check, also asked
    before a sale by a POS (``use_coupon`` asks it again under the row lock). With the purchase ``amount_krw`` the
    template's minimum spend is checked too."""
    now = now or timezone.now()
    if amount_krw is not None and not (isinstance(amount_krw, int) and 0 <= amount_krw <= MAX_PURCHASE_KRW):
        return {"amount_krw": [_("Enter the purchase amount in whole won.")]}
    if unit is None:
        return {"unit": [_("Choose the business unit where the coupon is used.")]}
    if coupon.status == CouponStatus.USED:
        return {"coupon": [_("This coupon has already been used.")]}
    if coupon.status != CouponStatus.ACTIVE:
        return {"coupon": [_("This coupon is no longer valid.")]}
    if coupon.expires_at <= now:
        return {"coupon": [_("This coupon has expired.")]}
    if not coupon.template.usable_at(unit):
        return {"unit": [_("This coupon is only valid at %(unit)s.") % {"unit": coupon.template.units_label}]}
    if amount_krw is not None and amount_krw < coupon.template.min_spend_krw:
        return {"amount_krw": [_("This coupon needs a purchase of at least %(amount)s KRW.")
                               % {"amount": f"{coupon.template.min_spend_krw:,}"}]}
    return None


def coupon_discount(template, amount_krw: int | None) -> int | None:
    """What a coupon takes off a purchase: an amount coupon its value (never more than the purchase), a percentage
    coupon its share of the purchase (rounded down to the won); None when it cannot be known (a gift, or a
    percentage without the amount)."""
    if template.kind == CouponKind.AMOUNT:
        return template.value if amount_krw is None else min(template.value, amount_krw)
    if template.kind == CouponKind.PERCENT and amount_krw is not None:
        return amount_krw * template.value // 100
    return None


@transaction.atomic
def use_coupon(*, actor: Actor, coupon: Coupon, unit: BusinessUnit | None, now: dt.datetime | None = None,
               amount_krw: int | None = None) -> Coupon:
    """Mark a coupon of the wallet used at a unit's counter (once: the row is locked while it is checked). With the
    purchase ``amount_krw`` the minimum spend is checked and the discount recorded (what campaign results count as
    the offer's cost)."""
    now = now or timezone.now()
    locked = Coupon.objects.select_for_update().select_related("template").get(pk=coupon.pk)
    problem = coupon_problem(locked, unit=unit, now=now, amount_krw=amount_krw)
    if problem:
        raise ValidationError(problem)
    locked.status, locked.used_at, locked.used_unit, locked.used_by = CouponStatus.USED, now, unit, actor.user
    locked.purchase_krw, locked.discount_krw = amount_krw, coupon_discount(locked.template, amount_krw)
    locked.save(update_fields=["status", "used_at", "used_unit", "used_by", "purchase_krw", "discount_krw"])
    _timeline(locked.customer_id, _("Coupon used: %(name)s") % {"name": locked.template.name}, at=now, unit_id=unit.pk,
              user=actor.user)
    audit.record(actor=actor, action="loyalty.coupon_use", obj=locked.customer, fields=["coupons"])
    return locked


# --- referrals -------------------------------------------------------------------------------------------------------------

def normalize_code(raw: str) -> str:
    return "".join(ch for ch in (raw or "").upper() if ch.isalnum())[:10]


def _contacts(customer_id: int) -> set[tuple[str, str]]:
    return set(ContactPoint.objects.filter(customer_id=customer_id).values_list("kind", "value"))


def referral_problem(referrer: Customer, referred: Customer) -> str | None:
    """Why these two cannot be a referral (the same person under two records, a shared phone or email, a loop of
    referrals), or None."""
    if referrer.pk == referred.pk:
        return _("A member cannot refer themselves.")
    # A merge moves the contacts the survivor lacks, so the live records hold every number and email of the person.
    if _contacts(referrer.pk) & _contacts(referred.pk):
        return _("The referrer and the newcomer share a phone number or an email.")
    # A loop: the newcomer already stands somewhere above the referrer in the chain of referrals.
    step, seen = referrer.pk, set()
    while step is not None and step not in seen and len(seen) < 100:
        seen.add(step)
        if step == referred.pk:
            return _("This referral would make a loop of referrals.")
        step = (Referral.objects.filter(referred_id=step).exclude(status=ReferralStatus.REFUSED)
                .values_list("referrer_id", flat=True).first())
    if step == referred.pk:
        return _("This referral would make a loop of referrals.")
    return None


def _first_qualifying_order(customer_id: int, program: Program) -> Order | None:
    return (Order.objects.filter(customer_id=customer_id, kind="sale", needs_review=False,
                                 total__gte=program.referral_min_purchase_krw)
            .exclude(refunds__isnull=False).order_by("ordered_at", "id").first())


@transaction.atomic
def link_referral(*, actor: Actor, customer: Customer, code: str, now: dt.datetime | None = None) -> Referral:
    """A newcomer joins with a member's referral code: linked now, both rewarded at the first qualifying purchase."""
    now = now or timezone.now()
    program = Program.current()
    code = normalize_code(code)
    if not code:
        raise ValidationError({"code": [_("Enter the referral code.")]})
    account = Account.objects.filter(referral_code=code).select_related("customer").first()
    if account is None:
        raise ValidationError({"code": [_("No member has this referral code.")]})
    referrer = live_customer(account.customer)
    referred = live_customer(Customer.objects.select_for_update().get(pk=customer.pk))
    if Referral.objects.filter(referred=referred).exclude(status=ReferralStatus.REFUSED).exists():
        raise ValidationError({"code": [_("This customer already joined with a referral code.")]})
    if referred.joined_at < now - dt.timedelta(days=program.referral_join_days):
        raise ValidationError({"code": [_("A referral code is accepted within %(days)s days of joining.")
                                        % {"days": program.referral_join_days}]})
    if _first_qualifying_order(referred.pk, program) is not None or \
            Order.objects.filter(customer=referred, kind="sale", total__gte=program.referral_min_purchase_krw).exists():
        raise ValidationError({"code": [_("A referral code is accepted before the first purchase only.")]})
    problem = referral_problem(referrer, referred)
    if problem:
        raise ValidationError({"code": [problem]})
    referral = Referral.objects.create(referrer=referrer, referred=referred, code=code, linked_at=now, linked_by=actor.user)
    _timeline(referred.pk, _("Joined with a member's referral code"), at=now, user=actor.user)
    audit.record(actor=actor, action="loyalty.referral_link", obj=referred, fields=["referral"])
    return referral


def reward_referrals(customer_ids, *, now: dt.datetime | None = None) -> list[Referral]:
    """Reward the pending referrals of these newcomers who now have a qualifying purchase. Call inside a transaction."""
    now = now or timezone.now()
    wanted = set(int(c) for c in customer_ids)
    if not wanted:
        return []
    pending = Referral.objects.filter(status=ReferralStatus.PENDING)
    if len(wanted) <= db.IN_CHUNK:
        pending = pending.filter(referred_id__in=wanted)
    rewarded = []
    program = None
    for referral in pending.order_by("id"):
        if referral.referred_id not in wanted:
            continue
        program = program or Program.current()
        order = _first_qualifying_order(referral.referred_id, program)
        if order is None:
            continue
        rewarded_referral = _reward(referral, order, program, now)
        if rewarded_referral is not None:
            rewarded.append(rewarded_referral)
    return rewarded


def _reward(referral: Referral, order: Order, program: Program, now: dt.datetime) -> Referral | None:
    referrer = live_customer(referral.referrer)
    referred = live_customer(referral.referred)
    if referrer.pk == referred.pk and referral.referrer_id != referral.referred_id:
        problem = _merged_duplicates()
    else:
        problem = referral_problem(referrer, referred)
    if problem is None and Referral.objects.filter(referred=referred, status=ReferralStatus.REWARDED).exists():
        problem = _("The newcomer was already rewarded for another referral.")
    accounts = _lock_pair(referrer.pk, referred.pk) if problem is None else {}
    referral = Referral.objects.select_for_update().get(pk=referral.pk)
    if referral.status != ReferralStatus.PENDING:
        return None
    if problem:
        referral.status, referral.refusal = ReferralStatus.REFUSED, problem[:200]
        referral.save(update_fields=["status", "refusal"])
        return None
    system = Actor.system("loyalty")
    given = {}
    for customer, points, text in (
            (referrer, program.referral_referrer_points, _("+%(points)s points: a member you referred made a first purchase")),
            (referred, program.referral_newcomer_points, _("+%(points)s points: welcome reward of a referral"))):
        given[customer.pk] = points
        if points:
            entry = _entry(customer.pk, EntryKind.EARN, points, at=now, actor=system, reason="referral", referral=referral)
            _new_lot(accounts[customer.pk], entry, program)
            _timeline(customer.pk, text % {"points": f"{points:,}"}, at=now, entry=entry)
    referral.status, referral.rewarded_at, referral.qualifying_order = ReferralStatus.REWARDED, now, order
    referral.save(update_fields=["status", "rewarded_at", "qualifying_order"])
    rewarded_count = Referral.objects.filter(referrer=referrer, status=ReferralStatus.REWARDED).count()
    if rewarded_count >= program.advocate_referrals and referrer.stage in ADVOCATE_FROM:
        Customer.objects.filter(pk=referrer.pk).update(stage=Stage.ADVOCATE)
        audit.record(actor=system, action="customer.stage", obj=referrer, fields=["stage"])
    audit.record(actor=system, action="loyalty.referral_reward", obj=referrer, fields=["points"])
    events.emit("referral_rewarded", referral=referral, referrer_id=referrer.pk, referred_id=referred.pk,
                referrer_points=given[referrer.pk], referred_points=given[referred.pk])
    return referral


# --- reactions to orders -------------------------------------------------------------------------------------------------

def after_purchases(customer_ids, *, now: dt.datetime | None = None, cause: str = TierCause.PURCHASE) -> None:
    """What follows new purchases of these customers: their tier review, and the rewards of referrals they qualify."""
    customer_ids = sorted(set(customer_ids))
    if not customer_ids:
        return
    evaluate_tiers(customer_ids=customer_ids, now=now, cause=cause)
    reward_referrals(customer_ids, now=now)


def on_order_recorded(*, order, actor: Actor | None = None) -> None:
    """``order_recorded``: a sale earns, a refund takes back its sale's points in proportion."""
    if order.customer_id is None or order.needs_review:
        return
    actor = actor or Actor.system("sales")
    applied = apply_orders(order_ids=[order.pk], via=actor.via, user_id=actor.user.pk if actor.user else None,
                           timeline=order.kind == "refund")
    if order.kind == "sale":
        after_purchases([order.customer_id])
    elif applied.reversed_orders:
        # A refund lowers the spend: the tier review may start a grace period, never a sudden downgrade.
        evaluate_tiers(customer_ids=list(applied.customers), cause=TierCause.PURCHASE)


def on_orders_imported(*, unit_id: int, order_ids: list[int]) -> None:
    """``orders_imported``: the whole file in one set-based pass; one timeline entry per customer for the earnings."""
    applied = apply_orders(order_ids=order_ids, via="import", timeline=True, timeline_unit=unit_id)
    after_purchases(applied.customers)


def on_orders_accepted(*, order_ids: list[int], actor: Actor | None = None) -> None:
    """Flagged orders a manager accepted (``needs_review`` now false) earn or reverse as if just recorded."""
    applied = apply_orders(order_ids=order_ids, via=(actor.via if actor else "review"),
                           user_id=actor.user.pk if actor and actor.user else None, timeline=True)
    after_purchases(applied.customers)


# --- merges --------------------------------------------------------------------------------------------------------------

def _move(queryset, field: str, to_id: int) -> list[int]:
    ids = sorted(queryset.order_by().values_list("pk", flat=True))
    for part in db.chunks(ids):
        queryset.model.objects.filter(pk__in=part).update(**{field: to_id})
    return ids


def _settle_owed_locked(account: Account) -> None:
    """Points owed are paid from open lots (first to expire first) when both exist, e.g. after a merge."""
    if account.points_owed <= 0:
        return
    lots = list(Lot.objects.filter(customer_id=account.pk, remaining__gt=0).order_by("expires_at", "pk"))
    paid = _take(lots, account.points_owed)
    if paid:
        account.points_owed -= paid
        account.save(update_fields=["points_owed"])


_MOVABLE = (  # key in Merge.moved, model, the column that points at the customer
    ("loyalty_entries", LedgerEntry, "customer_id"),
    ("loyalty_lots", Lot, "customer_id"),
    ("loyalty_coupons", Coupon, "customer_id"),
    ("loyalty_tier_changes", TierChange, "customer_id"),
    ("loyalty_referrals_made", Referral, "referrer_id"),
    ("loyalty_referrals_received", Referral, "referred_id"),
)


def _rows_of(customer_id: int) -> dict[str, list[int]]:
    """The ids of every loyalty row of this customer, per key of ``_MOVABLE``, in one query."""
    parts = [f"SELECT {i}, {model._meta.pk.column} FROM {model._meta.db_table} WHERE {column} = %s"
             for i, (_key, model, column) in enumerate(_MOVABLE)]
    found: dict[str, list[int]] = {key: [] for key, _m, _c in _MOVABLE}
    for index, row_id in db.fetch(" UNION ALL ".join(parts), [customer_id] * len(parts)):
        found[_MOVABLE[index][0]].append(row_id)
    return {key: sorted(ids) for key, ids in found.items()}


def on_customers_merged(*, survivor, merged, merge, moved: dict) -> None:
    """``customers_merged``: the merged record's entries, lots, coupons, tier history and referrals move to the
    survivor (ids in ``moved``), its debt too; a referral between the two is refused (one person cannot refer
    themselves) until the merge is undone; the survivor's tier is reviewed with the orders it now holds. A constant
    number of queries whatever the number of rows."""
    s, m = survivor.pk, merged.pk
    rows = _rows_of(m)
    owing = Account.objects.filter(pk=m, points_owed__gt=0).exists() if not any(rows.values()) else True
    if owing or any(rows.values()):
        accounts = _lock_pair(s, m)
        if rows["loyalty_referrals_made"] or rows["loyalty_referrals_received"]:
            Referral.objects.filter(Q(referrer_id=s, referred_id=m) | Q(referrer_id=m, referred_id=s)).exclude(
                status=ReferralStatus.REFUSED).update(status=ReferralStatus.REFUSED, voided_by_merge=merge.pk,
                                                      refusal=_merged_duplicates())
        for key, model, column in _MOVABLE:
            moved[key] = rows[key]
            for part in db.chunks(rows[key]):
                model.objects.filter(pk__in=part, **{column: m}).update(**{column: s})
        owed = accounts[m].points_owed
        if owed:
            Account.objects.filter(pk=m).update(points_owed=0)
            accounts[s].points_owed += owed
            accounts[s].save(update_fields=["points_owed"])
            moved["loyalty_points_owed"] = [owed]  # an amount, not ids: the debt the merged record brought
            _settle_owed_locked(accounts[s])
    evaluate_tiers(customer_ids=[s], cause=TierCause.MERGE)


def on_customers_unmerged(*, survivor, merged, merge, moved: dict) -> None:
    """``customers_unmerged``: the rows listed in ``moved`` go back; refused referrals between the two get their
    status back. Points the survivor spent from the merged record's lots meanwhile become the survivor's debt (its
    later earnings pay it), so that both balances stay the sums of their own entries."""
    s, m = survivor.pk, merged.pk
    if not any(moved.get(key) for key, _m, _c in _MOVABLE) and not moved.get("loyalty_points_owed"):
        return
    _lock_pair(s, m)
    for key, model, column in _MOVABLE:
        for part in db.chunks(moved.get(key, [])):
            model.objects.filter(pk__in=part, **{column: s}).update(**{column: m})
    if moved.get("loyalty_referrals_made") or moved.get("loyalty_referrals_received"):
        for referral in Referral.objects.filter(voided_by_merge=merge.pk):
            referral.status = ReferralStatus.REWARDED if referral.rewarded_at else ReferralStatus.PENDING
            referral.refusal, referral.voided_by_merge = "", None
            referral.save(update_fields=["status", "refusal", "voided_by_merge"])
    for customer_id in (s, m):
        rebalance_lots(customer_id)


def rebalance_lots(customer_id: int) -> None:
    """Make the open lots and the debt agree with the ledger again (after rows moved back by an undone merge): the
    balance is kept in the lots that expire last, and a negative balance is owed. The account is locked by the caller."""
    account = Account.objects.select_for_update().get(pk=customer_id)
    balance = int(sum(LedgerEntry.objects.filter(customer_id=customer_id).values_list("points", flat=True)))
    closed = LedgerEntry.objects.filter(kind=EntryKind.EXPIRE, lot__isnull=False, customer_id=customer_id).values("lot_id")
    lots = list(Lot.objects.filter(customer_id=customer_id).exclude(pk__in=closed).order_by("-expires_at", "-pk"))
    left = max(balance, 0)
    for lot in lots:
        remaining = min(lot.points, left)
        left -= remaining
        if remaining != lot.remaining:
            Lot.objects.filter(pk=lot.pk).update(remaining=remaining)
    owed = max(-balance, 0)
    if owed != account.points_owed:
        account.points_owed = owed
        account.save(update_fields=["points_owed"])
