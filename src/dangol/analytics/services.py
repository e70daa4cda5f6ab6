"""Writes of the analytics app: the refresh of the per-customer metrics snapshot.

``refresh_metrics`` recomputes every live customer's metrics as of a day and replaces the snapshot in one
transaction (readers keep seeing the previous one until it commits; running it twice gives the same snapshot). The
reading is set-based SQL (``facts``), the arithmetic polars and numpy (``summary``, ``rfm``, ``clv``, ``churn``,
``stages``); nothing loops over customers, and the number of queries does not depend on their number.

Settings (environment variables):
- ``DANGOL_CLV_DISCOUNT_RATE_MONTHLY`` — monthly discount rate of the 12-month CLV (default 0.01, i.e. ~12.7 % a
  year); the refresh records the rate it used.
- ``DANGOL_CHURN_HORIZON_DAYS`` — no purchase within this many days counts as churn (default 180).
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import time

import numpy as np
import polars as pl
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from dangol.core import audit, bulk
from dangol.core.audit import Actor
from dangol.core.models import BusinessUnit
from dangol.customers import services as customer_services

from . import churn, clv, facts, rfm, stages, summary
from .models import CustomerMetrics, ModelRun

logger = logging.getLogger("dangol.analytics")

DEFAULT_DISCOUNT_RATE_MONTHLY = 0.01
DEFAULT_CHURN_HORIZON_DAYS = 180
NIGHTLY_HOUR = 3  # Seoul time: the nightly refresh runs in the first scheduler slot from 03:00
_LOCK_KEY = 0x64616E67  # "dang": one refresh at a time (PostgreSQL advisory lock)


class RefreshInProgress(RuntimeError):
    """Another refresh holds the lock; this one did nothing."""


def discount_rate_monthly_default() -> float:
    return _setting("DANGOL_CLV_DISCOUNT_RATE_MONTHLY", DEFAULT_DISCOUNT_RATE_MONTHLY, float)


def churn_horizon_days_default() -> int:
    return _setting("DANGOL_CHURN_HORIZON_DAYS", DEFAULT_CHURN_HORIZON_DAYS, int)


def _setting(name: str, default, kind):
    """A setting from settings.py when the project defines it, else from the environment, else the default."""
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name, default)
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise ValidationError({name: [f"{name} is set to “{value}”, which is not a {kind.__name__}."]}) from None


def refresh_metrics(*, actor: Actor, as_of: dt.date | None = None, discount_rate_monthly: float | None = None,
                    horizon_days: int | None = None) -> ModelRun:
    """Recompute the metrics of every live customer as of the end of ``as_of`` (default: today in Seoul).

    Raises ValidationError on a bad argument and RefreshInProgress when another refresh is running."""
    started_at = timezone.now()
    today = facts.seoul_today(started_at)
    as_of = as_of or today
    rate = discount_rate_monthly_default() if discount_rate_monthly is None else discount_rate_monthly
    horizon = churn_horizon_days_default() if horizon_days is None else horizon_days
    errors = {}
    if not isinstance(as_of, dt.date) or isinstance(as_of, dt.datetime) or as_of > today:
        errors["as_of"] = [_("Give a day that is not in the future.")]
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
        errors["discount_rate_monthly"] = [_("The monthly discount rate is a number from 0 up to (not including) 1, e.g. 0.01.")]
    if isinstance(horizon, bool) or not isinstance(horizon, int) or not 7 <= horizon <= 730:
        errors["horizon_days"] = [_("The churn horizon is a whole number of days from 7 to 730.")]
    if errors:
        raise ValidationError(errors)

    clock = _Clock()
    with transaction.atomic():
        _take_lock()
        facts.tune_session()
        computed = _compute(as_of=as_of, rate=float(rate), horizon=horizon, clock=clock)
        _write_snapshot(computed.frame, clock)
        with clock.phase("apply_stages"):
            # The rules' stage becomes the customer's, except where staff chose one by hand (and partner, staff's call).
            computed.details["stages_changed"] = customer_services.apply_rule_stages(table=CustomerMetrics._meta.db_table)
        finished_at = timezone.now()
        run = ModelRun.objects.create(
            as_of=as_of, started_at=started_at, finished_at=finished_at,
            seconds=round((finished_at - started_at).total_seconds(), 3), customers=computed.frame.height,
            bgnbd=computed.bgnbd, gamma_gamma=computed.gamma_gamma, churn_auc=computed.churn.auc,
            baseline_auc=computed.churn.baseline_auc, discount_rate_monthly=float(rate),
            notes="\n".join(computed.notes), details={**computed.details, "phase_seconds": clock.seconds},
        )
        audit.record(actor=actor, action="analytics.refresh", obj=run)
    logger.info("analytics refresh as of %s: %d customers in %.1fs", as_of, run.customers, run.seconds)
    return run


def refresh_if_due(*, actor: Actor, now: dt.datetime | None = None) -> ModelRun | None:
    """The nightly job (the scheduler calls it every hour): refresh once a day, in the first hour from NIGHTLY_HOUR
    in Seoul — or later that day if the night's run did not happen. Returns the run, or None when not due."""
    now = now or timezone.now()
    today = facts.seoul_today(now)
    seoul_hour = ((int(now.timestamp()) + facts.SEOUL_OFFSET_SECONDS) % facts.DAY_SECONDS) // 3600
    if seoul_hour < NIGHTLY_HOUR or ModelRun.objects.filter(as_of=today).exists():
        return None
    try:
        return refresh_metrics(actor=actor, as_of=today)
    except RefreshInProgress:
        return None


def on_customers_merged(*, merged, **kwargs) -> None:
    """A merged record is no longer a live customer: its row leaves the snapshot now (the survivor's figures, which
    now include the merged orders, follow at the next refresh)."""
    CustomerMetrics.objects.filter(customer_id=merged.pk).delete()


# --- the computation ---------------------------------------------------------------------------------------------

class _Computed:
    def __init__(self):
        self.frame: pl.DataFrame | None = None
        self.bgnbd: dict = {}
        self.gamma_gamma: dict = {}
        self.churn: churn.ChurnResult = churn.ChurnResult(risk=None)
        self.notes: list[str] = []
        self.details: dict = {}


def _compute(*, as_of: dt.date, rate: float, horizon: int, clock: "_Clock") -> _Computed:
    out = _Computed()
    day0 = facts.day_number(as_of)
    day1, day2 = day0 - horizon, day0 - 2 * horizon
    with clock.phase("read"):
        customers = facts.live_customers()
        units = list(BusinessUnit.objects.values_list("id", "kind", "is_active"))
        sales = facts.sales(until_day=day0)
        money = facts.costs(until_day=day0)
        refunds = facts.refund_events(until_day=day0)
        complaints = facts.complaint_events(until_day=day0)
        consents = facts.marketing_consent_events(until_day=day0)
    unit_kinds = {unit_id: (kind or "other") for unit_id, kind, _active in units}
    active_units = sum(1 for *_rest, active in units if active)

    with clock.phase("summaries"):
        prepared = summary.prepare(customers=customers, sales=sales, unit_kinds=unit_kinds, refunds=refunds,
                                   complaints=complaints, consents=consents)
        del sales, refunds, complaints, consents
        kinds = prepared.kinds
        now, then, before = (summary.at_cutoff(prepared, day=day) for day in (day0, day1, day2))

    buyers = now["has_purchase"].to_numpy()
    x = now["frequency"].to_numpy()[buyers].astype(float)
    t_x = now["t_x"].to_numpy()[buyers].astype(float)
    age = now["age_days"].to_numpy()[buyers].astype(float)
    spend = now["repeat_avg"].fill_null(0.0).to_numpy()[buyers].astype(float)
    first_value = now["first_value"].fill_null(0).to_numpy()[buyers].astype(float)
    n = customers.height
    columns: dict[str, np.ndarray] = {}

    with clock.phase("rfm"):
        r, f, m = rfm.rfm_scores(now["recency_days"].to_numpy()[buyers], now["purchase_days"].to_numpy()[buyers],
                                 now["monetary"].to_numpy()[buyers])
        for name, scores in (("r_score", r), ("f_score", f), ("m_score", m)):
            columns[name] = _spread(scores.astype(float), buyers, n)
        segment = np.full(n, "", dtype=object)
        segment[buyers] = rfm.segments(r, f) if buyers.any() else []
        columns["rfm_segment"] = segment

    with clock.phase("clv"):
        p_alive = e90 = e365 = avg_spend = value_12m = None
        try:
            bg = clv.fit_bgnbd(x, t_x, age)
            out.bgnbd = {**_rounded(bg.as_dict()), "time_unit": "day"}
            p_alive = clv.probability_alive(bg, x, t_x, age)
            e90, e365 = clv.expected_purchases_at(bg, [90, 365], x, t_x, age)
        except clv.ModelError as exc:
            bg = None
            out.notes.append(f"BG/NBD not fitted: {exc}")
        try:
            gg = clv.fit_gamma_gamma(x, np.where(x > 0, spend, np.nan))
            out.gamma_gamma = {**_rounded(gg.as_dict()), "currency": "KRW"}
            # A customer without repeat purchases has one observed value, their first purchase: E[M | that value]
            # (the population mean, the paper's answer for x = 0, does not exist when q ≤ 1, as on mixed
            # hotel/bakery spend).
            avg_spend = np.where(x > 0, clv.expected_average_spend(gg, x, spend),
                                 clv.expected_average_spend(gg, np.ones_like(x), first_value))
            if bg is not None:
                value_12m = clv.lifetime_value(bg, x, t_x, age, avg_spend, months=12, discount_rate_monthly=rate)
        except clv.ModelError as exc:
            out.notes.append(f"Gamma-Gamma not fitted: {exc}")
        for name, values in (("p_alive", p_alive), ("expected_purchases_90", e90), ("expected_purchases_365", e365),
                             ("expected_avg_spend", avg_spend)):
            columns[name] = _spread(values, buyers, n)
        columns["clv_12m"] = _spread(None if value_12m is None else np.rint(value_12m), buyers, n)

    with clock.phase("churn"):
        names = churn.feature_names(kinds)
        train_rows = before["has_purchase"].to_numpy()
        test_rows = then["has_purchase"].to_numpy()
        # Churned: no purchase after the cut-off within the horizon, i.e. the last purchase day seen one horizon
        # later is still on or before the cut-off (or there is none left: the purchase was refunded since).
        train_churned = ~(then["last_day"].fill_null(-1).to_numpy()[train_rows] > day2)
        test_churned = ~(now["last_day"].fill_null(-1).to_numpy()[test_rows] > day1)
        baseline = None
        try:
            held_out = then.filter(pl.col("has_purchase"))
            hx, htx, hage = (held_out[c].to_numpy().astype(float) for c in ("frequency", "t_x", "age_days"))
            baseline_model = clv.fit_bgnbd(hx, htx, hage)
            baseline = clv.probability_alive(baseline_model, hx, htx, hage)
        except clv.ModelError as exc:
            out.notes.append(f"no P(alive) baseline: BG/NBD as of the held-out cut-off not fitted ({exc})")
        result = churn.train_and_score(
            train=before.filter(pl.col("has_purchase")), train_churned=train_churned,
            test=then.filter(pl.col("has_purchase")), test_churned=test_churned, baseline_p_alive=baseline,
            score=now.filter(pl.col("has_purchase")), names=names)
        out.churn = result
        if result.note:
            out.notes.append(result.note)
        columns["churn_risk"] = _spread(result.risk, buyers, n)
        del then, before, prepared  # a million customers × three cut-offs: let them go before the snapshot is built

    with clock.phase("assemble"):
        ids = customers["id"]
        money_aligned = (customers.select("id").join(money, left_on="id", right_on="customer_id", how="left",
                                                      maintain_order="left").fill_null(0))
        revenue, cost = money_aligned["revenue"], money_aligned["cost"]
        advocate = stages.advocacy_signals(ids.to_numpy(), as_of=as_of)
        suggested = stages.suggest(has_purchase=buyers, purchase_days_last_year=now["days_365"].to_numpy(),
                                   advocate=advocate)
        out.frame = pl.DataFrame({
            "customer_id": ids,
            "as_of": pl.repeat(as_of, n, dtype=pl.Date, eager=True),
            "first_order_at": now["first_at"],
            "last_order_at": now["last_at"],
            "orders": now["orders"],
            "frequency": now["frequency"],
            "recency_days": now["recency_days"],
            "tenure_days": now["tenure_days"],
            "monetary_total": now["monetary"],
            "monetary_avg": now["monetary_avg"],
            "r_score": _ints(columns["r_score"]),
            "f_score": _ints(columns["f_score"]),
            "m_score": _ints(columns["m_score"]),
            "rfm_segment": pl.Series(columns["rfm_segment"].tolist(), dtype=pl.String),
            "p_alive": _floats(columns["p_alive"]),
            "expected_purchases_90": _floats(columns["expected_purchases_90"]),
            "expected_purchases_365": _floats(columns["expected_purchases_365"]),
            "expected_avg_spend": _floats(columns["expected_avg_spend"]),
            "clv_12m": _ints(columns["clv_12m"]),
            "churn_risk": _floats(columns["churn_risk"]),
            "revenue": revenue,
            "cost": cost,
            # Discounts and redeemed points stay 0 until their data exist: line discounts will come from the price
            # actually charged vs the list price (sales), redeemed points from the loyalty ledger's redemptions.
            "discounts": pl.Series(np.zeros(n, dtype=np.int64)),
            "redeemed_points": pl.Series(np.zeros(n, dtype=np.int64)),
            "profit": revenue - cost,
            "units_used": now["units_used"],
            # Units closed since the customer used them still count as used; the share stays at most 1.
            "wallet_share": ((now["units_used"].cast(pl.Float64) / active_units).clip(upper_bound=1.0) if active_units
                             else pl.Series(np.zeros(n))),
            "suggested_stage": pl.Series(suggested.tolist(), dtype=pl.String),
        })
        out.notes.append("Discounts and redeemed points are 0: no discount or points data are recorded yet.")
        out.details = {
            "as_of_day": day0, "churn_horizon_days": horizon, "churn_cutoffs": [str(facts.day_date(day2)), str(facts.day_date(day1))],
            "churn_train_rows": result.train_rows, "churn_test_rows": result.test_rows,
            "churn_train_rate": result.train_churn_rate, "churn_test_rate": result.test_churn_rate,
            "churn_features": result.features, "buyers": int(buyers.sum()), "unit_kinds": kinds,
            "active_units": active_units, "regular_min_purchase_days": stages.REGULAR_MIN_PURCHASE_DAYS,
        }
    return out


def _spread(values, mask: np.ndarray, n: int) -> np.ndarray:
    """Values known for the rows in ``mask`` placed in an array of all rows, NaN elsewhere (NULL in the snapshot)."""
    full = np.full(n, np.nan)
    if values is not None:
        full[mask] = values
    return full


def _floats(values: np.ndarray) -> pl.Series:
    return pl.Series(values, dtype=pl.Float64, nan_to_null=True)


def _ints(values: np.ndarray) -> pl.Series:
    return pl.Series(values, dtype=pl.Float64, nan_to_null=True).cast(pl.Int64)


def _rounded(params: dict) -> dict:
    return {key: (round(value, 10) if isinstance(value, float) else value) for key, value in params.items()}


def _take_lock() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_LOCK_KEY])
            if not cursor.fetchone()[0]:
                raise RefreshInProgress("Another analytics refresh is running; try again when it has finished.")


# --- writing the snapshot ----------------------------------------------------------------------------------------

def _write_snapshot(frame: pl.DataFrame, clock: "_Clock") -> None:
    """Replace the whole snapshot, inside the caller's transaction (a failure leaves the previous one).

    PostgreSQL: TRUNCATE, drop the secondary indexes, COPY in customer order (the primary key grows at its end),
    create the indexes again (a sorted build each). Measured at a million customers: ~8 s, against 25–50 s for
    DELETE + COPY into the indexed table — random inserts into the CLV and churn indexes, a million dead rows per
    refresh for VACUUM (never run on the benchmark machine: 12 M dead rows after a dozen refreshes) and their WAL.
    The price: from the TRUNCATE to the commit (those seconds) readers of the snapshot wait instead of seeing the
    previous one. SQLite (small data): DELETE and one executemany."""
    table = CustomerMetrics._meta.db_table
    quoted = connection.ops.quote_name(table)
    columns = [CustomerMetrics._meta.get_field(name).column for name in frame.columns]
    column_list = ", ".join(connection.ops.quote_name(c) for c in columns)
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            with clock.phase("write_delete"):
                cursor.execute(f"DELETE FROM {quoted}")
            with clock.phase("write_copy"):
                text = frame.with_columns(
                    [_django_sqlite_datetime(pl.col(name)) for name, dtype in frame.schema.items()
                     if dtype == pl.Datetime("us", "UTC")]
                    + [pl.col(name).cast(pl.String) for name, dtype in frame.schema.items() if dtype == pl.Date])
                placeholders = ", ".join(["%s"] * len(columns))
                for start in range(0, text.height, bulk.WRITE_SLICE):
                    cursor.executemany(f"INSERT INTO {quoted} ({column_list}) VALUES ({placeholders})",
                                       text.slice(start, bulk.WRITE_SLICE).rows())
            return
        with clock.phase("write_delete"):
            # Wait at most a minute for readers to finish (the queue behind a waiting TRUNCATE blocks new readers).
            cursor.execute("SET LOCAL lock_timeout = '60s'")
            cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
            cursor.execute("""
                SELECT i.indexname, i.indexdef FROM pg_indexes i
                WHERE i.schemaname = current_schema() AND i.tablename = %s
                  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = (quote_ident(i.schemaname) || '.'
                                  || quote_ident(i.indexname))::regclass)
            """, [table])
            secondary = cursor.fetchall()
            # TRUNCATE refuses a table with deferred foreign-key checks still pending in this transaction (rows of it
            # written earlier in the same transaction): run those checks now, then defer again as Django expects.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
            cursor.execute(f"TRUNCATE {quoted}")
            for name, _definition in secondary:
                cursor.execute(f"DROP INDEX {connection.ops.quote_name(name)}")
        with clock.phase("write_copy"):
            # The snapshot refers only to customers just read; without superuser rights the FK checks run.
            with bulk.without_row_triggers():
                with cursor.cursor.copy(f"COPY {quoted} ({column_list}) FROM STDIN") as copy:
                    for start in range(0, frame.height, bulk.WRITE_SLICE):
                        formatting = time.perf_counter()
                        text = frame.slice(start, bulk.WRITE_SLICE).write_csv(
                            separator="\t", null_value="\\N", include_header=False, quote_style="never")
                        clock.add("write_format", time.perf_counter() - formatting)
                        copy.write(text)
        with clock.phase("write_index"):
            for _name, definition in secondary:
                cursor.execute(definition)


def _django_sqlite_datetime(column: pl.Expr) -> pl.Expr:
    """Text as Django stores an aware datetime on SQLite: naive UTC, microseconds only when there are some."""
    return (pl.when(column.dt.microsecond() == 0).then(column.dt.strftime("%Y-%m-%d %H:%M:%S"))
            .otherwise(column.dt.strftime("%Y-%m-%d %H:%M:%S%.6f")))


class _Clock:
    def __init__(self):
        self.seconds: dict[str, float] = {}

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = round(self.seconds.get(name, 0.0) + seconds, 3)

    def phase(self, name: str):
        clock = self

        class _Phase:
            def __enter__(self):
                self.started = time.perf_counter()

            def __exit__(self, *exc):
                clock.seconds[name] = round(clock.seconds.get(name, 0.0) + time.perf_counter() - self.started, 3)

        return _Phase()
