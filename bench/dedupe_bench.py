"""Benchmark of duplicate detection (ingest.dedupe) on generated data, scored against the generator's truth.

    .venv/bin/python bench/dedupe_bench.py --customers 100000            (builds dangol_bench_dedupe_100k)
    .venv/bin/python bench/dedupe_bench.py --customers 1000000 --drop    (dangol_bench_dedupe_1m, dropped afterwards)

Builds (or, when it already holds that many customers, reuses) a PostgreSQL scratch database with `dangol migrate`
and `dangol generate --customers N --seed 42` (DANGOL_BENCH_POSTGRES, default postgres://postgres@127.0.0.1:5432,
as bench/run.py), then runs ``run_dedupe(dry_run=True)`` in this process and prints one JSON line: seconds per phase
(export, features, train, predict, decide) and in all, peak resident memory of the process during the run (and
before it, for Django and the libraries), and precision / recall of the automatic merges and of automatic + queued
pairs against ``demo.GeneratedDuplicate``, with the recall per kind of injected variation.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_BASE = os.environ.get("DANGOL_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")


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


def customer_count(url: str) -> int | None:
    try:
        return int(psql(url, "select count(*) from customers_customer"))
    except (SystemExit, ValueError):
        return None


def prepare(name: str, customers: int, seed: int, env: dict) -> float | None:
    """The scratch database with ``customers`` generated records; seconds spent generating (None: reused)."""
    url = f"{PG_BASE}/{name}"
    exists = psql(f"{PG_BASE}/postgres", f"select 1 from pg_database where datname = '{name}'") == "1"
    if exists and customer_count(url) == customers:
        return None
    psql(f"{PG_BASE}/postgres", f"drop database if exists {name} with (force)")
    psql(f"{PG_BASE}/postgres", f"create database {name}")
    dangol(env, "migrate", "--no-input", "-v", "0")
    started = time.perf_counter()
    dangol(env, "generate", "--customers", str(customers), "--seed", str(seed), "--quiet")
    return time.perf_counter() - started


def measure(customers: int) -> dict:
    import django

    django.setup()
    import polars as pl

    from dangol.core.audit import Actor
    from dangol.demo.models import GeneratedDuplicate
    from dangol.ingest.dedupe import _rss_mb, run_dedupe, thresholds

    review, auto = thresholds()
    baseline = _rss_mb()
    result = run_dedupe(actor=Actor.system("bench"), dry_run=True)
    truth = pl.DataFrame(list(GeneratedDuplicate.objects.values_list("duplicate_id", "original_id", "variation")),
                         schema={"a": pl.Int64, "b": pl.Int64, "variation": pl.String}, orient="row").select(
        pl.min_horizontal("a", "b").alias("left_id"), pl.max_horizontal("a", "b").alias("right_id"), "variation")
    pairs = result.pairs.join(truth, on=["left_id", "right_id"], how="left")

    def scores(frame) -> dict:
        hits = frame.filter(pl.col("variation").is_not_null()).height
        return {"pairs": frame.height, "true": hits, "precision": round(hits / frame.height, 4) if frame.height else None,
                "recall": round(hits / truth.height, 4) if truth.height else None}

    found = truth.join(pairs.select("left_id", "right_id"), on=["left_id", "right_id"], how="semi")
    by_variation = {
        row["variation"]: round(row["found"] / row["all"], 4)
        for row in truth.group_by("variation").len("all").join(
            found.group_by("variation").len("found"), on="variation", how="left").fill_null(0).iter_rows(named=True)}
    return {
        "benchmark": "dedupe", "customers": customers, "records_compared": result.records,
        "duplicates_injected": truth.height, "trained": result.trained,
        "seconds": {**{k: round(v, 2) for k, v in result.phase_seconds.items()}, "total": round(result.seconds, 2)},
        "peak_rss_mb": round(result.peak_mb), "rss_before_mb": round(baseline),
        "thresholds": {"review": review, "auto_merge": auto},
        "candidates": result.candidates, "would_merge": result.would_merge, "would_queue": result.would_queue,
        "automatic": scores(pairs.filter(pl.col("match_probability") >= auto)),
        "automatic_and_queued": scores(pairs),
        "recall_by_variation": dict(sorted(by_variation.items())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--database", help="scratch database name (default dangol_bench_dedupe_<scale>)")
    parser.add_argument("--drop", action="store_true", help="drop the scratch database afterwards")
    args = parser.parse_args()
    name = args.database or f"dangol_bench_dedupe_{scale_name(args.customers)}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(DJANGO_SETTINGS_MODULE="dangol.settings", DATABASE_URL=f"{PG_BASE}/{name}", DANGOL_LOG_LEVEL="WARNING")
    try:
        generate_seconds = prepare(name, args.customers, args.seed, env)
        os.environ.update({k: env[k] for k in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "DANGOL_LOG_LEVEL")})
        sys.path.insert(0, str(ROOT / "src"))
        report = measure(args.customers)
        report["database"] = name
        report["generate_seconds"] = round(generate_seconds, 1) if generate_seconds is not None else "reused"
        print(json.dumps(report, ensure_ascii=False))
    finally:
        if args.drop:
            if "django.db" in sys.modules:
                from django.db import connections

                connections.close_all()
            psql(f"{PG_BASE}/postgres", f"drop database if exists {name} with (force)")


if __name__ == "__main__":
    main()
