"""The arithmetic of the program, vectorised, so that one order at the counter and ten million order lines of a
backfill go through the same code: earn rates and multipliers, expiry dates, member numbers and codes, FIFO."""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field

import numpy as np

SEOUL_OFFSET_S = 9 * 3600  # Korea has kept UTC+9 without daylight saving since 1988
DAY_S = 86_400
INT64_MAX = np.iinfo(np.int64).max
# rate (per 10,000) × category (%) × promotion (%) → the divisor that brings the product back to points
EARN_DIVISOR = 10_000 * 100 * 100
CODE_ALPHABET = np.array(list("23456789ABCDEFGHJKMNPQRSTUVWXYZ"))  # no 0/O, 1/I/L: read aloud and typed at a counter


@dataclass(frozen=True)
class Promo:
    unit_id: int | None
    category_id: int | None
    starts_s: int
    ends_s: int
    multiplier_pct: int


@dataclass
class EarnConfig:
    default_rate_bp: int
    unit_rates: dict[int, int] = field(default_factory=dict)
    category_pct: dict[int, int] = field(default_factory=dict)
    promotions: list[Promo] = field(default_factory=list)


def lookup(keys: np.ndarray, mapping: dict[int, int], default: int) -> np.ndarray:
    """mapping[key] for each key (default when absent), without a Python loop over the keys."""
    keys = np.asarray(keys, dtype=np.int64)
    out = np.full(len(keys), default, dtype=np.int64)
    if not mapping or len(keys) == 0:
        return out
    known = np.array(sorted(mapping), dtype=np.int64)
    values = np.array([mapping[k] for k in known.tolist()], dtype=np.int64)
    position = np.clip(np.searchsorted(known, keys), 0, len(known) - 1)
    hit = known[position] == keys
    out[hit] = values[position[hit]]
    return out


def line_points(amount: np.ndarray, unit_id: np.ndarray, category_id: np.ndarray, at_s: np.ndarray,
                config: EarnConfig) -> np.ndarray:
    """Points of each (order, category) amount before the tier multiplier, rounded down."""
    amount = np.asarray(amount, dtype=np.int64)
    rate = lookup(unit_id, config.unit_rates, config.default_rate_bp)
    category = lookup(category_id, config.category_pct, 100)
    promo = np.full(len(amount), 100, dtype=np.int64)
    for p in config.promotions:
        applies = (at_s >= p.starts_s) & (at_s < p.ends_s)
        if p.unit_id is not None:
            applies &= unit_id == p.unit_id
        if p.category_id is not None:
            applies &= category_id == p.category_id
        promo = np.where(applies, np.maximum(promo, p.multiplier_pct), promo)
    factor = rate * category * promo  # at most 10,000 × 1,000 × 1,000
    safe = np.abs(amount) <= INT64_MAX // np.maximum(factor, 1)
    points = np.zeros(len(amount), dtype=np.int64)
    points[safe] = amount[safe] * factor[safe] // EARN_DIVISOR
    for i in np.flatnonzero(~safe):  # a line worth billions: exact in Python integers
        points[i] = min(int(amount[i]) * int(factor[i]) // EARN_DIVISOR, int(INT64_MAX))
    return points


def order_points(order_id: np.ndarray, base: np.ndarray, tier_pct_of_order: np.ndarray | None = None):
    """Sum the per-category points of each order (rows sorted by order) and apply the tier multiplier.

    Returns (index of each order's first row, points per order)."""
    order_id = np.asarray(order_id, dtype=np.int64)
    if len(order_id) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, order_id[1:] != order_id[:-1]])
    total = np.add.reduceat(np.asarray(base, dtype=np.int64), starts)
    if tier_pct_of_order is not None:
        total = total * np.asarray(tier_pct_of_order, dtype=np.int64) // 100
    return starts, np.maximum(total, 0)


def expiry_seconds(earned_s: np.ndarray, months: int) -> np.ndarray:
    """Points earned at these instants expire at the end of the same calendar day (Seoul) ``months`` later; a day
    the target month lacks (31 → 30 April) is the last day of that month."""
    earned_s = np.asarray(earned_s, dtype=np.int64)
    local_day = ((earned_s + SEOUL_OFFSET_S) // DAY_S).astype("datetime64[D]")
    month = local_day.astype("datetime64[M]")
    day_index = (local_day - month.astype("datetime64[D]")).astype(np.int64)
    target = month + np.timedelta64(int(months), "M")
    month_length = ((target + np.timedelta64(1, "M")).astype("datetime64[D]") - target.astype("datetime64[D]")).astype(np.int64)
    day = target.astype("datetime64[D]") + np.minimum(day_index, month_length - 1).astype("timedelta64[D]")
    next_midnight_local = (day + np.timedelta64(1, "D")).astype(np.int64) * DAY_S
    return next_midnight_local - SEOUL_OFFSET_S


def luhn_digit(payload: np.ndarray) -> np.ndarray:
    """The Luhn check digit of each row of digits (most significant first)."""
    reversed_digits = np.asarray(payload, dtype=np.int64)[:, ::-1].copy()
    reversed_digits[:, 0::2] *= 2
    reversed_digits = np.where(reversed_digits > 9, reversed_digits - 9, reversed_digits)
    return (10 - reversed_digits.sum(axis=1) % 10) % 10


def is_member_number(text: str) -> bool:
    if len(text) != 12 or not text.isdigit():
        return False
    digits = np.array([[int(c) for c in text]], dtype=np.int64)
    return int(luhn_digit(digits[:, :11])[0]) == int(digits[0, 11])


def normalize_member_number(raw: str) -> str:
    """What a clerk types or a scanner sends ("1234 5678 9012", "1234-5678-9012") → 12 digits, or ""."""
    digits = "".join(ch for ch in (raw or "") if ch.isdigit())
    return digits if is_member_number(digits) else ""


def display_member_number(number: str) -> str:
    return " ".join(number[i:i + 4] for i in range(0, len(number), 4))


def _rng() -> np.random.Generator:
    return np.random.default_rng(secrets.randbits(128))


def new_member_numbers(count: int) -> list[str]:
    """Random 12-digit numbers with a Luhn check digit: not guessable from a neighbour's, typo-checked when typed."""
    rng = _rng()
    payload = rng.integers(0, 10, size=(count, 11))
    payload[:, 0] = rng.integers(1, 10, size=count)
    digits = np.concatenate([payload, luhn_digit(payload)[:, None]], axis=1)
    text = digits.astype("U1")
    return ["".join(row) for row in text.tolist()]


def new_codes(count: int, length: int) -> list[str]:
    rng = _rng()
    letters = CODE_ALPHABET[rng.integers(0, len(CODE_ALPHABET), size=(count, length))]
    return ["".join(row) for row in letters.tolist()]


def consume_fifo(lots: list[list[int]], points: int) -> int:
    """Take up to ``points`` from ``lots`` ([lot_id, remaining] in spending order), in place; returns what was taken."""
    taken = 0
    for lot in lots:
        if taken >= points:
            break
        take = min(lot[1], points - taken)
        lot[1] -= take
        taken += take
    return taken


def reversal_points(earned: int, already_reversed: int, refund_total: int, sale_total: int) -> int:
    """The points a refund takes back: the earned points in proportion to the refunded amount (rounded half up), never
    more than what has not been reversed yet."""
    left = earned - already_reversed
    if left <= 0:
        return 0
    if sale_total <= 0:
        return left
    share = (earned * abs(refund_total) * 2 + sale_total) // (2 * sale_total)
    return max(0, min(left, share))
