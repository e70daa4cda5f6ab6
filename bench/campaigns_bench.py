"""Benchmark of segments and campaigns on generated data, PostgreSQL.

    .venv/bin/python bench/campaigns_bench.py --customers 100000
    .venv/bin/python bench/campaigns_bench.py --customers 1000000 --repeat 5

Uses the scratch database dangol_campaigns_<scale> at DANGOL_BENCH_POSTGRES (default postgres://postgres@127.0.0.1:5432):
reused (and migrated) when it has customers, otherwise created with `dangol migrate`, `dangol generate --customers N
--seed 42`, `dangol loyalty setup` + `backfill --tiers` and `dangol analytics refresh` (the metrics the rules read).
Then, in this process and in one run:

1. **live count** of a six-rule nested segment mixing profile, purchase and metric conditions — province, age, (churn
   risk OR RFM segment), no purchase for 90 days, net spend at the Seoul hotel — through the whole path the builder
   takes (validate the tree, compile it, count in one query) against the hand-written SQL for the same question
   (the reference), interleaved ``--repeat`` times, medians; both counts must be equal;
2. **campaign creation** — a campaign to a static segment of the first ``--campaign-size`` live customers (200,000;
   all of them at smaller scales), with a 10 % holdout, a
   coupon per recipient and a personalised SMS (name, coupon code, offer): ``run_campaign`` selects, splits, writes
   the recipients, issues the coupons, renders and writes the outbox through ``messaging.send_bulk``. Run inside a
   transaction that is rolled back, so the database stays as generated; ``--campaign-repeat`` times, median.

Prints one JSON line and writes it to bench/results/campaigns.json (progress goes to stderr).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_BASE = os.environ.get("DANGOL_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
RESULTS = ROOT / "bench" / "results" / "campaigns.json"


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


def dangol(env: dict, *args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "dangol.cli", *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"dangol {' '.join(args)} failed:\n{done.stderr.strip()[-2000:]}")


def prepare(name: str, customers: int, env: dict) -> None:
    url = f"{PG_BASE}/{name}"
    if not psql(f"{PG_BASE}/postgres", f"select 1 from pg_database where datname = '{name}'"):
        psql(f"{PG_BASE}/postgres", f"create database {name}")
    dangol(env, "migrate", "-v0")
    if int(psql(url, "select count(*) from customers_customer") or 0) == 0:
        say(f"generating {customers:,} customers into {name}…")
        dangol(env, "generate", "--customers", str(customers), "--seed", "42")
    if int(psql(url, "select count(*) from loyalty_account") or 0) == 0:
        say("loyalty backfill…")
        dangol(env, "loyalty", "setup")
        dangol(env, "loyalty", "backfill", "--tiers")
    if int(psql(url, "select count(*) from analytics_customermetrics") or 0) == 0:
        say("analytics refresh…")
        dangol(env, "analytics", "refresh")


def segment_tree(seoul_code: str, sido: str) -> dict:
    return {"op": "and", "rules": [
        {"field": "sido", "operator": "in", "value": [sido]},
        {"field": "age", "operator": "gte", "value": 30},
        {"op": "or", "rules": [
            {"field": "churn_risk", "operator": "gte", "value": 0.5},
            {"field": "rfm_segment", "operator": "in", "value": ["at_risk", "cant_lose", "hibernating"]},
        ]},
        {"field": "days_since_purchase", "operator": "gte", "value": 90},
        {"field": "spent", "operator": "gte", "value": 300000, "unit": seoul_code},
    ]}


HAND_SQL = """
SELECT count(*) FROM customers_customer c
WHERE c.merged_into_id IS NULL AND c.erased_at IS NULL AND NOT c.processing_suspended
  AND EXISTS (SELECT 1 FROM customers_membership m WHERE m.customer_id = c.id AND m.unit_id = %(unit)s)
  AND EXISTS (SELECT 1 FROM customers_address a WHERE a.customer_id = c.id AND a.is_primary AND a.sido = %(sido)s)
  AND EXISTS (SELECT 1 FROM customers_anniversary b WHERE b.customer_id = c.id AND b.kind = 'birthday'
              AND b.year IS NOT NULL AND (b.year, b.month, b.day) <= (%(y)s, %(m)s, %(d)s))
  AND EXISTS (SELECT 1 FROM analytics_customermetrics x WHERE x.customer_id = c.id
              AND (x.churn_risk >= 0.5 OR x.rfm_segment IN ('at_risk', 'cant_lose', 'hibernating')))
  AND NOT EXISTS (SELECT 1 FROM sales_order o WHERE o.customer_id = c.id AND o.kind = 'sale' AND NOT o.needs_review
                  AND o.ordered_at >= %(since)s)
  AND EXISTS (SELECT 1 FROM sales_order s WHERE s.customer_id = c.id AND s.unit_id = %(unit)s AND NOT s.needs_review
              GROUP BY s.customer_id HAVING SUM(s.total) >= 300000)
"""

# The same question over the segment facts table (one row per customer), written by hand.
HAND_SQL_FACTS = """
SELECT count(*) FROM campaigns_customerfacts f
WHERE f.live AND f.units ? %(ukey)s AND f.sido = %(sido)s AND f.birth_min <= %(birth_key)s
  AND (f.churn_risk >= 0.5 OR f.rfm_segment IN ('at_risk', 'cant_lose', 'hibernating'))
  AND (f.last_sale_at IS NULL OR f.last_sale_at < %(since)s)
  AND (f.unit_spent ->> %(ukey)s)::bigint >= 300000
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--campaign-repeat", type=int, default=1)
    parser.add_argument("--skip-campaign", action="store_true")
    parser.add_argument("--campaign-size", type=int, default=200_000, help="recipients of the campaign (first N live customers)")
    parser.add_argument("--prepare-only", action="store_true")
    parser.add_argument("--rebuild-facts", action="store_true",
                        help="mark every customer's segment facts and time their full rebuild")
    args = parser.parse_args()
    name = f"dangol_campaigns_{scale_name(args.customers)}"
    env = {**os.environ, "DATABASE_URL": f"{PG_BASE}/{name}", "DANGOL_DATA_DIR": os.environ.get("DANGOL_DATA_DIR", "/tmp/campaigns-data"),
           "PYTHONPATH": str(ROOT / "src")}
    prepare(name, args.customers, env)
    if args.prepare_only:
        return
    os.environ.update({"DATABASE_URL": env["DATABASE_URL"], "DJANGO_SETTINGS_MODULE": "dangol.settings"})
    sys.path.insert(0, str(ROOT / "src"))
    import django

    django.setup()
    from django.db import connection, transaction
    from django.utils import timezone

    from dangol.campaigns import rules, selectors, services
    from dangol.campaigns.models import Segment
    from dangol.core.audit import Actor
    from dangol.core.models import BusinessUnit, Role
    from dangol.core.services import create_staff_user
    from dangol.customers.models import Address

    seoul = BusinessUnit.objects.filter(kind="hotel").order_by("id").first()
    sido = Address.objects.filter(sigungu="강남구").values_list("sido", flat=True).first() or "서울특별시"
    tree = segment_tree(seoul.code, sido)
    now = timezone.now()
    today = timezone.localdate(now)
    params = {"unit": seoul.pk, "sido": sido, "since": now - dt.timedelta(days=90), "y": today.year - 30, "m": today.month,
              "d": today.day, "ukey": f"u{seoul.pk}", "birth_key": (today.year - 30) * 10000 + today.month * 100 + today.day}
    from dangol.campaigns import facts

    if args.rebuild_facts:
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO campaigns_factsdirty (customer_id) SELECT id FROM customers_customer "
                           "ON CONFLICT DO NOTHING")
    started = time.perf_counter()
    refreshed = facts.refresh()  # what the background job does; the count refreshes what is marked after it
    facts_seconds = time.perf_counter() - started
    say(f"segment facts: {refreshed:,} rows refreshed in {facts_seconds:.1f} s")

    def ours() -> int:
        cleaned = rules.clean_tree(tree)
        return selectors.count_matching(cleaned, unit=seoul, now=now)

    def hand_written(sql):
        def run() -> int:
            # The same session settings as the builder's count (JIT off), so that the comparison is of the queries.
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")
                cursor.execute(sql, params)
                return cursor.fetchone()[0]
        return run

    reference, reference_facts = hand_written(HAND_SQL), hand_written(HAND_SQL_FACTS)

    ours(), reference(), reference_facts()  # warm the caches
    times = {"ours": [], "reference": [], "reference_facts": []}
    counts = {}
    for _round in range(args.repeat):
        for label, function in (("ours", ours), ("reference", reference), ("reference_facts", reference_facts)):
            started = time.perf_counter()
            counts[label] = function()
            times[label].append(time.perf_counter() - started)
    if len(set(counts.values())) != 1:
        say(f"WARNING: counts differ: {counts}")
    ours_ms = statistics.median(times["ours"]) * 1000
    ref_ms = statistics.median(times["reference"]) * 1000
    facts_ms = statistics.median(times["reference_facts"]) * 1000
    say(f"live count: ours {ours_ms:.0f} ms, hand-written on the source tables {ref_ms:.0f} ms, "
        f"hand-written on the facts table {facts_ms:.0f} ms, count {counts}")
    out = {"scale": args.customers, "database": name, "date": today.isoformat(),
           "segment": rules.describe(rules.clean_tree(tree)),
           "live_count": {"ours_ms_median": round(ours_ms, 1), "ours_ms_all": [round(t * 1000, 1) for t in times["ours"]],
                          "reference_ms_median": round(ref_ms, 1),
                          "reference_ms_all": [round(t * 1000, 1) for t in times["reference"]],
                          "ratio": round(ours_ms / ref_ms, 2), "count": counts["ours"], "reference_count": counts["reference"],
                          "reference_facts_ms_median": round(facts_ms, 1),
                          "reference_facts_ms_all": [round(t * 1000, 1) for t in times["reference_facts"]],
                          "ratio_to_facts_reference": round(ours_ms / facts_ms, 2),
                          "reference_facts_count": counts["reference_facts"],
                          "facts_refreshed": refreshed, "facts_refresh_seconds": round(facts_seconds, 1),
                          "target_ms": 500, "target_ratio": 1.5}}

    if not args.skip_campaign:
        seconds, recipients, phases = [], 0, []

        class Rollback(Exception):
            pass

        for _round in range(args.campaign_repeat):
            try:
                with transaction.atomic():
                    admin = create_staff_user(username=f"bench-{time.time_ns()}", password="bench-password-long", role=Role.ADMIN)
                    actor = Actor(user=admin, via="bench")
                    everyone = Segment.objects.create(name="first N", kind="static", rules={"op": "and", "rules": []},
                                                      created_by=admin)
                    with connection.cursor() as cursor:  # a static list of the first N live customers
                        cursor.execute("INSERT INTO campaigns_segmentmember (segment_id, customer_id) SELECT %s, id "
                                       "FROM customers_customer WHERE merged_into_id IS NULL ORDER BY id LIMIT %s",
                                       [everyone.pk, args.campaign_size])
                    campaign = services.create_campaign(
                        actor=actor, name="bench", segment=everyone, channel="sms", unit=None,
                        variants=[services.VariantInput(body="{{ name }}님, {{ coupon_value }} 할인 쿠폰 {{ coupon_code }} "
                                                             "({{ coupon_expires }}까지)")],
                        offer=services.OfferInput(kind="percent", value=10, valid_days=14), holdout_pct=10)
                    services.approve_campaign(actor=actor, campaign=campaign)
                    started = time.perf_counter()
                    run = services.run_campaign(campaign_id=campaign.pk)
                    seconds.append(time.perf_counter() - started)
                    recipients = run.recipients + run.holdout
                    phases.append(run.outcome)
                    say(f"campaign: {recipients:,} selected, {run.recipients:,} sent in {seconds[-1]:.1f} s")
                    raise Rollback
            except Rollback:
                pass
        out["campaign"] = {"selected": recipients, "seconds_median": round(statistics.median(seconds), 1),
                           "seconds_all": [round(s, 1) for s in seconds], "target_seconds": 60, "target_recipients": 200_000,
                           "per_100k_seconds": round(statistics.median(seconds) * 100_000 / max(recipients, 1), 1),
                           "phases_seconds": (phases[-1] or {}).get("A", {}) and phases[-1].get("seconds", {}),
                           "campaigns_own_seconds": round(sum(v for k, v in phases[-1].get("seconds", {}).items()
                                                              if k != "messaging_send_bulk"), 1) if phases else None,
                           "send_bulk_outcome": {k: v for k, v in (phases[-1] if phases else {}).items() if k != "seconds"}}
    line = json.dumps(out, ensure_ascii=False)
    print(line)
    previous = {}
    if RESULTS.exists():
        try:
            previous = json.loads(RESULTS.read_text())
        except ValueError:
            previous = {}
    previous[scale_name(args.customers)] = out
    RESULTS.write_text(json.dumps(previous, ensure_ascii=False, indent=2) + "\n")


if __name__ == "__main__":
    main()
