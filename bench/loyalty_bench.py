"""Loyalty benchmark: the points backfill of a generated business (1M customers, ~10M order lines) and the latency of a
counter redemption under load, on PostgreSQL.

    .venv/bin/python bench/loyalty_bench.py                     (1M customers; builds or reuses dangol_bench_1m)
    .venv/bin/python bench/loyalty_bench.py --customers 10000   (a quick run on dangol_bench_10k)

1. The generated database ``dangol_bench_<scale>`` (DANGOL_BENCH_POSTGRES, default postgres://postgres@127.0.0.1:5432)
   is reused when it holds that many customers, else built with `dangol migrate` and `dangol generate --seed 42`.
   Another engineer may read it meanwhile, so the ledger is written into a copy, ``dangol_bench_loyalty_<scale>``
   (CREATE DATABASE … TEMPLATE; when the template is busy, the copy is generated the same way instead).
2. `dangol loyalty setup` then `dangol loyalty backfill` (timed, peak RSS of the process), then the expiry job and the
   tier review of everyone (timed), then `dangol loyalty check`. Reference: the floor of the same work in SQL alone —
   one CREATE TABLE AS SELECT writing a points row per sale, no rules, no lots, no checks.
3. Redemption, in-process, services against hand-written SQL, interleaved, with T threads each on its own connection:
   ``loyalty.services.redeem_points`` on random members vs. a transaction that locks the member's account row
   (SELECT … FOR UPDATE) and updates one row (the reference named in the issue); then T threads on ONE member (every
   redemption waits for the previous one's lock).
4. Redemption over HTTP: `dangol serve` (gunicorn, 3 workers × 2 threads) driven by bench/loadgen.py, open loop at a
   fixed rate, POST /api/v1/customers/{id}/points/redeem; target p99 ≤ 50 ms. Everything shares the machine's cores.

Prints one JSON object (also written to bench/results/loyalty.json).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PG_BASE = os.environ.get("DANGOL_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
sys.path.insert(0, str(ROOT / "bench"))


def scale_name(n: int) -> str:
    for size, suffix in ((1_000_000, "m"), (1_000, "k")):
        if n >= size and n % size == 0:
            return f"{n // size}{suffix}"
    return str(n)


def psql(url: str, sql: str, check: bool = True) -> str:
    done = subprocess.run(["psql", url, "-tAqc", sql], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise SystemExit(f"psql failed: {done.stderr.strip()}")
    return done.stdout.strip()


def env_for(name: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(DATABASE_URL=f"{PG_BASE}/{name}", DJANGO_SETTINGS_MODULE="dangol.settings", DANGOL_LOG_LEVEL="WARNING",
               DANGOL_DEDUPE_AFTER_IMPORT="0")
    return env


def dangol(env: dict, *args: str, timeout: float = 7200) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "dangol.cli", *args], env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise SystemExit(f"dangol {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done


def timed(env: dict, *args: str) -> tuple[float, str, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = dangol(env, *args)
    seconds = time.perf_counter() - started
    peak = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 1024
    return seconds, (done.stdout.strip().splitlines() or [""])[-1], peak


def customers_in(name: str) -> int | None:
    try:
        return int(psql(f"{PG_BASE}/{name}", "select count(*) from customers_customer"))
    except (SystemExit, ValueError):
        return None


def generate(name: str, customers: int) -> float:
    psql(f"{PG_BASE}/postgres", f"drop database if exists {name} with (force)")
    psql(f"{PG_BASE}/postgres", f"create database {name}")
    env = env_for(name)
    dangol(env, "migrate", "--no-input", "-v", "0")
    started = time.perf_counter()
    dangol(env, "generate", "--customers", str(customers), "--seed", "42")
    return time.perf_counter() - started


def prepare(customers: int) -> tuple[str, dict, dict]:
    scale = scale_name(customers)
    source, copy = f"dangol_bench_{scale}", f"dangol_bench_loyalty_{scale}"
    info: dict = {"source_database": source, "database": copy}
    if (customers_in(source) or 0) < customers:
        info["generated_source_seconds"] = round(generate(source, customers), 1)
    psql(f"{PG_BASE}/postgres", f"drop database if exists {copy} with (force)")
    for _attempt in range(5):
        started = time.perf_counter()
        done = subprocess.run(["psql", f"{PG_BASE}/postgres", "-tAqc", f"create database {copy} template {source}"],
                              capture_output=True, text=True)
        if done.returncode == 0:
            info["copied_seconds"] = round(time.perf_counter() - started, 1)
            break
        time.sleep(20)  # the template has readers: wait for a quiet moment
    else:
        info["copy"] = "template busy: generated instead"
        info["generated_copy_seconds"] = round(generate(copy, customers), 1)
    env = env_for(copy)
    dangol(env, "migrate", "--no-input", "-v", "0")
    dangol(env, "demo", "--no-serve")  # the demo accounts; the data exists already
    info["order_lines"] = int(psql(f"{PG_BASE}/{copy}", "select count(*) from sales_orderline"))
    info["orders"] = int(psql(f"{PG_BASE}/{copy}", "select count(*) from sales_order"))
    return copy, env, info


def reference_sql_backfill(name: str) -> float:
    """The floor: one statement writing a row of points per sale of a known customer (1 % of the total)."""
    url = f"{PG_BASE}/{name}"
    psql(url, "drop table if exists bench_points_reference")
    started = time.perf_counter()
    psql(url, "create table bench_points_reference as select id as order_id, customer_id, total / 100 as points, ordered_at "
              "from sales_order where kind = 'sale' and customer_id is not null and not needs_review")
    seconds = time.perf_counter() - started
    psql(url, "drop table bench_points_reference")
    return seconds


# --- in-process redemption ---------------------------------------------------------------------------------------------

def percentiles(values: list[float]) -> dict:
    ordered = sorted(values)

    def p(q):
        return round(ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))], 2)

    return {"n": len(ordered), "p50_ms": p(50), "p95_ms": p(95), "p99_ms": p(99), "max_ms": round(ordered[-1], 2)}


def in_process(threads: int, per_thread: int, rounds: int) -> dict:
    import django

    django.setup()
    from django.core.exceptions import ValidationError
    from django.db import connection, transaction

    from dangol.core.audit import Actor
    from dangol.core.models import BusinessUnit
    from dangol.loyalty import services
    from dangol.loyalty.models import Lot

    bakery = BusinessUnit.objects.get(code="bakery")
    with connection.cursor() as cursor:
        cursor.execute("SELECT customer_id FROM loyalty_lot WHERE remaining > 0 AND expires_at > now() "
                       "GROUP BY customer_id HAVING SUM(remaining) >= 20000 ORDER BY SUM(remaining) DESC LIMIT 3000")
        members = [row[0] for row in cursor.fetchall()]
    lot_of = dict(Lot.objects.filter(customer_id__in=members, remaining__gt=0).values_list("customer_id", "entry_id"))
    members = [m for m in members if m in lot_of]
    connection.close()
    refused = [0]

    def ours(customer_id):
        try:
            services.redeem_points(actor=Actor.system("bench"), customer=services.Customer.objects.get(pk=customer_id),
                                   points=100, unit=bakery)
        except ValidationError:
            refused[0] += 1  # the member's points ran out: a refusal is a redemption's answer too

    def reference(customer_id):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT customer_id FROM loyalty_account WHERE customer_id = %s FOR UPDATE", [customer_id])
            cursor.execute("UPDATE loyalty_lot SET remaining = remaining WHERE entry_id = %s", [lot_of[customer_id]])

    def run(function, pick) -> list[float]:
        latencies: list[float] = []
        failures: list[BaseException] = []
        lock = threading.Lock()
        start = threading.Barrier(threads)

        def worker(seed):
            rng = random.Random(seed)
            mine = []
            try:
                start.wait(60)
                for _ in range(per_thread):
                    customer_id = pick(rng)
                    began = time.perf_counter()
                    function(customer_id)
                    mine.append((time.perf_counter() - began) * 1000)
            except BaseException as exc:  # noqa: BLE001 (reported below)
                failures.append(exc)
            finally:
                connection.close()
            with lock:
                latencies.extend(mine)

        pool = [threading.Thread(target=worker, args=(seed,)) for seed in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        if failures:
            raise failures[0]
        return latencies

    spread = lambda rng: rng.choice(members)  # noqa: E731
    hot_customer = members[0]
    hot = lambda rng: hot_customer  # noqa: E731
    result: dict = {"threads": threads, "per_thread": per_thread, "members": len(members), "refused": refused}
    for name, pick in (("spread", spread), ("one_member", hot)):
        ours_runs, ref_runs = [], []
        for _ in range(rounds):
            ours_runs.append(percentiles(run(ours, pick)))
            ref_runs.append(percentiles(run(reference, pick)))
        result[name] = {
            "ours": ours_runs, "reference": ref_runs,
            "ours_p99_median_ms": statistics.median(r["p99_ms"] for r in ours_runs),
            "reference_p99_median_ms": statistics.median(r["p99_ms"] for r in ref_runs),
            "ours_p50_median_ms": statistics.median(r["p50_ms"] for r in ours_runs),
            "reference_p50_median_ms": statistics.median(r["p50_ms"] for r in ref_runs),
        }
    return result


# --- redemption over HTTP ----------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_load(env: dict, name: str, rate: float, duration: float, runs: int) -> dict:
    from loadgen import Request, run_load

    serve_env = dict(env, DANGOL_SECRET_KEY="bench-" + "x" * 50, DANGOL_ALLOWED_HOSTS="127.0.0.1")
    token = dangol(serve_env, "token", "create", "--user", "demo").stdout.strip().splitlines()[-1]
    members = [int(x) for x in psql(f"{PG_BASE}/{name}",
                                    "select customer_id from loyalty_lot where remaining > 0 and expires_at > now() "
                                    "group by customer_id having sum(remaining) >= 20000 "
                                    "order by sum(remaining) desc limit 2000").split()]
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "dangol.cli", "serve", "--bind", f"127.0.0.1:{port}", "--workers", "3",
                               "--threads", "2"], env=serve_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Accept": "application/json"}
    rng = random.Random(5)
    body = json.dumps({"points": 100, "unit": "bakery"}).encode()
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.3)
        spread = lambda i: Request("POST", f"/api/v1/customers/{rng.choice(members)}/points/redeem", headers, body)  # noqa: E731
        one = lambda i: Request("POST", f"/api/v1/customers/{members[0]}/points/redeem", headers, body)  # noqa: E731
        run_load(base, spread, rate=30, duration=3)  # warm up
        result: dict = {"members": len(members)}
        # One member: every redemption waits for the previous one's lock, so the rate is what one row sustains.
        for label, make, scenario_rate in (("spread", spread, rate), ("one_member", one, rate / 5)):
            measured = []
            for _ in range(runs):
                time.sleep(4)
                # Fewer pooled connections at the low rate: an idle keep-alive connection is closed by gunicorn after
                # 2 s, and the load generator would count the next request on it as an error.
                measured.append(run_load(base, make, rate=scenario_rate, duration=duration,
                                         max_connections=64 if scenario_rate >= 50 else 8).summary())
            result[label] = {"rate": scenario_rate, "runs": measured,
                             "p99_ms_median": statistics.median(r["p99_ms"] for r in measured)}
        return result
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:  # still draining a backlog: this is a benchmark, not a deployment
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=100.0, help="redemptions per second of the HTTP load")
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--keep", action="store_true", help="keep the copy with its ledger afterwards")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse the copy of an earlier run, its loyalty tables emptied first")
    parser.add_argument("--http-only", action="store_true",
                        help="only the HTTP load, on the kept copy of an earlier run (its result replaced in loyalty.json)")
    args = parser.parse_args()
    started = time.perf_counter()
    copy = f"dangol_bench_loyalty_{scale_name(args.customers)}"
    if args.http_only:
        path = RESULTS / "loyalty.json"
        result = json.loads(path.read_text()) if path.exists() else {}
        result["redeem_http"] = http_load(env_for(copy), copy, args.rate, args.duration, args.runs)
        path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        print(json.dumps(result["redeem_http"]))
        return
    if args.reuse and (customers_in(copy) or 0) >= args.customers:
        name, env, info = copy, env_for(copy), {"database": copy, "reused": True}
        psql(f"{PG_BASE}/{name}", "TRUNCATE loyalty_lot, loyalty_ledgerentry, loyalty_coupon, loyalty_tierchange, "
                                  "loyalty_referral, loyalty_account, loyalty_tier, loyalty_coupontemplate, loyalty_earnrule, "
                                  "loyalty_program CASCADE")
        psql(f"{PG_BASE}/{name}", "DELETE FROM customers_interaction WHERE kind = 'loyalty'")
        psql(f"{PG_BASE}/{name}", "VACUUM ANALYZE customers_interaction")
        info["order_lines"] = int(psql(f"{PG_BASE}/{name}", "select count(*) from sales_orderline"))
        info["orders"] = int(psql(f"{PG_BASE}/{name}", "select count(*) from sales_order"))
    else:
        name, env, info = prepare(args.customers)
    result: dict = {"customers": args.customers, **info}
    RESULTS.mkdir(parents=True, exist_ok=True)

    def save():  # after every step: a failure later keeps what was measured
        (RESULTS / "loyalty.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")

    dangol(env, "loyalty", "setup")
    seconds, line, peak = timed(env, "loyalty", "backfill")
    result["backfill"] = {"seconds": round(seconds, 1), "peak_rss_mb": round(peak), "summary": line,
                          "order_lines_per_second": round(result["order_lines"] / seconds)}
    save()
    result["reference_sql_seconds"] = round(reference_sql_backfill(name), 1)
    seconds, line, peak = timed(env, "loyalty", "backfill")
    result["backfill_again"] = {"seconds": round(seconds, 1), "summary": line}
    save()
    seconds, line, peak = timed(env, "loyalty", "expire")
    result["expire"] = {"seconds": round(seconds, 1), "peak_rss_mb": round(peak), "summary": line}
    save()
    seconds, line, peak = timed(env, "loyalty", "tiers")
    result["tiers"] = {"seconds": round(seconds, 1), "peak_rss_mb": round(peak), "summary": line}
    save()
    seconds, line, peak = timed(env, "loyalty", "notify")
    result["notify"] = {"seconds": round(seconds, 1), "summary": line}
    save()
    seconds, line, _peak = timed(env, "loyalty", "check")
    result["check"] = {"seconds": round(seconds, 1), "summary": line}
    save()
    child = subprocess.run([sys.executable, __file__, "--_inprocess", str(args.threads)], env=env, capture_output=True, text=True)
    if child.returncode != 0:
        raise SystemExit(child.stderr[-3000:])
    result["redeem_in_process"] = json.loads(child.stdout.strip().splitlines()[-1])
    save()
    result["redeem_http"] = http_load(env, name, args.rate, args.duration, args.runs)
    save()
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    if not args.keep:
        psql(f"{PG_BASE}/postgres", f"drop database if exists {name} with (force)")
    save()
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--_inprocess":
        print(json.dumps(in_process(int(sys.argv[2]), per_thread=100, rounds=3)))
    else:
        main()
