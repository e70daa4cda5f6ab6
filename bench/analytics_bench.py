"""Benchmark of customer analysis (analytics.refresh_metrics) on generated data, PostgreSQL.

    .venv/bin/python bench/analytics_bench.py                       (1,000,000 customers: dangol_bench_1m)
    .venv/bin/python bench/analytics_bench.py --customers 100000 --repeat 3

Uses the scratch database dangol_bench_<scale> at DANGOL_BENCH_POSTGRES (default postgres://postgres@127.0.0.1:5432,
as bench/run.py): when it exists and has customers it is reused (and migrated), otherwise it is created with
`dangol migrate` and `dangol generate --customers N --seed 42` (about 10 order lines per customer). Then, in this
process and in one run:

1. **full refresh** — ``refresh_metrics`` once, as the nightly job runs it: seconds in all and per phase, and the
   peak resident memory of the process during it (sampled every 50 ms; the memory before, for Django and the
   libraries, is reported too);
2. **fit** — BG/NBD + Gamma-Gamma by ``analytics.clv`` against ``lifetimes`` (BetaGeoFitter + GammaGammaFitter, the
   reference) on the same summary: every buyer's (x, t_x, T) and mean repeat spend as of the refresh day, exactly
   what the refresh fits. Interleaved ``--repeat`` times (lifetimes: ``--lifetimes-repeat``), medians; the ratio,
   and the largest relative difference between the two sets of parameters;
3. **RFM aggregation** — ours (the sales query on PostgreSQL, streamed out, and the vectorised per-customer
   aggregation: orders, purchase days, first and last day, net spend, first-day value, units, as the refresh runs
   it) against DuckDB running the same aggregation in SQL on an export of ``sales_order`` to Parquet (exported once,
   not timed; DuckDB with as many threads as cores). The reference reads the Parquet file in the timed query, as
   ours reads the tables; DuckDB on a table already loaded in its memory is reported beside it. Interleaved
   ``--repeat`` times, medians; the results are compared customer by customer (orders, purchase days, first and
   last purchase day, net spend, first-day value, units must be identical).

Prints one JSON line (progress goes to stderr).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_BASE = os.environ.get("DANGOL_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def scale_name(n: int) -> str:
    for size, suffix in ((1_000_000, "m"), (1_000, "k")):
        if n >= size and n % size == 0:
            return f"{n // size}{suffix}"
    return str(n)


def psql(url: str, sql: str) -> str:
    done = subprocess.run(["psql", url, "-tAqc", sql], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"psql failed: {done.stderr.strip()}")
    return done.stdout.strip()


def dangol(env: dict, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "dangol.cli", *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"dangol {' '.join(args)} failed:\n{done.stderr.strip()[-2000:]}")
    return done.stdout


def customer_count(url: str) -> int:
    try:
        return int(psql(url, "select count(*) from customers_customer"))
    except (SystemExit, ValueError):
        return 0


def prepare(name: str, customers: int, seed: int, env: dict) -> float | None:
    """The scratch database, migrated; seconds spent generating (None: an existing one was reused)."""
    url = f"{PG_BASE}/{name}"
    exists = psql(f"{PG_BASE}/postgres", f"select 1 from pg_database where datname = '{name}'") == "1"
    if exists and customer_count(url) > 0:
        dangol(env, "migrate", "--no-input", "-v", "0")
        return None
    psql(f"{PG_BASE}/postgres", f"drop database if exists {name} with (force)")
    psql(f"{PG_BASE}/postgres", f"create database {name}")
    dangol(env, "migrate", "--no-input", "-v", "0")
    say(f"generating {customers:,} customers into {name} (a few minutes)…")
    started = time.perf_counter()
    dangol(env, "generate", "--customers", str(customers), "--seed", str(seed), "--quiet")
    return time.perf_counter() - started


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class PeakMemory:
    """The highest resident set size of this process while the block runs (sampled)."""

    def __enter__(self):
        self.peak = self.before = rss_mb()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._done.wait(0.05):
            self.peak = max(self.peak, rss_mb())

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


# --- 1. the refresh --------------------------------------------------------------------------------------------------

def bench_refresh() -> dict:
    from dangol.analytics.services import refresh_metrics
    from dangol.core.audit import Actor

    say("full refresh…")
    with PeakMemory() as memory:
        started = time.perf_counter()
        run = refresh_metrics(actor=Actor.system("bench"))
        seconds = time.perf_counter() - started
    return {
        "seconds": round(seconds, 1), "target_seconds": 120, "customers": run.customers,
        "buyers": run.details.get("buyers"), "phase_seconds": run.details.get("phase_seconds"),
        "peak_rss_mb": round(memory.peak), "rss_before_mb": round(memory.before),
        "bgnbd": run.bgnbd, "gamma_gamma": run.gamma_gamma, "churn_auc": run.churn_auc,
        "baseline_auc": run.baseline_auc, "as_of": str(run.as_of),
    }


# --- 2. the fit against lifetimes ------------------------------------------------------------------------------------

def read_summary(as_of_day: int):
    """Every buyer's (x, t_x, T, m̄) as of the refresh day, as the refresh computes it; and the sales read."""
    import numpy as np
    import polars as pl
    from django.db import transaction

    from dangol.analytics import facts, summary
    from dangol.core.models import BusinessUnit

    with transaction.atomic():
        facts.tune_session()
        customers = facts.live_customers()
        sales = facts.sales(until_day=as_of_day)
    unit_kinds = {unit_id: kind or "other" for unit_id, kind in BusinessUnit.objects.values_list("id", "kind")}
    empty = pl.DataFrame(schema={"customer_id": pl.Int64, "day": pl.Int32})
    consents = pl.DataFrame(schema={"customer_id": pl.Int64, "channel": pl.String, "at": pl.Datetime("us", "UTC"),
                                    "id": pl.Int64, "granted": pl.Int8, "day": pl.Int32})
    prepared = summary.prepare(customers=customers, sales=sales, unit_kinds=unit_kinds, refunds=empty,
                               complaints=empty, consents=consents)
    now = summary.at_cutoff(prepared, day=as_of_day).filter(pl.col("has_purchase"))
    x = now["frequency"].to_numpy().astype(float)
    return (x, now["t_x"].to_numpy().astype(float), now["age_days"].to_numpy().astype(float),
            np.where(x > 0, now["repeat_avg"].fill_null(0.0).to_numpy(), np.nan))


def bench_fit(as_of_day: int, repeat: int, lifetimes_repeat: int) -> dict:
    import warnings

    import numpy as np
    import pandas as pd
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    from dangol.analytics import clv

    say("fit: reading the summary…")
    x, t_x, age, spend = read_summary(as_of_day)
    repeaters = x > 0
    series = [pd.Series(v) for v in (x, t_x, age)]
    gg_series = (pd.Series(x[repeaters]), pd.Series(spend[repeaters]))

    def ours():
        return clv.fit_bgnbd(x, t_x, age), clv.fit_gamma_gamma(x, spend)

    def theirs():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bg = BetaGeoFitter().fit(*series).params_
            gg = GammaGammaFitter().fit(*gg_series).params_
        return bg, gg

    ours_seconds, theirs_seconds = [], []
    our_result = their_result = None
    for round_ in range(max(repeat, lifetimes_repeat)):  # interleaved: drift on the shared machine hits both alike
        if round_ < repeat:
            started = time.perf_counter()
            our_result = ours()
            ours_seconds.append(time.perf_counter() - started)
        if round_ < lifetimes_repeat:
            say(f"fit: lifetimes, round {round_ + 1}…")
            started = time.perf_counter()
            their_result = theirs()
            theirs_seconds.append(time.perf_counter() - started)
    bg, gg = our_result
    their_bg, their_gg = their_result
    ours_params = {"r": bg.r, "alpha": bg.alpha, "a": bg.a, "b": bg.b, "p": gg.p, "q": gg.q, "gamma": gg.gamma}
    their_params = {**{k: float(their_bg[k]) for k in ("r", "alpha", "a", "b")},
                    "p": float(their_gg["p"]), "q": float(their_gg["q"]), "gamma": float(their_gg["v"])}
    differences = {k: abs(ours_params[k] - their_params[k]) / abs(their_params[k]) for k in ours_params}
    return {
        "buyers": int(len(x)), "repeat_buyers": int(repeaters.sum()),
        "ours_seconds": median(ours_seconds), "ours_runs": [round(s, 3) for s in ours_seconds],
        "lifetimes_seconds": median(theirs_seconds), "lifetimes_runs": [round(s, 3) for s in theirs_seconds],
        "speedup": round(statistics.median(theirs_seconds) / statistics.median(ours_seconds), 1), "target_speedup": 10,
        "ours": {k: round(v, 8) for k, v in ours_params.items()},
        "lifetimes": {k: round(v, 8) for k, v in their_params.items()},
        "max_relative_difference": float(f"{max(differences.values()):.2e}"), "tolerance": 1e-3,
        "ll": {"bgnbd": round(bg.ll, 1), "gamma_gamma": round(gg.ll, 1)},
    }


# --- 3. the RFM aggregation against DuckDB ---------------------------------------------------------------------------

DUCKDB_RFM = """
WITH orders AS (SELECT * FROM {source}),
refund AS (
    SELECT r.refund_of_id AS sale_id, r.total AS amount, r.total + s.total <= 0 AS cancels
    FROM orders r JOIN orders s ON s.id = r.refund_of_id
    WHERE r.kind = 'refund' AND NOT r.needs_review AND r.at < $until
),
counted AS (
    SELECT o.customer_id, o.unit_id, CAST(floor((o.at + 32400) / 86400) AS INTEGER) AS day, o.total AS value,
           1 AS orders
    FROM orders o LEFT JOIN refund c ON c.sale_id = o.id AND c.cancels
    WHERE o.kind = 'sale' AND NOT o.needs_review AND o.customer_id IS NOT NULL AND o.at < $until
      AND c.sale_id IS NULL
    UNION ALL
    SELECT s.customer_id, s.unit_id, CAST(floor((s.at + 32400) / 86400) AS INTEGER), f.amount, 0
    FROM refund f JOIN orders s ON s.id = f.sale_id
    WHERE NOT f.cancels AND s.kind = 'sale' AND NOT s.needs_review AND s.customer_id IS NOT NULL
),
days AS (
    SELECT customer_id, day, SUM(value) AS value, SUM(orders) AS orders
    FROM counted GROUP BY customer_id, day HAVING SUM(orders) > 0
),
units AS (
    SELECT customer_id, COUNT(DISTINCT unit_id) AS units_used FROM counted WHERE orders > 0 GROUP BY customer_id
)
SELECT d.customer_id, COUNT(*) AS purchase_days, SUM(d.orders) AS orders, MIN(d.day) AS first_day,
       MAX(d.day) AS last_day, SUM(d.value) AS monetary, arg_min(d.value, d.day) AS first_value,
       ANY_VALUE(u.units_used) AS units_used
FROM days d JOIN units u USING (customer_id)
GROUP BY d.customer_id
"""


def export_orders(path: Path) -> None:
    from django.db import connection

    columns = ("id, customer_id, unit_id, kind, refund_of_id, CASE WHEN needs_review THEN 1 ELSE 0 END, "
               "date_part('epoch', ordered_at), total")
    with connection.cursor() as cursor, open(path, "wb") as out:
        with cursor.cursor.copy(f"COPY (SELECT {columns} FROM sales_order) TO STDOUT WITH (FORMAT csv)") as copy:
            for chunk in copy:
                out.write(chunk)


def bench_rfm(as_of_day: int, repeat: int) -> dict:
    import duckdb
    import numpy as np
    import polars as pl
    from django.db import transaction

    from dangol.analytics import facts, summary
    from dangol.core.models import BusinessUnit

    unit_kinds = {unit_id: kind or "other" for unit_id, kind in BusinessUnit.objects.values_list("id", "kind")}
    empty = pl.DataFrame(schema={"customer_id": pl.Int64, "day": pl.Int32})
    consents = pl.DataFrame(schema={"customer_id": pl.Int64, "channel": pl.String, "at": pl.Datetime("us", "UTC"),
                                    "id": pl.Int64, "granted": pl.Int8, "day": pl.Int32})

    read_seconds = []

    def ours():
        started = time.perf_counter()
        with transaction.atomic():
            facts.tune_session()
            customers = facts.live_customers()
            sales = facts.sales(until_day=as_of_day)
        read_seconds.append(time.perf_counter() - started)
        prepared = summary.prepare(customers=customers, sales=sales, unit_kinds=unit_kinds, refunds=empty,
                                   complaints=empty, consents=consents)
        return summary.at_cutoff(prepared, day=as_of_day)

    until = facts.end_of_day(as_of_day).timestamp()
    with tempfile.TemporaryDirectory(prefix="dangol-rfm-") as folder:
        export, parquet = Path(folder) / "orders.csv", Path(folder) / "orders.parquet"
        say("RFM: exporting sales_order for DuckDB (not timed)…")
        export_orders(export)
        duck = duckdb.connect()
        duck.execute(f"SET threads = {os.cpu_count() or 1}")
        duck.execute("CREATE TABLE loaded AS SELECT * FROM read_csv($path, header = false, columns = {"
                     "'id': 'BIGINT', 'customer_id': 'BIGINT', 'unit_id': 'BIGINT', 'kind': 'VARCHAR', "
                     "'refund_of_id': 'BIGINT', 'needs_review': 'BOOLEAN', 'at': 'DOUBLE', 'total': 'BIGINT'})",
                     {"path": str(export)})
        duck.execute(f"COPY loaded TO '{parquet}' (FORMAT parquet)")
        export_mb = round(parquet.stat().st_size / 2**20)
        from_file = DUCKDB_RFM.replace("{source}", f"read_parquet('{parquet}')")
        from_memory = DUCKDB_RFM.replace("{source}", "loaded")

        def reference(query=from_file):
            return pl.from_arrow(duck.execute(query, {"until": until}).to_arrow_table())

        ours_seconds, duck_seconds, memory_seconds = [], [], []
        mine = theirs = None
        ours()  # warm the caches of both before timing
        reference()
        for round_ in range(repeat):
            say(f"RFM: round {round_ + 1} of {repeat}…")
            started = time.perf_counter()
            mine = ours()
            ours_seconds.append(time.perf_counter() - started)
            started = time.perf_counter()
            theirs = reference()
            duck_seconds.append(time.perf_counter() - started)
            started = time.perf_counter()
            reference(from_memory)
            memory_seconds.append(time.perf_counter() - started)
    buyers = mine.filter(pl.col("has_purchase")).select(
        pl.col("id").alias("customer_id"), "purchase_days", "orders", "first_day", "last_day", "monetary",
        "first_value", "units_used")
    compared = buyers.join(theirs, on="customer_id", how="full", suffix="_duckdb", coalesce=True)
    mismatches = {column: int(compared.filter(pl.col(column).cast(pl.Int64).ne_missing(
        pl.col(f"{column}_duckdb").cast(pl.Int64))).height)
        for column in ("purchase_days", "orders", "first_day", "last_day", "monetary", "first_value", "units_used")}
    return {
        "buyers": buyers.height, "duckdb_buyers": theirs.height, "parquet_mb": export_mb,
        "ours_seconds": median(ours_seconds), "ours_runs": [round(s, 3) for s in ours_seconds],
        "duckdb_seconds": median(duck_seconds), "duckdb_runs": [round(s, 3) for s in duck_seconds],
        "ratio": round(statistics.median(ours_seconds) / statistics.median(duck_seconds), 2), "target_ratio": 3,
        "ours_database_read_seconds": median(read_seconds[1:]),
        "ours_vectorised_seconds": round(statistics.median(ours_seconds) - statistics.median(read_seconds[1:]), 3),
        "duckdb_in_memory_seconds": median(memory_seconds),
        "ratio_to_in_memory": round(statistics.median(ours_seconds) / statistics.median(memory_seconds), 2),
        "mismatched_customers": mismatches, "identical": not any(mismatches.values()),
        "sum_monetary": int(np.asarray(buyers["monetary"]).sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds of our fit and of the RFM comparison")
    parser.add_argument("--lifetimes-repeat", type=int, default=2, help="timed rounds of the lifetimes fit")
    parser.add_argument("--database", help="scratch database name (default dangol_bench_<scale>, as bench/run.py)")
    args = parser.parse_args()
    name = args.database or f"dangol_bench_{scale_name(args.customers)}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(DJANGO_SETTINGS_MODULE="dangol.settings", DATABASE_URL=f"{PG_BASE}/{name}", DANGOL_LOG_LEVEL="WARNING")
    generate_seconds = prepare(name, args.customers, args.seed, env)
    os.environ.update({k: env[k] for k in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "DANGOL_LOG_LEVEL")})
    sys.path.insert(0, str(ROOT / "src"))
    import django

    django.setup()
    from dangol.analytics import facts

    started = time.perf_counter()
    with PeakMemory() as memory:
        refresh = bench_refresh()
        as_of_day = facts.day_number(dt.date.fromisoformat(refresh["as_of"]))
        fit = bench_fit(as_of_day, args.repeat, args.lifetimes_repeat)
        rfm = bench_rfm(as_of_day, args.repeat)
    report = {
        "benchmark": "analytics", "database": name, "customers": refresh["customers"],
        "orders": int(psql(f"{PG_BASE}/{name}", "select count(*) from sales_order")),
        "order_lines": int(psql(f"{PG_BASE}/{name}", "select count(*) from sales_orderline")),
        "generate_seconds": round(generate_seconds, 1) if generate_seconds is not None else "reused",
        "cores": os.cpu_count(), "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
        "refresh": refresh, "fit": fit, "rfm_aggregation": rfm,
        "peak_rss_mb_whole_run": round(memory.peak), "bench_seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(report, ensure_ascii=False))


if __name__ == "__main__":
    main()
