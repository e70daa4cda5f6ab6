"""Stamp cards: N stamps per qualifying purchase (or per item of chosen products), a coupon in the wallet at the
target, stamps that expire, one tap at the counter, refunds that take stamps back.

The ledger follows the points' rules (``models.StampEntry``/``StampLot``):
- entries are immutable; the stamps on a customer's card are the sum of its entries;
- every change of a customer's stamp lots holds the customer's loyalty ``Account`` row lock (SELECT … FOR UPDATE),
  the same lock the points take, so concurrent taps, purchases, refunds and the expiry job take turns per customer:
  no stamp is lost or counted twice;
- per customer and card ``sum(entries) == sum(lots.remaining) - owed``, where ``owed`` (stamps of a refunded purchase
  that had already turned into a reward) is not stored but follows from the two sums, and is paid by the next stamps;
- a sale stamps once and its refund takes back once (unique per order and kind), a tap sent twice with the same
  request id stamps once.

Orders earn set-based (one counter sale or a whole imported file: one SQL selection, the rows written in bulk);
rewards are issued per customer who reached the target (a few of them per batch).

Events emitted: ``stamp_card_completed(customer_id, card_id, coupon_ids)`` inside the writing transaction.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Min, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from dangol.core import audit, bulk, events
from dangol.core.audit import Actor
from dangol.core.bulk import Rows, Timestamps
from dangol.core.models import BusinessUnit
from dangol.customers.models import Customer, Interaction

from . import db, rules
from .earning import _id_filters, ensure_accounts
from .models import TIMELINE_KIND, CouponSource, StampBasis, StampCard, StampEntry, StampKind, StampLot
from .wallet import issue_coupons

DAY_S = 86_400


@dataclass
class StampResult:
    """What a tap (or a purchase) did to the customer's card."""

    entry: StampEntry | None
    card: StampCard
    stamps: int  # on the card now, after any reward
    target: int
    coupon_ids: list[int] = field(default_factory=list)
    replayed: bool = False  # the same request id was sent before: nothing new was written


@dataclass
class StampsApplied:
    earned_orders: int = 0
    earned_stamps: int = 0
    reversed_orders: int = 0
    reversed_stamps: int = 0
    rewards: int = 0
    customers: set[int] = field(default_factory=set)


# --- reads -------------------------------------------------------------------------------------------------------------

def active_card(unit: BusinessUnit | int | None) -> StampCard | None:
    unit_id = unit.pk if isinstance(unit, BusinessUnit) else unit
    if unit_id is None:
        return None
    return StampCard.objects.filter(unit_id=unit_id, is_active=True).select_related("reward", "unit").first()


def active_card_by_id(card_id: int) -> StampCard | None:
    return StampCard.objects.filter(pk=card_id, is_active=True).select_related("reward", "unit").first()


@dataclass
class CardState:
    card: StampCard
    stamps: int
    target: int
    owed: int
    next_expiry: dt.datetime | None
    expiring: int  # stamps that expire at next_expiry
    rewards: int  # rewards issued so far

    @property
    def slots(self) -> list[bool]:
        """One box per stamp of the target, filled for the stamps collected (a full card shows full)."""
        filled = min(self.stamps, self.target)
        return [i < filled for i in range(self.target)]

    @property
    def to_go(self) -> int:
        return max(0, self.target - self.stamps)


def card_states(customer_id: int, *, unit_ids: Sequence[int] | None = None, now: dt.datetime | None = None,
                with_empty: bool = True) -> list[CardState]:
    """The customer's stamp cards: the active cards of ``unit_ids`` (every unit when None) and any card the customer
    holds stamps on. ``with_empty`` False leaves out cards without a stamp or a reward (the member card page)."""
    now = now or timezone.now()
    cards = StampCard.objects.filter(is_active=True)
    if unit_ids is not None:
        cards = cards.filter(unit_id__in=list(unit_ids))
    held = set(StampLot.objects.filter(customer_id=customer_id).values_list("card_id", flat=True).distinct())
    wanted = {c.pk: c for c in cards.select_related("reward", "unit")}
    missing = held - set(wanted)
    if missing:
        wanted.update({c.pk: c for c in StampCard.objects.filter(pk__in=missing).select_related("reward", "unit")})
    if not wanted:
        return []
    entries = dict(StampEntry.objects.filter(customer_id=customer_id, card_id__in=list(wanted)).order_by()
                   .values("card_id").annotate(n=Sum("stamps")).values_list("card_id", "n"))
    rewards = dict(StampEntry.objects.filter(customer_id=customer_id, card_id__in=list(wanted), kind=StampKind.REWARD).order_by()
                   .values("card_id").annotate(n=Count("id")).values_list("card_id", "n"))
    lots = StampLot.objects.filter(customer_id=customer_id, card_id__in=list(wanted), remaining__gt=0).order_by()
    all_remaining = dict(lots.values("card_id").annotate(n=Sum("remaining")).values_list("card_id", "n"))
    live = lots.filter(expires_at__gt=now)
    open_remaining = dict(live.values("card_id").annotate(n=Sum("remaining")).values_list("card_id", "n"))
    first = dict(live.values("card_id").annotate(at=Min("expires_at")).values_list("card_id", "at"))
    expiring = defaultdict(int)
    for card_id, at, remaining in live.filter(expires_at__in=list(first.values())).values_list("card_id", "expires_at", "remaining"):
        if first.get(card_id) == at:
            expiring[card_id] += remaining
    states = []
    for card in sorted(wanted.values(), key=lambda c: (c.unit.name, c.name)):
        owed = max(0, int(all_remaining.get(card.pk, 0)) - int(entries.get(card.pk, 0)))
        stamps = max(0, int(open_remaining.get(card.pk, 0)) - owed)
        state = CardState(card=card, stamps=stamps, target=card.target, owed=owed, next_expiry=first.get(card.pk),
                          expiring=expiring.get(card.pk, 0), rewards=int(rewards.get(card.pk, 0)))
        if with_empty or state.stamps or state.rewards or state.owed:
            states.append(state)
    return states


def entries_of(customer_id: int, limit: int = 20):
    return list(StampEntry.objects.filter(customer_id=customer_id).select_related("card", "unit", "coupon")
                .order_by("-at", "-id")[:limit])


# --- the locked core -----------------------------------------------------------------------------------------------------

def _lock(customer_id: int) -> None:
    """The customer's loyalty Account row lock (created first when needed): points and stamps share it."""
    from .services import _lock_account

    _lock_account(customer_id)


def _sums(customer_id: int, card_id: int, now: dt.datetime) -> tuple[int, int, int]:
    """(sum of entries, sum of every lot's remaining, remaining of the lots not past their date)."""
    rows = db.fetch(
        f"SELECT (SELECT COALESCE(SUM(stamps), 0) FROM {StampEntry._meta.db_table} WHERE customer_id = %s AND card_id = %s), "
        f"(SELECT COALESCE(SUM(remaining), 0) FROM {StampLot._meta.db_table} WHERE customer_id = %s AND card_id = %s AND remaining > 0), "
        f"(SELECT COALESCE(SUM(remaining), 0) FROM {StampLot._meta.db_table} WHERE customer_id = %s AND card_id = %s AND remaining > 0 "
        f"AND expires_at > %s)",
        [customer_id, card_id, customer_id, card_id, customer_id, card_id, db.sql_time(now)])
    return tuple(int(v) for v in rows[0])


def _expire_due_locked(customer_id: int, card_id: int, now: dt.datetime) -> int:
    """Close this customer's lots of the card that are past their date (the job may not have run yet)."""
    due = list(StampLot.objects.filter(customer_id=customer_id, card_id=card_id, remaining__gt=0, expires_at__lte=now))
    for lot in due:
        StampEntry.objects.create(customer_id=customer_id, card_id=card_id, kind=StampKind.EXPIRE, stamps=-lot.remaining,
                                  at=lot.expires_at, created_at=now, lot=lot, via="schedule")
    if due:
        StampLot.objects.filter(pk__in=[lot.pk for lot in due]).update(remaining=0)
    return sum(lot.remaining for lot in due)


def _take(customer_id: int, card_id: int, stamps: int, *, first_lot: int | None = None) -> int:
    """Take stamps from the open lots, ``first_lot`` first, then first to expire first. Returns what was taken."""
    lots = list(StampLot.objects.filter(customer_id=customer_id, card_id=card_id, remaining__gt=0)
                .order_by("expires_at", "pk").values_list("pk", "remaining"))
    if first_lot is not None:
        lots.sort(key=lambda lot: lot[0] != first_lot)  # stable: the rest keep their order
    pairs = [[pk, remaining] for pk, remaining in lots]
    taken = rules.consume_fifo(pairs, stamps)
    for (pk, before), (_pk, after) in zip(lots, pairs):
        if after != before:
            StampLot.objects.filter(pk=pk).update(remaining=after)
    return taken


def _reward_locked(customer_id: int, card: StampCard, now: dt.datetime, *, unit_id: int | None = None) -> list[int]:
    """Turn every full card's worth of stamps into a reward coupon. The account is locked by the caller."""
    total, all_remaining, live = _sums(customer_id, card.pk, now)
    owed = max(0, all_remaining - total)
    rewards = max(0, live - owed) // card.target
    if not rewards:
        return []
    taken = _take(customer_id, card.pk, rewards * card.target)
    assert taken == rewards * card.target, "the open lots hold what the sums say"
    coupon_ids = issue_coupons(template=card.reward, customer_ids=[customer_id] * rewards, source=CouponSource.STAMPS,
                               source_ref=f"stampcard:{card.pk}", now=now)
    StampEntry.objects.bulk_create([
        StampEntry(customer_id=customer_id, card_id=card.pk, kind=StampKind.REWARD, stamps=-card.target, at=now, created_at=now,
                   unit_id=unit_id, coupon_id=coupon_id, via="loyalty", reason=card.reward.name[:300])
        for coupon_id in coupon_ids])
    Interaction.objects.create(
        customer_id=customer_id, kind=TIMELINE_KIND, occurred_at=now, unit_id=card.unit_id,
        # Two messages rather than ngettext: the singular names no count, which gettext's plural check refuses.
        summary=((_("Stamp card %(card)s complete: %(reward)s in the wallet") if rewards == 1 else
                  _("Stamp card %(card)s complete %(n)s times: %(n)s × %(reward)s in the wallet"))
                 % {"card": card.name, "reward": card.reward.name, "n": rewards})[:300],
        ref_type="loyalty.stampcard", ref_id=card.pk)
    events.emit("stamp_card_completed", customer_id=customer_id, card_id=card.pk, coupon_ids=coupon_ids)
    return coupon_ids


def _new_lot(entry: StampEntry, card: StampCard, owed: int) -> StampLot:
    pay = min(owed, entry.stamps)
    return StampLot.objects.create(entry=entry, customer_id=entry.customer_id, card=card, stamps=entry.stamps,
                                   remaining=entry.stamps - pay, earned_at=entry.at,
                                   expires_at=entry.at + dt.timedelta(days=card.validity_days))


# --- one tap at the counter ----------------------------------------------------------------------------------------------

def _check_count(value, card: StampCard) -> int:
    if type(value) is not int:
        raise ValidationError({"stamps": [_("Enter a whole number of stamps.")]})
    if not 1 <= value <= card.max_per_tap:
        raise ValidationError({"stamps": [_("Give between 1 and %(max)s stamps at a time.") % {"max": card.max_per_tap}]})
    return value


@transaction.atomic
def stamp(*, actor: Actor, customer: Customer, unit: BusinessUnit | None, stamps=1, idempotency_key: str = "",
          note: str = "", now: dt.datetime | None = None) -> StampResult:
    """Stamp the customer's card of this unit at the counter (one tap: one stamp by default). Holds the customer's
    account row lock; a tap sent again with the same request id returns the first one and writes nothing."""
    errors: dict[str, list[str]] = {}
    card = active_card(unit) if unit is not None and unit.is_active else None
    if unit is None or not unit.is_active:
        errors["unit"] = [_("Choose the business unit where the customer bought.")]
    elif card is None:
        errors["unit"] = [_("%(unit)s runs no stamp card.") % {"unit": unit.name}]
    else:
        try:
            stamps = _check_count(stamps, card)
        except ValidationError as exc:
            errors.update(exc.message_dict)
    idempotency_key = (idempotency_key or "").strip()
    if len(idempotency_key) > 64:
        errors["idempotency_key"] = [_("A request id has at most 64 characters.")]
    if errors:
        raise ValidationError(errors)
    from .services import live_customer

    customer = live_customer(customer)
    now = now or timezone.now()
    _lock(customer.pk)
    if idempotency_key:
        # Looked up under the lock: a second copy of the tap waits for the first and then finds its entry.
        earlier = StampEntry.objects.filter(idempotency_key=idempotency_key).first()
        if earlier is not None:
            if earlier.kind != StampKind.EARN or earlier.customer_id != customer.pk or earlier.card_id != card.pk \
                    or earlier.stamps != stamps:
                raise ValidationError({"idempotency_key": [_("This request id was already used for another entry.")]})
            total, all_remaining, live = _sums(customer.pk, card.pk, now)
            return StampResult(entry=earlier, card=card, stamps=max(0, live - max(0, all_remaining - total)),
                               target=card.target, replayed=True)
    _expire_due_locked(customer.pk, card.pk, now)
    total, all_remaining, _live = _sums(customer.pk, card.pk, now)
    entry = StampEntry.objects.create(
        customer_id=customer.pk, card=card, kind=StampKind.EARN, stamps=stamps, at=now, created_at=now, unit_id=unit.pk,
        reason=(note or "").strip()[:300], created_by=actor.user, via=(actor.via or "system")[:20],
        idempotency_key=idempotency_key)
    _new_lot(entry, card, max(0, all_remaining - total))
    coupon_ids = _reward_locked(customer.pk, card, now, unit_id=unit.pk)
    total, all_remaining, live = _sums(customer.pk, card.pk, now)
    on_card = max(0, live - max(0, all_remaining - total))
    Interaction.objects.create(
        customer_id=customer.pk, kind=TIMELINE_KIND, occurred_at=now, unit_id=unit.pk, created_by=actor.user,
        summary=(ngettext("+%(n)s stamp on %(card)s (%(have)s/%(target)s)", "+%(n)s stamps on %(card)s (%(have)s/%(target)s)",
                          stamps) % {"n": stamps, "card": card.name, "have": on_card, "target": card.target})[:300],
        ref_type="loyalty.stampentry", ref_id=entry.pk)
    audit.record(actor=actor, action="loyalty.stamp", obj=customer, fields=["stamps"])
    return StampResult(entry=entry, card=card, stamps=on_card, target=card.target, coupon_ids=coupon_ids)


# --- purchases and refunds, set-based --------------------------------------------------------------------------------------

def _earn_selection(condition: str, params: list) -> list[tuple]:
    """(order, customer, unit, epoch of the order, card, stamps) of the sales under ``condition`` that qualify on their
    unit's active card and have not stamped yet."""
    entries, cards = StampEntry._meta.db_table, StampCard._meta.db_table
    products = StampCard.products.through._meta.db_table
    categories = StampCard.categories.through._meta.db_table
    common = (f"{condition} AND o.kind = 'sale' AND o.needs_review = %s AND o.customer_id IS NOT NULL "
              f"AND c.is_active = %s AND o.total >= c.min_amount_krw AND o.ordered_at >= c.starts_at "
              f"AND NOT EXISTS (SELECT 1 FROM {entries} e WHERE e.order_id = o.id AND e.kind = 'earn')")
    per_purchase = db.fetch(
        f"SELECT o.id, o.customer_id, o.unit_id, {db.epoch('o.ordered_at')}, c.id, c.stamps FROM sales_order o "
        f"JOIN {cards} c ON c.unit_id = o.unit_id WHERE {common} AND c.basis = %s",
        [*params, False, True, StampBasis.PURCHASE.value])
    per_item = db.fetch(
        f"SELECT o.id, o.customer_id, o.unit_id, {db.epoch('o.ordered_at')}, c.id, c.stamps * SUM(l.quantity) FROM sales_order o "
        f"JOIN {cards} c ON c.unit_id = o.unit_id "
        f"JOIN sales_orderline l ON l.order_id = o.id JOIN sales_product p ON p.id = l.product_id "
        f"WHERE {common} AND c.basis = %s "
        f"AND (EXISTS (SELECT 1 FROM {products} cp WHERE cp.stampcard_id = c.id AND cp.product_id = p.id) "
        f"     OR EXISTS (SELECT 1 FROM {categories} cc WHERE cc.stampcard_id = c.id AND cc.category_id = p.category_id)) "
        f"GROUP BY o.id, o.customer_id, o.unit_id, o.ordered_at, c.id, c.stamps HAVING SUM(l.quantity) > 0",
        [*params, False, True, StampBasis.ITEM.value])
    return per_purchase + per_item


def _owed_by_pair(customers: Sequence[int]) -> dict[tuple[int, int], int]:
    """Stamps owed per (customer, card) of these customers (usually none)."""
    owed: dict[tuple[int, int], int] = {}
    for part in db.chunks(sorted(set(customers))):
        marks = db.placeholders(len(part))
        rows = db.fetch(
            f"SELECT customer_id, card_id, SUM(v) FROM ("
            f" SELECT customer_id, card_id, remaining AS v FROM {StampLot._meta.db_table} WHERE remaining > 0 AND customer_id IN ({marks})"
            f" UNION ALL SELECT customer_id, card_id, -stamps FROM {StampEntry._meta.db_table} WHERE customer_id IN ({marks})"
            f") x GROUP BY customer_id, card_id HAVING SUM(v) > 0", [*part, *part])
        owed.update({(c, k): int(v) for c, k, v in rows})
    return owed


def _earn_chunk(condition: str, params: list, *, now: dt.datetime, via: str, user_id: int | None, timeline: bool) -> StampsApplied:
    rows = _earn_selection(condition, params)
    result = StampsApplied()
    if not rows:
        return result
    matrix = np.array(sorted(rows), dtype=np.int64)
    orders, customers, units, at_s, card_ids, stamps = (matrix[:, i] for i in range(6))
    count = len(orders)
    ensure_accounts(customers.tolist(), now)
    db.lock_accounts(customers.tolist())
    cards = {c.pk: c for c in StampCard.objects.filter(pk__in=set(card_ids.tolist())).select_related("reward")}
    validity = np.array([cards[int(k)].validity_days for k in card_ids.tolist()], dtype=np.int64)
    remaining = stamps.copy()
    owed = _owed_by_pair(customers.tolist())
    owing = np.array(sorted({customer for customer, _card in owed}), dtype=np.int64)
    for index in np.flatnonzero(np.isin(customers, owing)).tolist() if owed else ():  # the few who owe stamps
        key = (int(customers[index]), int(card_ids[index]))
        if owed.get(key):
            pay = min(owed[key], int(remaining[index]))
            remaining[index] -= pay
            owed[key] -= pay
    ids = db.allocate_ids(StampEntry, count)
    now_s = int(now.timestamp())
    with bulk.without_row_triggers():
        bulk.write(Rows(StampEntry, count, {
            "id": ids, "customer": customers, "card": card_ids, "kind": StampKind.EARN.value, "stamps": stamps,
            "at": Timestamps(at_s), "created_at": Timestamps(np.full(count, now_s)), "unit": units, "order": orders,
            "reverses": None, "lot": None, "coupon": None, "reason": "", "created_by": user_id, "via": via[:20],
            "idempotency_key": "",
        }))
        bulk.write(Rows(StampLot, count, {
            "entry": ids, "customer": customers, "card": card_ids, "stamps": stamps, "remaining": remaining,
            "earned_at": Timestamps(at_s), "expires_at": Timestamps(at_s + validity * DAY_S),
        }))
    if timeline:
        bulk.write(Rows(Interaction, count, {
            "customer": customers, "kind": TIMELINE_KIND, "occurred_at": Timestamps(at_s), "unit": units, "channel": "",
            "summary": [(ngettext("+%(n)s stamp on %(card)s", "+%(n)s stamps on %(card)s", int(n))
                         % {"n": int(n), "card": cards[int(k)].name})[:300] for n, k in zip(stamps.tolist(), card_ids.tolist())],
            "body": "", "amount": None, "ref_type": "loyalty.stampentry", "ref_id": ids, "created_by": user_id,
        }))
    result.earned_orders, result.earned_stamps = count, int(stamps.sum())
    result.customers = set(customers.tolist())
    result.rewards = _rewards_due(sorted({(int(c), int(k)) for c, k in zip(customers.tolist(), card_ids.tolist())}), cards, now)
    return result


def _rewards_due(pairs: list[tuple[int, int]], cards: dict[int, StampCard], now: dt.datetime) -> int:
    """Issue the rewards of the (customer, card) pairs that reached the target. One query finds them; only those are
    handled one by one (their accounts are locked already)."""
    issued = 0
    by_card: dict[int, list[int]] = defaultdict(list)
    for customer, card_id in pairs:
        by_card[card_id].append(customer)
    for card_id, customers in by_card.items():
        card = cards[card_id]
        for part in db.chunks(customers):
            marks = db.placeholders(len(part))
            full = db.fetch(
                f"SELECT customer_id FROM {StampLot._meta.db_table} WHERE card_id = %s AND remaining > 0 AND expires_at > %s "
                f"AND customer_id IN ({marks}) GROUP BY customer_id HAVING SUM(remaining) >= %s",
                [card_id, db.sql_time(now), *part, card.target])
            for (customer,) in full:
                _expire_due_locked(customer, card_id, now)
                issued += len(_reward_locked(customer, card, now, unit_id=card.unit_id))
    return issued


def _reverse_chunk(condition: str, params: list, *, now: dt.datetime, via: str, user_id: int | None,
                   timeline: bool) -> StampsApplied:
    entries = StampEntry._meta.db_table
    rows = db.fetch(f"""
        SELECT r.id, e.customer_id, r.unit_id, r.total, s.total, e.id, e.stamps, e.card_id,
               COALESCE((SELECT SUM(x.stamps) FROM {entries} x WHERE x.reverses_id = e.id), 0), {db.epoch('r.ordered_at')}
        FROM sales_order r
        JOIN sales_order s ON s.id = r.refund_of_id
        JOIN {entries} e ON e.order_id = s.id AND e.kind = 'earn'
        WHERE {condition} AND r.kind = 'refund' AND r.needs_review = %s
          AND NOT EXISTS (SELECT 1 FROM {entries} x WHERE x.order_id = r.id AND x.kind = 'reverse')
        ORDER BY r.id""", [*params, False])
    todo = []
    for refund_id, customer, unit, refund_total, sale_total, earn_id, earned, card_id, already, at_s in rows:
        back = rules.reversal_points(int(earned), -int(already), int(refund_total), int(sale_total))
        if back > 0:
            todo.append((refund_id, customer, unit, earn_id, back, card_id, at_s))
    if not todo:
        return StampsApplied()
    db.lock_accounts(sorted({row[1] for row in todo}))
    for _refund, customer, _unit, earn_id, back, card_id, _at in todo:
        # The refunded sale's own lot gives back first; what was already rewarded becomes owed (the next stamps pay).
        _take(customer, card_id, back, first_lot=earn_id)
    count = len(todo)
    ids = db.allocate_ids(StampEntry, count)
    column = lambda i: np.array([row[i] for row in todo], dtype=np.int64)  # noqa: E731
    customers, units, backs, at_s = column(1), column(2), column(4), column(6)
    with bulk.without_row_triggers():
        bulk.write(Rows(StampEntry, count, {
            "id": ids, "customer": customers, "card": column(5), "kind": StampKind.REVERSE.value, "stamps": -backs,
            "at": Timestamps(at_s), "created_at": Timestamps(np.full(count, int(now.timestamp()))), "unit": units,
            "order": column(0), "reverses": column(3), "lot": None, "coupon": None, "reason": "", "created_by": user_id,
            "via": via[:20], "idempotency_key": "",
        }))
        if timeline:
            bulk.write(Rows(Interaction, count, {
                "customer": customers, "kind": TIMELINE_KIND, "occurred_at": Timestamps(at_s), "unit": units, "channel": "",
                "summary": [(ngettext("−%(n)s stamp: refund", "−%(n)s stamps: refund", int(n)) % {"n": int(n)})[:300]
                            for n in backs.tolist()],
                "body": "", "amount": None, "ref_type": "loyalty.stampentry", "ref_id": ids, "created_by": user_id,
            }))
    return StampsApplied(reversed_orders=count, reversed_stamps=int(backs.sum()), customers=set(customers.tolist()))


def apply_orders(*, order_ids: Sequence[int] | None = None, id_range: tuple[int, int] | None = None, via: str,
                 user_id: int | None = None, now: dt.datetime | None = None, timeline: bool = False) -> StampsApplied:
    """Stamp the qualifying sales and take back for the refunds among these orders that were not applied yet. Call
    inside a transaction. Without any stamp card nothing is read."""
    result = StampsApplied()
    if not StampCard.objects.exists():
        return result
    now = now or timezone.now()
    for condition, params in _id_filters("o.id", order_ids, id_range):
        part = _earn_chunk(condition, params, now=now, via=via, user_id=user_id, timeline=timeline)
        result.earned_orders += part.earned_orders
        result.earned_stamps += part.earned_stamps
        result.rewards += part.rewards
        result.customers |= part.customers
    for condition, params in _id_filters("r.id", order_ids, id_range):
        part = _reverse_chunk(condition, params, now=now, via=via, user_id=user_id, timeline=timeline)
        result.reversed_orders += part.reversed_orders
        result.reversed_stamps += part.reversed_stamps
        result.customers |= part.customers
    return result


def on_order_recorded(*, order, actor: Actor | None = None) -> None:
    """``order_recorded``: a sale at a unit with a stamp card stamps, a refund takes its sale's stamps back."""
    if order.customer_id is None or order.needs_review:
        return
    actor = actor or Actor.system("sales")
    apply_orders(order_ids=[order.pk], via=actor.via, user_id=actor.user.pk if actor.user else None, timeline=True)


def on_orders_imported(*, unit_id: int, order_ids: list[int]) -> None:
    apply_orders(order_ids=order_ids, via="import")


def on_orders_accepted(*, order_ids: list[int], actor: Actor | None = None) -> None:
    apply_orders(order_ids=order_ids, via=(actor.via if actor else "review"),
                 user_id=actor.user.pk if actor and actor.user else None, timeline=True)


# --- expiry ------------------------------------------------------------------------------------------------------------

def expire_due_stamps(*, now: dt.datetime | None = None, batch: int = 20_000) -> int:
    """Close every stamp lot past its date (one ``expire`` entry per lot), in batches of customers under their account
    locks. Returns the number of stamps expired."""
    now = now or timezone.now()
    lots = StampLot._meta.db_table
    due = [r[0] for r in db.fetch(f"SELECT DISTINCT customer_id FROM {lots} WHERE remaining > 0 AND expires_at <= %s "
                                  f"ORDER BY customer_id", [db.sql_time(now)])]
    expired = 0
    for customers in db.chunks(due, batch):
        with transaction.atomic():
            db.lock_accounts(customers)
            for part in db.chunks(list(customers)):
                marks = db.placeholders(len(part))
                rows = db.fetch(f"SELECT entry_id, customer_id, card_id, remaining, {db.epoch('expires_at')} FROM {lots} "
                                f"WHERE remaining > 0 AND expires_at <= %s AND customer_id IN ({marks}) ORDER BY entry_id",
                                [db.sql_time(now), *part])
                if not rows:
                    continue
                matrix = np.array(rows, dtype=np.int64)
                count = len(matrix)
                bulk.write(Rows(StampEntry, count, {
                    "id": db.allocate_ids(StampEntry, count), "customer": matrix[:, 1], "card": matrix[:, 2],
                    "kind": StampKind.EXPIRE.value, "stamps": -matrix[:, 3], "at": Timestamps(matrix[:, 4]),
                    "created_at": Timestamps(np.full(count, int(now.timestamp()))), "unit": None, "order": None,
                    "reverses": None, "lot": matrix[:, 0], "coupon": None, "reason": "", "created_by": None,
                    "via": "schedule", "idempotency_key": "",
                }))
                # The rows just read: the account locks keep everyone else off them.
                db.execute(f"UPDATE {lots} SET remaining = 0 WHERE remaining > 0 AND expires_at <= %s AND customer_id IN ({marks})",
                           [db.sql_time(now), *part])
                expired += int(matrix[:, 3].sum())
    return expired


# --- merges --------------------------------------------------------------------------------------------------------------

def on_customers_merged(*, survivor, merged, merge, moved: dict) -> None:
    """The merged record's stamp entries and lots move to the survivor (ids kept in ``moved`` for the undo)."""
    entry_ids = sorted(StampEntry.objects.filter(customer_id=merged.pk).values_list("pk", flat=True))
    if not entry_ids:
        return
    from .services import _lock_pair

    _lock_pair(survivor.pk, merged.pk)
    lot_ids = sorted(StampLot.objects.filter(customer_id=merged.pk).values_list("pk", flat=True))
    for part in db.chunks(entry_ids):
        StampEntry.objects.filter(pk__in=part).update(customer_id=survivor.pk)
    for part in db.chunks(lot_ids):
        StampLot.objects.filter(pk__in=part).update(customer_id=survivor.pk)
    moved["loyalty_stamp_entries"], moved["loyalty_stamp_lots"] = entry_ids, lot_ids
    for card in StampCard.objects.filter(pk__in=StampLot.objects.filter(customer_id=survivor.pk).values("card_id")):
        _reward_locked(survivor.pk, card, timezone.now())


def on_customers_unmerged(*, survivor, merged, merge, moved: dict) -> None:
    entry_ids, lot_ids = moved.get("loyalty_stamp_entries") or [], moved.get("loyalty_stamp_lots") or []
    if not entry_ids:
        return
    from .services import _lock_pair

    _lock_pair(survivor.pk, merged.pk)
    for part in db.chunks(entry_ids):
        StampEntry.objects.filter(pk__in=part, customer_id=survivor.pk).update(customer_id=merged.pk)
    for part in db.chunks(lot_ids):
        StampLot.objects.filter(pk__in=part, customer_id=survivor.pk).update(customer_id=merged.pk)
    for customer_id in (survivor.pk, merged.pk):
        _rebalance(customer_id)


def _rebalance(customer_id: int) -> None:
    """Make each card's open lots agree with its entries again (rows moved back by an undone merge): the stamps are
    kept in the lots that expire last; a negative sum is owed."""
    sums = dict(StampEntry.objects.filter(customer_id=customer_id).order_by().values("card_id").annotate(n=Sum("stamps"))
                .values_list("card_id", "n"))
    closed = StampEntry.objects.filter(kind=StampKind.EXPIRE, lot__isnull=False, customer_id=customer_id).values("lot_id")
    for card_id, total in sums.items():
        left = max(int(total), 0)
        for lot in StampLot.objects.filter(customer_id=customer_id, card_id=card_id).exclude(pk__in=closed).order_by("-expires_at", "-pk"):
            remaining = min(lot.stamps, left)
            left -= remaining
            if remaining != lot.remaining:
                StampLot.objects.filter(pk=lot.pk).update(remaining=remaining)


# --- checks and figures ----------------------------------------------------------------------------------------------------

def check() -> int:
    """Pairs (customer, card) whose lots hold fewer stamps than their entries add up to (stamps lost or doubled)."""
    rows = db.fetch(
        f"SELECT customer_id, card_id, SUM(v) FROM ("
        f" SELECT customer_id, card_id, remaining AS v FROM {StampLot._meta.db_table}"
        f" UNION ALL SELECT customer_id, card_id, -stamps FROM {StampEntry._meta.db_table}"
        f") x GROUP BY customer_id, card_id HAVING SUM(v) < 0")
    return len(rows)


def stamp_kpis(*, unit_ids: Sequence[int] | None, start: dt.datetime, end: dt.datetime) -> list[dict]:
    """Per stamp card: stamps given, rewards issued and how many of those coupons were used, customers stamping, in
    [start, end). One aggregate query per figure."""
    cards = StampCard.objects.select_related("unit", "reward")
    if unit_ids is not None:
        cards = cards.filter(unit_id__in=list(unit_ids))
    cards = list(cards)
    if not cards:
        return []
    window = Q(at__gte=start, at__lt=end, card__in=cards)
    stamped = dict(StampEntry.objects.filter(window, kind=StampKind.EARN).order_by().values("card_id")
                   .annotate(n=Sum("stamps")).values_list("card_id", "n"))
    customers = dict(StampEntry.objects.filter(window, kind=StampKind.EARN).order_by().values("card_id")
                     .annotate(n=Count("customer_id", distinct=True)).values_list("card_id", "n"))
    rewards = dict(StampEntry.objects.filter(window, kind=StampKind.REWARD).order_by().values("card_id")
                   .annotate(n=Count("id")).values_list("card_id", "n"))
    used = dict(StampEntry.objects.filter(window, kind=StampKind.REWARD, coupon__status="used").order_by().values("card_id")
                .annotate(n=Count("id")).values_list("card_id", "n"))
    expired = dict(StampEntry.objects.filter(window, kind=StampKind.EXPIRE).order_by().values("card_id")
                   .annotate(n=Sum("stamps")).values_list("card_id", "n"))
    return [{"card": card, "stamps": int(stamped.get(card.pk, 0)), "customers": int(customers.get(card.pk, 0)),
             "rewards": int(rewards.get(card.pk, 0)), "rewards_used": int(used.get(card.pk, 0)),
             "expired": -int(expired.get(card.pk, 0) or 0)} for card in cards]
