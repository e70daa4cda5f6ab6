"""The deterministic demo and benchmark data of 한빛호텔 그룹: customers, their profiles, orders and timelines.

``generate(customers=1_000_000)`` writes about a million customers and ten million order lines in minutes. Everything
is drawn with vectorised numpy, one chunk of customers at a time (memory stays bounded), and written with COPY
(PostgreSQL) or ``executemany`` (SQLite) with primary keys assigned here, above the tables' current maxima.

The same ``seed``, ``end``, ``years`` and ``lines_per_customer`` (and chunk size) give the same data: every chunk
draws from its own stream ``SeedSequence(seed, spawn_key=(1, chunk))``, nothing depends on dict or set order, and the
wall clock only enters through ``end`` (default: now). Ids differ if the tables were not empty, the data does not
(except the order number quoted in a refund's timeline summary).

What is simulated, per customer: a persona (prospect, one-time visitor, occasional, regular, lapsed), the unit they
registered at and possibly a second unit they also buy at, Korean name by gender and generation, mobile number,
email, home district, birthday (some lunar), wedding anniversary, marketing consents. Purchases follow each unit's
seasons (hotels in summer and December, the bakery at weekends and Christmas), opening hours and sales channels;
products are chosen with gendered and seasonal preferences; about 3% of hotel sales are refunded, fewer elsewhere. Each order gets
its timeline entry, as ``customers.services.on_order_recorded`` would write it, and memberships and stages follow the
purchases. About 3% of the records are second registrations of a person at another unit, with the typos people
make; ``demo.GeneratedDuplicate`` holds that ground truth.
"""
from __future__ import annotations

import datetime as dt
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext

from dangol.core.models import AuditEvent
from dangol.customers.models import (
    Address,
    Anniversary,
    AnniversaryKind,
    Consent,
    ContactKind,
    ContactPoint,
    Customer,
    Interaction,
    InteractionKind,
    Membership,
    Purpose,
    Stage,
)
from dangol.sales.models import Order, OrderKind, OrderLine

from dangol.core import bulk
from dangol.core.bulk import NullableInts, Rows, Timestamps

from . import people
from .catalogue import UNITS, ReferenceData, ensure_reference_data
from .models import DuplicateVariation, GeneratedDuplicate

__all__ = ["GenerationReport", "ensure_reference_data", "generate"]

CHUNK_SIZE = 50_000  # customers per chunk; part of the seed's meaning (another size draws other people)
DUPLICATE_SHARE = 0.03
LAPSED_AFTER_DAYS = 183  # a lapsed customer has bought nothing for at least six months
REGULAR_MIN_SALES_LAST_YEAR = 6
SECONDARY_UNIT_SHARE = 0.4  # customers who also buy at a second unit of the group…
SECONDARY_UNIT_ORDER_SHARE = 0.3  # …for about a third of their orders
DISCOUNT_SHARE = 0.05  # lines sold at 10% off (member price, staff discount)
KST = 9 * 3600  # Asia/Seoul has kept UTC+9 without daylight saving since 1988
DAY = 86_400

# Personas, with their share of the (non-duplicate) customers and the relative frequency of their repeat purchases.
PROSPECT, ONE_TIME, OCCASIONAL, REGULAR, LAPSED = range(5)
PERSONA_SHARES = (0.08, 0.35, 0.35, 0.15, 0.07)
REPEAT_FREQUENCY = {OCCASIONAL: 1.0, REGULAR: 4.0, LAPSED: 1.2}
REPEAT_MINIMUM = 2  # a customer who comes back has bought at least twice
GENDERS = ("F", "M", "")  # index 2: not given
GENDER_SHARES = (0.52, 0.46, 0.02)
SALES_CHANNELS = ("store", "phone", "web", "app")
CONSENT_CHANNELS = ("sms", "kakao", "email", "post", "phone")
VARIATIONS = (DuplicateVariation.SWAPPED_SYLLABLES, DuplicateVariation.EXTRA_SPACE, DuplicateVariation.SIMILAR_SYLLABLE,
              DuplicateVariation.EMAIL_UPPERCASE, DuplicateVariation.PHONE_ONE_DIGIT)
VARIATION_SHARES = (0.25, 0.2, 0.2, 0.15, 0.2)
SWAPPED, SPACED, SIMILAR, EMAIL_UPPER, PHONE_DIGIT = range(5)

Progress = Callable[[str], None]


@dataclass
class GenerationReport:
    """What one run wrote, and how long it took: ``seconds`` in all, ``phase_seconds`` per phase (prepare: the
    catalogue and the plan; build: numpy; write: the database; finish: sequences and planner statistics)."""

    seed: int
    end: dt.datetime
    customers: int = 0
    duplicates: int = 0
    contact_points: int = 0
    addresses: int = 0
    anniversaries: int = 0
    consents: int = 0
    memberships: int = 0
    orders: int = 0  # sales and refunds
    refunds: int = 0
    order_lines: int = 0
    interactions: int = 0
    first_customer_id: int | None = None
    last_customer_id: int | None = None
    phase_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return sum(self.phase_seconds.values())

    def summary(self) -> str:
        counts = ", ".join(f"{name.replace('_', ' ')} {getattr(self, name):,}" for name in (
            "customers", "duplicates", "contact_points", "addresses", "anniversaries", "consents", "memberships",
            "orders", "refunds", "order_lines", "interactions"))
        phases = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in self.phase_seconds.items())
        return f"{counts}. Time {self.seconds:.1f}s ({phases})."


def generate(*, customers: int, seed: int = 42, years: int = 2, lines_per_customer: float = 10.0,
             end: dt.datetime | None = None, progress: Progress | None = None,
             chunk_size: int = CHUNK_SIZE) -> GenerationReport:
    """Write ``customers`` customer records (duplicates included) with about ``lines_per_customer`` order lines each,
    over the ``years`` years that end at ``end``, and return the counts and timings.

    Each chunk of ``chunk_size`` customers is one transaction and self-contained (its customers with all their rows),
    so an interrupted run leaves whole customers behind, never half of one. The ids are taken above the current
    maxima at the start: run it while nothing else writes to these tables.
    """
    if not isinstance(customers, int) or customers < 0:
        raise ValueError("customers must be a whole number, 0 or more")
    if not isinstance(years, int) or not 1 <= years <= 20:
        raise ValueError("years must be a whole number from 1 to 20")
    if not 3.0 <= lines_per_customer <= 200.0:
        raise ValueError("lines_per_customer must be between 3 and 200 (returning customers buy at least twice)")
    if chunk_size < 1:
        raise ValueError("chunk_size must be positive")
    end = (end or timezone.now()).replace(microsecond=0)
    if timezone.is_naive(end):
        raise ValueError("end must be an aware datetime")
    report = GenerationReport(seed=seed, end=end.astimezone(dt.timezone.utc))
    say = progress or (lambda message: None)

    with _phase(report, "prepare"):
        reference = ensure_reference_data()
        plan = _Plan.build(reference=reference, seed=seed, years=years, end=end, customers=customers,
                           lines_per_customer=lines_per_customer)
    say(f"Generating {customers:,} customers over {years} year(s) to {report.end:%Y-%m-%d %H:%M} UTC, "
        f"seed {seed}, {math.ceil(customers / chunk_size)} chunk(s).")
    next_free_ids = bulk.next_ids(_WRITTEN_MODELS)  # advanced by every chunk
    report.first_customer_id = next_free_ids[Customer] if customers else None
    chunk_started = time.perf_counter()
    with bulk.sqlite_large_cache():
        for chunk_index, offset in enumerate(range(0, customers, chunk_size)):
            count = min(chunk_size, customers - offset)
            with _phase(report, "build"):
                tables = _build_chunk(plan, chunk_index=chunk_index, offset=offset, count=count, ids=next_free_ids)
            with _phase(report, "write"):
                with transaction.atomic():
                    with bulk.without_row_triggers():
                        for rows in tables:
                            bulk.write(rows)
            _count(report, tables)
            say(f"  {offset + count:,}/{customers:,} customers, {report.order_lines:,} order lines, "
                f"{time.perf_counter() - chunk_started:.0f}s")
    report.last_customer_id = next_free_ids[Customer] - 1 if customers else None

    with _phase(report, "finish"):
        bulk.reset_sequences(_WRITTEN_MODELS)
        _refresh_planner_statistics()
        # One audit record for the whole load (ids first-last), not one per fictitious customer.
        id_range = f"{report.first_customer_id}-{report.last_customer_id}" if customers else ""
        AuditEvent.objects.create(actor_label="system:demo", action="demo.generate", object_type="customers.customer",
                                  object_id=id_range, via="cli")
    say(f"Done in {report.seconds:.0f}s.")
    return report


_WRITTEN_MODELS = (Customer, ContactPoint, Address, Anniversary, Consent, Membership, Order, OrderLine, Interaction,
                   GeneratedDuplicate)


@contextmanager
def _phase(report: GenerationReport, name: str):
    started = time.perf_counter()
    try:
        yield
    finally:
        report.phase_seconds[name] = report.phase_seconds.get(name, 0.0) + time.perf_counter() - started


def _refresh_planner_statistics() -> None:
    """A bulk load leaves the planner's statistics stale; refresh them for the tables written."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for model in _WRITTEN_MODELS:
                cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
        elif connection.vendor == "sqlite":
            # A sampled ANALYZE: a full one reads every index of a multi-gigabyte file.
            cursor.execute("PRAGMA analysis_limit = 1000")
            cursor.execute("ANALYZE")


_REPORT_FIELD = {
    Customer: "customers", GeneratedDuplicate: "duplicates", ContactPoint: "contact_points", Address: "addresses",
    Anniversary: "anniversaries", Consent: "consents", Membership: "memberships", Order: "orders",
    OrderLine: "order_lines", Interaction: "interactions",
}


def _count(report: GenerationReport, tables: list[Rows]) -> None:
    for rows in tables:
        name = _REPORT_FIELD.get(rows.model)
        if name:
            setattr(report, name, getattr(report, name) + rows.count)
        if rows.model is Order and rows.columns["kind"] == OrderKind.REFUND:
            report.refunds += rows.count


# --- the plan: everything the chunks share ------------------------------------------------------------------------

def _normalised(weights) -> np.ndarray:
    array = np.asarray(weights, dtype=float)
    return array / array.sum()


def _stacked_cdf(rows: np.ndarray) -> np.ndarray:
    """Cumulative distributions of several rows, each normalised to [0, 1] and shifted by 2 × its row number, so
    that one ``searchsorted`` over the flattened array samples every row at once (see ``_Plan.sample_from``)."""
    cdf = np.zeros((rows.shape[0], rows.shape[1] + 1))
    cdf[:, 1:] = np.cumsum(rows, axis=1)
    cdf /= cdf[:, -1:]
    return (cdf + 2.0 * np.arange(rows.shape[0])[:, None]).ravel()


@dataclass
class _Plan:
    seed: int
    end_s: int  # end, in seconds since the epoch
    ndays: int  # days of the window, the last one being the day of ``end`` in Seoul
    day0_s: int  # midnight in Seoul of the window's first day, in epoch seconds
    day_month: np.ndarray  # calendar month (1..12) of each day of the window
    day_cdf: np.ndarray  # stacked CDF of each unit's sales over the days of the window
    hour_cdf: np.ndarray  # stacked CDF of each unit's sales over the 24 hours
    unit_ids: np.ndarray
    unit_kinds: list[str]
    home_shares: np.ndarray
    visit_rates: np.ndarray
    refund_rates: np.ndarray
    lines_p: np.ndarray  # (units, 4) probability of 1..4 lines
    lines_cdf: np.ndarray  # stacked CDF of lines_p
    channel_cdf: np.ndarray  # stacked CDF of each unit's SALES_CHANNELS
    unit_products: list[np.ndarray]  # catalogue indices of each unit's products
    product_log_weights: list[np.ndarray]  # per unit: (gender, month, product) log weight
    product_ids: np.ndarray
    prices: np.ndarray
    costs: np.ndarray
    qty_min: np.ndarray
    qty_max: np.ndarray
    qty_p: np.ndarray
    line_summaries: np.ndarray  # (product, quantity, extra lines) → "크루아상 ×2 (+1)"
    region_cdf: np.ndarray  # stacked CDF over people.REGIONS by home unit
    phone_multiplier: int
    phone_offset: int
    email_multiplier: int
    email_offset: int
    email_modulus: int
    refund_summary: str
    repeat_scale: float = 1.0  # calibrated so that the lines per customer come out as asked

    @classmethod
    def build(cls, *, reference: ReferenceData, seed: int, years: int, end: dt.datetime, customers: int,
              lines_per_customer: float) -> "_Plan":
        end_s = int(end.timestamp())
        end_day = dt.date(1970, 1, 1) + dt.timedelta(days=(end_s + KST) // DAY)
        try:
            start_day = end_day.replace(year=end_day.year - years)
        except ValueError:  # 29 February
            start_day = end_day.replace(year=end_day.year - years, day=28)
        ndays = (end_day - start_day).days + 1
        dates = np.datetime64(start_day, "D") + np.arange(ndays)
        months = dates.astype("datetime64[M]").astype(np.int64) % 12 + 1
        days_of_month = (dates - dates.astype("datetime64[M]")).astype(np.int64) + 1
        weekdays = (dates.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0

        day_weights, products_by_unit, log_weights = [], [], []
        products = reference.products
        for unit_index, unit in enumerate(UNITS):
            weights = np.asarray(unit.month_factor)[months - 1] * np.asarray(unit.weekday_factor)[weekdays]
            for month, day, factor in unit.special_days:
                weights = np.where((months == month) & (days_of_month == day), weights * factor, weights)
            day_weights.append(weights)
            indices = np.array([i for i, p in enumerate(products) if p.unit_index == unit_index])
            products_by_unit.append(indices)
            base = np.array([products[i].spec.weight for i in indices])
            skew = np.array([products[i].spec.female_skew for i in indices])
            season = np.array([products[i].category.month_factor for i in indices]).T  # (12, products)
            by_gender = np.stack([base * skew, base / skew, base])  # F, M, not given
            log_weights.append(np.log(by_gender[:, None, :] * season[None, :, :]))

        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
        # Phone numbers and email tokens are affine bijections of the customer's position: unique without a lookup.
        phone_multiplier = int(rng.integers(1_000_000, 80_000_000)) | 1
        while phone_multiplier % 5 == 0 or phone_multiplier % 797 == 0:  # coprime with PHONE_SPACE
            phone_multiplier += 2
        email_modulus = 10 ** max(4, len(str(max(customers, 1) * 10)))
        email_multiplier = int(rng.integers(email_modulus // 10, email_modulus)) | 1
        while email_multiplier % 5 == 0:
            email_multiplier += 2
        qty_max = np.array([p.spec.qty_max for p in products])
        names = [p.name for p in products]
        summaries = np.empty((len(products), qty_max.max() + 1, 4), dtype=object)
        for index, name in enumerate(names):
            for quantity in range(qty_max.max() + 1):
                for extra in range(4):
                    summaries[index, quantity, extra] = f"{name} ×{quantity}" + (f" (+{extra})" if extra else "")
        lines_p = np.array([_normalised(unit.lines_per_order) for unit in UNITS])
        with translation.override(settings.LANGUAGE_CODE):
            refund_summary = gettext("Refund of order #%(id)d")  # as sales.services.record_refund writes it

        plan = cls(
            seed=seed, end_s=end_s, ndays=ndays,
            day0_s=(start_day - dt.date(1970, 1, 1)).days * DAY - KST,
            day_month=months, day_cdf=_stacked_cdf(np.array(day_weights)),
            hour_cdf=_stacked_cdf(np.array([unit.hour_weights for unit in UNITS], dtype=float)),
            unit_ids=np.array(reference.unit_ids), unit_kinds=[unit.kind for unit in UNITS],
            home_shares=_normalised([unit.home_share for unit in UNITS]),
            visit_rates=np.array([unit.visit_rate for unit in UNITS]),
            refund_rates=np.array([unit.refund_rate for unit in UNITS]),
            lines_p=lines_p, lines_cdf=_stacked_cdf(lines_p),
            channel_cdf=_stacked_cdf(np.array([[dict(unit.channels).get(c, 0.0) for c in SALES_CHANNELS] for unit in UNITS])),
            unit_products=products_by_unit, product_log_weights=log_weights,
            product_ids=np.array([p.id for p in products]), prices=np.array([p.price for p in products]),
            costs=np.array([p.unit_cost for p in products]), qty_min=np.array([p.spec.qty_min for p in products]),
            qty_max=qty_max, qty_p=np.array([p.spec.qty_p for p in products]), line_summaries=summaries,
            region_cdf=_stacked_cdf(np.array([people.region_weights(unit.code) for unit in UNITS])),
            phone_multiplier=phone_multiplier, phone_offset=int(rng.integers(0, 80_000_000)),
            email_multiplier=email_multiplier, email_offset=int(rng.integers(0, email_modulus)),
            email_modulus=email_modulus, refund_summary=refund_summary,
        )
        plan.repeat_scale = plan._calibrate(lines_per_customer, rng)
        return plan

    @staticmethod
    def sample_from(stacked_cdf: np.ndarray, width: int, rows: np.ndarray, u: np.ndarray) -> np.ndarray:
        """For each i, the index in 0..width-1 drawn from distribution ``rows[i]`` with the uniform number ``u[i]``."""
        flat = np.searchsorted(stacked_cdf, u + 2.0 * rows, side="right") - 1
        return np.clip(flat - rows * (width + 1), 0, width - 1)

    def sample_days(self, units: np.ndarray, low: np.ndarray, high: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Days in [low, high] drawn from each unit's seasonal distribution (inverse CDF restricted to the range)."""
        base = units * (self.ndays + 1)
        lo_cdf, hi_cdf = self.day_cdf[base + low], self.day_cdf[base + high + 1]
        days = np.searchsorted(self.day_cdf, lo_cdf + u * (hi_cdf - lo_cdf), side="right") - 1 - base
        return np.clip(days, low, high)

    def times_on(self, rng: np.random.Generator, units: np.ndarray, days: np.ndarray) -> np.ndarray:
        """Epoch seconds on the given days, at the units' busy hours (Seoul time)."""
        hours = self.sample_from(self.hour_cdf, 24, units, rng.random(len(units)))
        return self.day0_s + days * DAY + hours * 3600 + rng.integers(0, 3600, len(units))

    def lines_per_order(self) -> np.ndarray:
        return self.lines_p @ np.arange(1, 5)

    def repeat_intensity(self, persona: np.ndarray, home: np.ndarray, active_days: np.ndarray) -> np.ndarray:
        """Expected orders per customer before scaling (0 for personas with a fixed number of orders)."""
        frequency = np.zeros(len(persona))
        for code, value in REPEAT_FREQUENCY.items():
            frequency[persona == code] = value
        return frequency * self.visit_rates[home] * active_days / 365.25

    def _calibrate(self, lines_per_customer: float, rng: np.random.Generator) -> float:
        """The scale of repeat purchases that gives ``lines_per_customer`` on average, solved on a sample of people.

        Expected orders: prospects 0, one-time visitors 1, the others m + max(scale × intensity - m, 0) with m the
        REPEAT_MINIMUM; each order has the unit's mean number of lines, and a refunded sale adds its lines again.
        """
        sample = _sample_people(self, rng, 20_000)
        active = sample.last_day - sample.joined_day + 1
        intensity = self.repeat_intensity(sample.persona, sample.home, active)
        lines = self.lines_per_order() * (1.0 + self.refund_rates)
        repeat = np.isin(sample.persona, list(REPEAT_FREQUENCY))
        fixed = np.where(sample.persona == ONE_TIME, 1.0, 0.0)
        duplicate_lines = 1.6 * float(self.home_shares @ lines)  # 60% one order, 40% two or three

        def expected(scale: float) -> float:
            orders = np.where(repeat, REPEAT_MINIMUM + np.maximum(scale * intensity - REPEAT_MINIMUM, 0.0), fixed)
            persons = float(np.mean(orders * lines[sample.home]))
            return (1 - DUPLICATE_SHARE) * persons + DUPLICATE_SHARE * duplicate_lines

        low, high = 0.0, 1.0
        while expected(high) < lines_per_customer and high < 1e6:
            high *= 2
        for _ in range(60):
            middle = (low + high) / 2
            low, high = (middle, high) if expected(middle) < lines_per_customer else (low, middle)
        return high


# --- people -------------------------------------------------------------------------------------------------------

_SURNAMES = np.array([s for s, _, _ in people.SURNAMES])
_SURNAME_P = _normalised([w for _, w, _ in people.SURNAMES])
_SURNAME_ROMAN = [r for _, _, r in people.SURNAMES]
_POOL_KEYS = [("F", "modern"), ("F", "classic"), ("M", "modern"), ("M", "classic")]
_POOLS = [(np.array(list(first)), np.array(list(second))) for first, second in (people.GIVEN_POOLS[k] for k in _POOL_KEYS)]
_REGION_SIDO = [sido for sido, _ in people.REGIONS]
_REGION_SIGUNGU = [sigungu for _, sigungu in people.REGIONS]
_REGION_POSTAL = np.array([people.POSTAL_PREFIXES[sido] for sido in _REGION_SIDO])
_EMAIL_DOMAINS = [d for d, _ in people.EMAIL_DOMAINS]
_EMAIL_DOMAIN_P = _normalised([w for _, w in people.EMAIL_DOMAINS])


def _zipf(length: int) -> np.ndarray:
    """Earlier entries of a pool are more popular names."""
    return _normalised(1.0 / (np.arange(length) + 3.0))


@dataclass
class _People:
    """One row per customer record of a chunk (for the calibration: a sample of people)."""

    gender: np.ndarray  # index into GENDERS
    persona: np.ndarray
    home: np.ndarray  # unit index
    secondary: np.ndarray  # unit index, -1: buys only at home
    joined_day: np.ndarray
    last_day: np.ndarray  # last day they may buy (lapsed customers stopped earlier)
    surname: np.ndarray
    first: np.ndarray  # given-name syllables
    second: np.ndarray
    birth: np.ndarray  # datetime64[D]


def _sample_people(plan: _Plan, rng: np.random.Generator, n: int) -> _People:
    gender = rng.choice(3, n, p=GENDER_SHARES)
    persona = rng.choice(5, n, p=PERSONA_SHARES)
    home = rng.choice(len(UNITS), n, p=plan.home_shares)
    # A second unit of the group, never the home one: the hotel guest who dines at the restaurant.
    secondary = np.where(rng.random(n) < SECONDARY_UNIT_SHARE, (home + rng.integers(1, len(UNITS), n)) % len(UNITS), -1)
    last_day = np.full(n, plan.ndays - 1)
    lapsed = persona == LAPSED
    last_day[lapsed] -= LAPSED_AFTER_DAYS + rng.integers(0, plan.ndays // 4, lapsed.sum())
    # Sign-ups grow over time (u ** 0.8 leans recent) but today's regulars mostly joined early (u ** 1.5).
    u = rng.random(n) ** np.where(persona == REGULAR, 1.5, 0.8)
    joined_day = plan.sample_days(home, np.zeros(n, dtype=np.int64), last_day, u)

    age_days = ((20 + 55 * rng.beta(2.0, 2.6, n)) * 365.25).astype(np.int64)
    end_date = np.datetime64(plan.end_s // DAY, "D")
    birth = end_date - age_days
    name_gender = np.where(gender == 2, rng.integers(0, 2, n), gender)  # an unnamed gender still has a name
    modern = birth.astype("datetime64[Y]").astype(np.int64) + 1970 >= people.MODERN_FROM_BIRTH_YEAR
    pool = name_gender * 2 + np.where(modern, 0, 1)
    first = np.empty(n, dtype="<U1")
    second = np.empty(n, dtype="<U1")
    for index, (firsts, seconds) in enumerate(_POOLS):
        rows = np.flatnonzero(pool == index)
        a = rng.choice(len(firsts), len(rows), p=_zipf(len(firsts)))
        b = rng.choice(len(seconds), len(rows), p=_zipf(len(seconds)))
        same = firsts[a] == seconds[b]  # no 민민 or 지지
        b[same] = (b[same] + 1) % len(seconds)
        first[rows], second[rows] = firsts[a], seconds[b]
    surname = rng.choice(len(_SURNAMES), n, p=_SURNAME_P)
    return _People(gender=gender, persona=persona, home=home, secondary=secondary, joined_day=joined_day,
                   last_day=last_day, surname=surname, first=first, second=second, birth=birth)


# 010-5970-xxxx … 010-5999-xxxx are not allocated (phonenumbers rejects them, and so does the app's validation):
# the generator draws from the 79.7 million numbers around that gap.
PHONE_GAP_START, PHONE_GAP = 59_700_000, 300_000
PHONE_SPACE = 80_000_000 - PHONE_GAP  # 797 × 10^5


def _skip_unallocated(numbers: np.ndarray) -> np.ndarray:
    return np.where((numbers >= PHONE_GAP_START) & (numbers < PHONE_GAP_START + PHONE_GAP), numbers + PHONE_GAP, numbers)


def _phone_numbers(plan: _Plan, positions: np.ndarray) -> np.ndarray:
    """The 8 digits after 010 (the first one 2..9), distinct for distinct positions below 79.7 million."""
    drawn = 20_000_000 + (positions * plan.phone_multiplier + plan.phone_offset) % PHONE_SPACE
    return np.where(drawn >= PHONE_GAP_START, drawn + PHONE_GAP, drawn)


def _change_one_digit(rng: np.random.Generator, numbers: np.ndarray) -> np.ndarray:
    position = rng.integers(0, 8, len(numbers))  # 0 is the first digit of the middle group
    power = 10 ** (7 - position)
    digit = (numbers // power) % 10
    new = np.where(position == 0, 2 + (digit - 2 + rng.integers(1, 8, len(numbers))) % 8,
                   (digit + rng.integers(1, 10, len(numbers))) % 10)
    return _skip_unallocated(numbers + (new - digit) * power)


# --- one chunk ----------------------------------------------------------------------------------------------------

def _build_chunk(plan: _Plan, *, chunk_index: int, offset: int, count: int, ids: dict) -> list[Rows]:
    """Draw ``count`` customer records and everything that hangs off them; allocate their ids from ``ids``."""
    rng = np.random.default_rng(np.random.SeedSequence(plan.seed, spawn_key=(1, chunk_index)))
    n_dup = int(round(count * DUPLICATE_SHARE)) if count >= 20 else 0
    n_person = count - n_dup
    persons = _sample_people(plan, rng, n_person)
    position = offset + np.arange(n_person)

    # Contacts of the persons: almost everyone gives a mobile number; the young give an email more often.
    age_years = (np.datetime64(plan.end_s // DAY, "D") - persons.birth).astype(np.int64) / 365.25
    has_phone = rng.random(n_person) < 0.97
    phone = np.where(has_phone, _phone_numbers(plan, position), -1)
    has_email = rng.random(n_person) < np.where(age_years < 40, 0.75, np.where(age_years < 60, 0.55, 0.3))
    emails = _emails(plan, rng, persons, position, has_email)

    # --- duplicates: second records of some persons at another unit ---
    originals = np.sort(rng.choice(np.flatnonzero(has_phone), size=min(n_dup, int(has_phone.sum())), replace=False))
    n_dup = len(originals)
    variation = rng.choice(5, n_dup, p=VARIATION_SHARES)
    variation[(variation == EMAIL_UPPER) & ~has_email[originals]] = SWAPPED
    similar_first = np.array([s in people.SIMILAR_SYLLABLES for s in persons.first[originals].tolist()], dtype=bool)
    similar_second = np.array([s in people.SIMILAR_SYLLABLES for s in persons.second[originals].tolist()], dtype=bool)
    variation[(variation == SIMILAR) & ~similar_first & ~similar_second] = SWAPPED
    dup_home = (persons.home[originals] + rng.integers(1, len(UNITS), n_dup)) % len(UNITS)
    dup_joined_day = persons.joined_day[originals] + (
        rng.random(n_dup) * (plan.ndays - persons.joined_day[originals])).astype(np.int64)
    dup_phone = np.where(variation == PHONE_DIGIT, _change_one_digit(rng, phone[originals]),
                         np.where(variation == EMAIL_UPPER, -1, phone[originals]))
    # The unit's export had the address in capitals; stored as the app stores every email (lower-cased), so the
    # pair shares the email but no phone.
    dup_emails = [emails[i] if v == EMAIL_UPPER else None for i, v in zip(originals.tolist(), variation.tolist())]

    # --- every record of the chunk: the persons, then their duplicates ---
    n = n_person + n_dup
    is_dup = np.arange(n) >= n_person
    gender = np.concatenate([persons.gender, persons.gender[originals]])
    home = np.concatenate([persons.home, dup_home])
    secondary = np.concatenate([persons.secondary, np.full(n_dup, -1)])
    joined_day = np.concatenate([persons.joined_day, dup_joined_day])
    last_day = np.concatenate([persons.last_day, np.full(n_dup, plan.ndays - 1)])
    persona = np.concatenate([persons.persona, np.full(n_dup, ONE_TIME)])
    joined_s = np.minimum(plan.times_on(rng, home, joined_day), plan.end_s - 3600)
    phone = np.concatenate([phone, dup_phone])
    emails = emails + dup_emails
    names = _names(persons, originals, variation, similar_second)
    birth_of = np.concatenate([np.arange(n_person), originals])  # whose birthday and address the record holds

    orders_per_record = _order_counts(plan, rng, persona, home, joined_day, last_day, is_dup)

    customer_ids = ids[Customer] + np.arange(n)
    ids[Customer] += n
    tables: list[Rows] = []
    sales = _sales(plan, rng, orders_per_record, home, secondary, joined_day, joined_s, last_day, gender)
    stage = _stages(plan, n, orders_per_record, sales)
    tables.append(Rows(Customer, n, {
        "id": customer_ids, "name": names, "gender": np.array(GENDERS)[gender].tolist(), "stage": stage,
        "home_unit": plan.unit_ids[home], "joined_at": Timestamps(joined_s), "created_at": Timestamps(joined_s),
        "updated_at": Timestamps(joined_s), "created_by": None, "merged_into": None,
    }))
    tables += _contact_rows(ids, customer_ids, phone, emails, joined_s)
    tables.append(_address_rows(plan, rng, ids, customer_ids, home, birth_of, is_dup))
    tables.append(_anniversary_rows(plan, rng, ids, customer_ids, persons, birth_of, is_dup))
    tables.append(_consent_rows(plan, rng, ids, customer_ids, home, joined_s, persona,
                                np.array([e is not None for e in emails]), is_dup))
    tables.append(_membership_rows(plan, ids, customer_ids, home, joined_s, sales))
    tables += _order_rows(plan, rng, ids, customer_ids, sales)
    tables.append(_note_rows(plan, rng, ids, customer_ids, home, joined_s, persona, is_dup))
    duplicate_ids = customer_ids[n_person:]
    tables.append(Rows(GeneratedDuplicate, n_dup, {
        "id": _allocate(ids, GeneratedDuplicate, n_dup), "duplicate": duplicate_ids,
        "original": customer_ids[originals], "variation": [str(VARIATIONS[v]) for v in variation.tolist()],
    }))
    return tables


def _allocate(ids: dict, model, count: int) -> np.ndarray:
    first = ids[model]
    ids[model] += count
    return first + np.arange(count)


def _emails(plan: _Plan, rng: np.random.Generator, persons: _People, position: np.ndarray,
            has_email: np.ndarray) -> list[str | None]:
    """seoyeon.kim4821@naver.com, kimseoyeon…: the token makes every address unique, as the real ones are."""
    token = (position * plan.email_multiplier + plan.email_offset) % plan.email_modulus
    style = rng.integers(0, 3, len(position))
    domain = rng.choice(len(_EMAIL_DOMAINS), len(position), p=_EMAIL_DOMAIN_P)
    roman = people.ROMANISED_SYLLABLES
    result: list[str | None] = []
    for keep, surname, first, second, tok, sty, dom in zip(
            has_email.tolist(), persons.surname.tolist(), persons.first.tolist(), persons.second.tolist(),
            token.tolist(), style.tolist(), domain.tolist()):
        if not keep:
            result.append(None)
            continue
        given, family = roman[first] + roman[second], _SURNAME_ROMAN[surname]
        local = (f"{given}.{family}{tok}", f"{family}{given}{tok}", f"{given}{family}{tok}")[sty]
        result.append(f"{local}@{_EMAIL_DOMAINS[dom]}")
    return result


def _names(persons: _People, originals: np.ndarray, variation: np.ndarray, similar_second: np.ndarray) -> list[str]:
    surnames = _SURNAMES[persons.surname].tolist()
    firsts, seconds = persons.first.tolist(), persons.second.tolist()
    names = [s + a + b for s, a, b in zip(surnames, firsts, seconds)]
    similar = people.SIMILAR_SYLLABLES
    for original, kind, second_is_similar in zip(originals.tolist(), variation.tolist(), similar_second.tolist()):
        s, a, b = surnames[original], firsts[original], seconds[original]
        if kind == SWAPPED:
            names.append(s + b + a)
        elif kind == SPACED:
            names.append(f"{s} {a}{b}")
        elif kind == SIMILAR:
            names.append(s + a + similar[b] if second_is_similar else s + similar[a] + b)
        else:  # the email and phone variations keep the name as it was
            names.append(s + a + b)
    return names


def _order_counts(plan: _Plan, rng: np.random.Generator, persona, home, joined_day, last_day, is_dup) -> np.ndarray:
    """Sales per record: prospects none, one-time visitors one, the others two or more, a gamma-Poisson number that
    grows with their frequency and the time they have been customers. Duplicates: one to three."""
    intensity = plan.repeat_scale * plan.repeat_intensity(persona, home, last_day - joined_day + 1)
    extra = rng.poisson(rng.gamma(2.0, np.maximum(intensity - REPEAT_MINIMUM, 0.0) / 2.0))
    counts = np.where(np.isin(persona, list(REPEAT_FREQUENCY)), REPEAT_MINIMUM + np.minimum(extra, 3000), 0)
    counts[persona == ONE_TIME] = 1
    dup_counts = np.where(rng.random(len(persona)) < 0.6, 1, 2 + rng.integers(0, 2, len(persona)))
    return np.where(is_dup, dup_counts, counts)


@dataclass
class _Sales:
    record: np.ndarray  # index of the customer record of each sale
    unit: np.ndarray
    at: np.ndarray  # epoch seconds
    channel: np.ndarray  # index into SALES_CHANNELS
    lines: np.ndarray  # number of lines of each sale
    line_sale: np.ndarray  # index of the sale of each line
    product: np.ndarray  # catalogue index of each line
    quantity: np.ndarray
    unit_price: np.ndarray
    line_total: np.ndarray
    total: np.ndarray


def _sales(plan: _Plan, rng, counts, home, secondary, joined_day, joined_s, last_day, gender) -> _Sales:
    n_sales = int(counts.sum())
    record = np.repeat(np.arange(len(counts)), counts)
    first = np.ones(n_sales, dtype=bool)
    first[1:] = record[1:] != record[:-1]
    # The first purchase is the visit at which the customer registered; the others spread over their active time.
    elsewhere = (secondary[record] >= 0) & (rng.random(n_sales) < SECONDARY_UNIT_ORDER_SHARE) & ~first
    unit = np.where(elsewhere, secondary[record], home[record])
    day = plan.sample_days(unit, joined_day[record], last_day[record], rng.random(n_sales))
    day[first] = joined_day[record][first]
    at = plan.times_on(rng, unit, day)
    at[first] = joined_s[record][first] + rng.integers(60, 1800, int(first.sum()))
    # A purchase drawn on the day of registration but before it moves to the next day, at the same hour.
    at = np.where(at < joined_s[record] + 60, at + DAY, at)
    at = np.minimum(at, plan.end_s - 1)
    channel = plan.sample_from(plan.channel_cdf, len(SALES_CHANNELS), unit, rng.random(n_sales))
    lines = 1 + plan.sample_from(plan.lines_cdf, 4, unit, rng.random(n_sales))

    line_sale = np.repeat(np.arange(n_sales), lines)
    product = np.empty(len(line_sale), dtype=np.int64)
    month_index = plan.day_month[np.clip((at - plan.day0_s) // DAY, 0, plan.ndays - 1)] - 1
    buyer_gender = gender[record]
    for unit_index, catalogue_indices in enumerate(plan.unit_products):
        sale_rows = np.flatnonzero(unit == unit_index)
        if not len(sale_rows):
            continue
        # Weighted sampling without replacement of each basket: the top-k of log weight + Gumbel noise.
        keys = plan.product_log_weights[unit_index][buyer_gender[sale_rows], month_index[sale_rows]]
        keys = keys + rng.gumbel(size=keys.shape)
        ranked = np.argsort(-keys, axis=1)
        chosen = ranked[np.arange(len(catalogue_indices))[None, :] < lines[sale_rows][:, None]]
        product[unit[line_sale] == unit_index] = catalogue_indices[chosen]
    quantity = plan.qty_min[product] - 1 + rng.geometric(plan.qty_p[product])
    quantity = np.clip(quantity, plan.qty_min[product], plan.qty_max[product])
    price = plan.prices[product]
    discounted = rng.random(len(product)) < DISCOUNT_SHARE
    unit_price = np.where(discounted, price - (price + 500) // 1000 * 100, price)  # 10% off, in hundreds of won
    line_total = unit_price * quantity
    total = np.add.reduceat(line_total, np.cumsum(lines) - lines) if n_sales else np.zeros(0, dtype=np.int64)
    return _Sales(record=record, unit=unit, at=at, channel=channel, lines=lines, line_sale=line_sale, product=product,
                  quantity=quantity, unit_price=unit_price, line_total=line_total, total=total)


def _stages(plan: _Plan, n: int, counts: np.ndarray, sales: _Sales) -> list[str]:
    recent = np.bincount(sales.record[sales.at >= plan.end_s - 365 * DAY], minlength=n)
    stage = np.where(counts == 0, 0, np.where(recent >= REGULAR_MIN_SALES_LAST_YEAR, 2, 1))
    return np.array([Stage.PROSPECT.value, Stage.CUSTOMER.value, Stage.REGULAR.value])[stage].tolist()


def _contact_rows(ids, customer_ids, phone, emails, joined_s) -> list[Rows]:
    with_phone = np.flatnonzero(phone >= 0)
    digits = phone[with_phone].tolist()
    phones = Rows(ContactPoint, len(with_phone), {
        "id": _allocate(ids, ContactPoint, len(with_phone)), "customer": customer_ids[with_phone],
        "kind": ContactKind.PHONE.value, "value": [f"+8210{d:08d}" for d in digits],
        "last4": [f"{d % 10000:04d}" for d in digits], "label": "mobile", "is_primary": True,
        "created_at": Timestamps(joined_s[with_phone]),
    })
    with_email = np.array([i for i, e in enumerate(emails) if e is not None], dtype=np.int64)
    mails = Rows(ContactPoint, len(with_email), {
        "id": _allocate(ids, ContactPoint, len(with_email)), "customer": customer_ids[with_email],
        "kind": ContactKind.EMAIL.value, "value": [emails[i] for i in with_email.tolist()], "last4": "", "label": "",
        "is_primary": True, "created_at": Timestamps(joined_s[with_email]),
    })
    return [phones, mails]


def _address_rows(plan: _Plan, rng, ids, customer_ids, home, birth_of, is_dup) -> Rows:
    """A home address for most; a duplicate record repeats the original's district or gives none."""
    n = len(customer_ids)
    region = plan.sample_from(plan.region_cdf, len(people.REGIONS), home, rng.random(n))
    has_address = rng.random(n) < 0.88
    # the duplicate of a person: the same district as the original (by the original's draw), or no address
    region = np.where(is_dup, region[birth_of], region)
    has_address = np.where(is_dup, has_address[birth_of] & (rng.random(n) < 0.6), has_address)
    rows = np.flatnonzero(has_address)
    region = region[rows]
    low, high = _REGION_POSTAL[region, 0], _REGION_POSTAL[region, 1]
    postal = low * 1000 + rng.integers(0, (high - low + 1) * 1000)
    road = rng.integers(0, len(people.ROAD_NAMES), len(rows))
    building = 1 + rng.geometric(0.02, len(rows)) % 400
    flat = rng.random(len(rows)) < 0.6
    dong = rng.integers(101, 116, len(rows))
    ho = rng.integers(1, 26, len(rows)) * 100 + rng.integers(1, 7, len(rows))
    lines = [f"{people.ROAD_NAMES[r]} {b}" + (f", {d}동 {h}호" if f else "")
             for r, b, f, d, h in zip(road.tolist(), building.tolist(), flat.tolist(), dong.tolist(), ho.tolist())]
    return Rows(Address, len(rows), {
        "id": _allocate(ids, Address, len(rows)), "customer": customer_ids[rows],
        "sido": [_REGION_SIDO[r] for r in region.tolist()], "sigungu": [_REGION_SIGUNGU[r] for r in region.tolist()],
        "line": lines, "postal_code": [f"{p:05d}" for p in postal.tolist()], "is_primary": True,
    })


_WEDDING_MONTHS = _normalised([0.6, 0.6, 1.0, 1.2, 1.6, 1.1, 0.6, 0.6, 1.1, 1.6, 1.2, 1.0])


def _anniversary_rows(plan: _Plan, rng, ids, customer_ids, persons: _People, birth_of, is_dup) -> Rows:
    """Birthdays (about 15% kept in the lunar calendar, more among older people) and wedding anniversaries."""
    n_person = len(persons.birth)
    birth = persons.birth
    year = birth.astype("datetime64[Y]").astype(np.int64) + 1970
    month = birth.astype("datetime64[M]").astype(np.int64) % 12 + 1
    day = (birth - birth.astype("datetime64[M]")).astype(np.int64) + 1
    age = (np.datetime64(plan.end_s // DAY, "D") - birth).astype(np.int64) / 365.25
    has_birthday = rng.random(n_person) < 0.82
    lunar = rng.random(n_person) < np.where(age >= 55, 0.32, 0.10)
    # A lunar birthday is its own date (its month lags the solar one by about a month); a lunar month has 29 or 30
    # days, and 30 does not exist every year, so draw 1..29.
    lunar_month = np.where(lunar, (month + 10) % 12 + 1, month)
    lunar_day = np.where(lunar, rng.integers(1, 30, n_person), day)
    year_known = rng.random(n_person) < 0.8
    # duplicate records repeat the original's birthday (that is how staff recognise the person) or leave it out
    keep = np.concatenate([has_birthday, has_birthday[birth_of[n_person:]] & (rng.random(len(birth_of) - n_person) < 0.7)])
    birthday_rows = np.flatnonzero(keep)
    source = birth_of[birthday_rows]

    married = (age >= 27) & (rng.random(n_person) < 0.35)
    wedding_rows = np.flatnonzero(married)
    wedding_year = np.minimum(year[wedding_rows] + 26 + rng.integers(0, 9, len(wedding_rows)),
                              (np.datetime64(plan.end_s // DAY, "D").astype("datetime64[Y]").astype(np.int64) + 1970))
    wedding_month = 1 + rng.choice(12, len(wedding_rows), p=_WEDDING_MONTHS)
    wedding_day = rng.integers(1, 29, len(wedding_rows))

    count = len(birthday_rows) + len(wedding_rows)
    return Rows(Anniversary, count, {
        "id": _allocate(ids, Anniversary, count),
        "customer": np.concatenate([customer_ids[birthday_rows], customer_ids[wedding_rows]]),
        "kind": [AnniversaryKind.BIRTHDAY.value] * len(birthday_rows) + [AnniversaryKind.WEDDING.value] * len(wedding_rows),
        "label": "",
        "year": NullableInts(np.concatenate([year[source], wedding_year]),
                             np.concatenate([~year_known[source], np.zeros(len(wedding_rows), dtype=bool)])),
        "month": np.concatenate([lunar_month[source], wedding_month]),
        "day": np.concatenate([lunar_day[source], wedding_day]),
        "is_lunar": np.concatenate([lunar[source], np.zeros(len(wedding_rows), dtype=bool)]),
        "is_leap_month": False,
    })


_CONSENT_RATES = np.array([0.65, 0.55, 0.5, 0.08, 0.12])  # sms, kakao, email (of those with one), post, phone


def _consent_rows(plan: _Plan, rng, ids, customer_ids, home, joined_s, persona, has_email, is_dup) -> Rows:
    """Marketing consents given when the customer registered: at the counter on paper, or on the website."""
    n = len(customer_ids)
    granted = rng.random((n, len(CONSENT_CHANNELS))) < _CONSENT_RATES[None, :]
    granted[:, 2] &= has_email
    granted[is_dup, 2:] = False
    on_web = rng.random(n) < np.where(persona == PROSPECT, 0.6, 0.25)
    record, channel = np.nonzero(granted)  # row-major: grouped by customer
    source = np.where(on_web[record], "web", "store").tolist()
    channels = np.array(CONSENT_CHANNELS)[channel].tolist()
    return Rows(Consent, len(record), {
        "id": _allocate(ids, Consent, len(record)), "customer": customer_ids[record], "channel": channels,
        "purpose": Purpose.MARKETING.value, "granted": True, "at": Timestamps(joined_s[record]), "source": source,
        "unit": plan.unit_ids[home[record]], "method": [people.CONSENT_METHOD[s] for s in source],
        "evidence": [people.CONSENT_EVIDENCE[c] for c in channels], "recorded_by": None,
    })


def _membership_rows(plan: _Plan, ids, customer_ids, home, joined_s, sales: _Sales) -> Rows:
    """The unit where the customer registered, and every unit they bought at, from the first time they did."""
    units = len(UNITS)
    key = np.concatenate([np.arange(len(home)) * units + home, sales.record * units + sales.unit])
    at = np.concatenate([joined_s, sales.at])
    registered = np.concatenate([np.ones(len(home), dtype=bool), np.zeros(len(sales.at), dtype=bool)])
    order = np.lexsort((~registered, at, key))  # earliest per key; the registration wins a tie
    key, at, registered = key[order], at[order], registered[order]
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    key, at, registered = key[first], at[first], registered[first]
    return Rows(Membership, len(key), {
        "id": _allocate(ids, Membership, len(key)), "customer": customer_ids[key // units],
        "unit": plan.unit_ids[key % units], "joined_at": Timestamps(at),
        "source": np.where(registered, "registered", "purchase").tolist(),
    })


def _order_rows(plan: _Plan, rng, ids, customer_ids, sales: _Sales) -> list[Rows]:
    """Sales, refunds (negative orders that point at their sale), their lines, and one timeline entry per order."""
    n_sales = len(sales.at)
    sale_ids = _allocate(ids, Order, n_sales)
    refunded = rng.random(n_sales) < plan.refund_rates[sales.unit]
    refunded_sales = np.flatnonzero(refunded)
    n_refunds = len(refunded_sales)
    refund_ids = _allocate(ids, Order, n_refunds)
    # Refunded within two weeks, within a few hours of the time of day of the sale (the unit is open then).
    delay = rng.integers(0, 14, n_refunds) * DAY + rng.integers(600, 3 * 3600, n_refunds)
    refund_at = np.minimum(sales.at[refunded_sales] + delay, plan.end_s)
    channels = np.array(SALES_CHANNELS)[sales.channel]
    customers = customer_ids[sales.record]
    unit_ids = plan.unit_ids[sales.unit]

    tables = [
        Rows(Order, n_sales, {
            "id": sale_ids, "unit": unit_ids, "customer": customers, "kind": OrderKind.SALE.value, "refund_of": None,
            "channel": channels.tolist(), "ordered_at": Timestamps(sales.at), "total": sales.total,
            "external_ref": "", "needs_review": False, "created_by": None, "created_at": Timestamps(sales.at),
        }),
        Rows(Order, n_refunds, {
            "id": refund_ids, "unit": unit_ids[refunded_sales], "customer": customers[refunded_sales],
            "kind": OrderKind.REFUND.value, "refund_of": sale_ids[refunded_sales],
            "channel": channels[refunded_sales].tolist(), "ordered_at": Timestamps(refund_at),
            "total": -sales.total[refunded_sales], "external_ref": "", "needs_review": False, "created_by": None,
            "created_at": Timestamps(refund_at),
        }),
    ]
    n_lines = len(sales.line_sale)
    tables.append(Rows(OrderLine, n_lines, {
        "id": _allocate(ids, OrderLine, n_lines), "order": sale_ids[sales.line_sale],
        "product": plan.product_ids[sales.product], "quantity": sales.quantity, "unit_price": sales.unit_price,
        "unit_cost": plan.costs[sales.product], "line_total": sales.line_total,
    }))
    refund_lines = np.flatnonzero(refunded[sales.line_sale])  # in sale order, like the refund ids
    refund_of_line = np.cumsum(refunded) - 1  # a refunded sale's position among the refunds
    tables.append(Rows(OrderLine, len(refund_lines), {
        "id": _allocate(ids, OrderLine, len(refund_lines)),
        "order": refund_ids[refund_of_line[sales.line_sale[refund_lines]]],
        "product": plan.product_ids[sales.product[refund_lines]], "quantity": -sales.quantity[refund_lines],
        "unit_price": sales.unit_price[refund_lines], "unit_cost": plan.costs[sales.product[refund_lines]],
        "line_total": -sales.line_total[refund_lines],
    }))

    # The timeline entries the order_recorded event writes: "크루아상 ×2 (+1)", or the refund's own wording.
    first_line = np.cumsum(sales.lines) - sales.lines
    summaries = plan.line_summaries[sales.product[first_line], sales.quantity[first_line],
                                    np.minimum(sales.lines - 1, 3)].tolist()
    tables.append(Rows(Interaction, n_sales, {
        "id": _allocate(ids, Interaction, n_sales), "customer": customers, "kind": InteractionKind.PURCHASE.value,
        "occurred_at": Timestamps(sales.at), "unit": unit_ids, "channel": channels.tolist(), "summary": summaries,
        "body": "", "amount": sales.total, "ref_type": "sales.order", "ref_id": sale_ids, "created_by": None,
    }))
    tables.append(Rows(Interaction, n_refunds, {
        "id": _allocate(ids, Interaction, n_refunds), "customer": customers[refunded_sales],
        "kind": InteractionKind.REFUND.value, "occurred_at": Timestamps(refund_at), "unit": unit_ids[refunded_sales],
        "channel": channels[refunded_sales].tolist(),
        "summary": [plan.refund_summary % {"id": i} for i in sale_ids[refunded_sales].tolist()],
        "body": "", "amount": -sales.total[refunded_sales], "ref_type": "sales.order", "ref_id": refund_ids,
        "created_by": None,
    }))
    return tables


def _note_rows(plan: _Plan, rng, ids, customer_ids, home, joined_s, persona, is_dup) -> Rows:
    """What staff wrote down by hand: regulars get noticed, the others seldom."""
    rate = np.where(persona == REGULAR, 0.8, 0.15)
    rate[is_dup] = 0.05
    count = rng.poisson(rate)
    record = np.repeat(np.arange(len(count)), count)
    at = joined_s[record] + (rng.random(len(record)) * (plan.end_s - joined_s[record])).astype(np.int64)
    kinds, texts, units = [], [], []
    choice = rng.random(len(record))
    for r, c in zip(record.tolist(), choice.tolist()):
        notes = people.STAFF_NOTES[plan.unit_kinds[home[r]]]
        kind, text = notes[int(c * len(notes))]
        kinds.append(kind)
        texts.append(text)
    return Rows(Interaction, len(record), {
        "id": _allocate(ids, Interaction, len(record)), "customer": customer_ids[record], "kind": kinds,
        "occurred_at": Timestamps(at), "unit": plan.unit_ids[home[record]],
        "channel": ["store" if k == "visit" else "" for k in kinds], "summary": texts, "body": texts,
        "amount": None, "ref_type": "", "ref_id": None, "created_by": None,
    })
