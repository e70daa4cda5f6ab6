"""Dangol's benchmark harness.

    ./dev bench --scale 10k            (or: .venv/bin/python bench/run.py --scale 10k 100k 1m)

For each scale it builds a scratch database (PostgreSQL by default, --db sqlite for the embedded one) with
`dangol generate` (N customers, about 10 order lines each), then runs every benchmark beside its reference in the
same run — interleaved, repeated, median with min–max — and writes bench/results/latest.{md,json}. Ratios matter
more than absolute times on a shared machine. Load tests run `dangol serve` (gunicorn) on loopback and drive it with
an open-loop generator at a fixed rate, bounded in count and time.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
import tracemalloc
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SCALES = {"1k": 1_000, "10k": 10_000, "100k": 100_000, "1m": 1_000_000}
PG_BASE = os.environ.get("DANGOL_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
sys.path.insert(0, str(ROOT / "bench"))


@dataclass
class Measure:
    name: str
    scale: str
    subject: str
    reference: str
    unit: str
    ours: list[float]
    ref: list[float]
    peak_mb: float = 0.0
    notes: str = ""
    extra: dict = field(default_factory=dict)

    def row(self) -> dict:
        med_o, med_r = statistics.median(self.ours), statistics.median(self.ref) if self.ref else None
        return {
            "benchmark": self.name, "scale": self.scale, "subject": self.subject, "reference": self.reference, "unit": self.unit,
            "median": med_o, "min": min(self.ours), "max": max(self.ours),
            "ref_median": med_r, "ref_min": min(self.ref) if self.ref else None, "ref_max": max(self.ref) if self.ref else None,
            "ratio": (med_o / med_r) if med_r else None, "runs": len(self.ours), "peak_mb": round(self.peak_mb, 1),
            "notes": self.notes, **self.extra,
        }


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    pg = subprocess.run(["psql", f"{PG_BASE}/postgres", "-tAc", "show server_version"], capture_output=True, text=True).stdout.strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(mem_gb, 1), "python": platform.python_version(),
            "os": platform.platform(), "postgresql": pg or "n/a", "date": time.strftime("%Y-%m-%d %H:%M %Z")}


def dangol(env: dict, *args: str, timeout: float = 3600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dangol.cli", *args], env=env, check=True, capture_output=True, text=True, timeout=timeout)


def scratch_database(db: str, scale: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env["DJANGO_SETTINGS_MODULE"] = "dangol.settings"
    if db == "postgres":
        name = f"dangol_bench_{scale}"
        env["DATABASE_URL"] = f"{PG_BASE}/{name}"
        env["_BENCH_DB"] = name
    else:
        folder = ROOT / "var" / f"bench-{scale}"
        env["DANGOL_DATA_DIR"] = str(folder)
        env.pop("DATABASE_URL", None)
        env["_BENCH_DB"] = str(folder)
    return env


def reset_database(env: dict, db: str) -> None:
    if db == "postgres":
        name = env["_BENCH_DB"]
        subprocess.run(["psql", f"{PG_BASE}/postgres", "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], check=True, capture_output=True)
        subprocess.run(["psql", f"{PG_BASE}/postgres", "-qc", f"CREATE DATABASE {name}"], check=True, capture_output=True)
    else:
        import shutil

        shutil.rmtree(env["_BENCH_DB"], ignore_errors=True)


def bench_generate(env: dict, db: str, scale: str, n: int) -> Measure:
    """`dangol generate` once per scale (it is the set-up of everything else); the reference is PostgreSQL COPY
    moving the same order-line rows in and out, the floor for any bulk load."""
    reset_database(env, db)
    dangol(env, "migrate", "--no-input", "-v", "0")
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    out = dangol(env, "generate", "--customers", str(n), "--seed", "42")
    seconds = time.perf_counter() - started
    peak = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 1024
    ref = []
    if db == "postgres":
        copy_sql = ("\\copy (select * from sales_orderline) to '/tmp/dangol_bench_lines.csv' csv",
                    "create unlogged table if not exists bench_copy (like sales_orderline)",
                    "truncate bench_copy")
        for sql in copy_sql:
            subprocess.run(["psql", env["DATABASE_URL"], "-qc", sql], check=True, capture_output=True)
        t = time.perf_counter()
        subprocess.run(["psql", env["DATABASE_URL"], "-qc", "\\copy bench_copy from '/tmp/dangol_bench_lines.csv' csv"], check=True, capture_output=True)
        ref.append(time.perf_counter() - t)
        subprocess.run(["psql", env["DATABASE_URL"], "-qc", "drop table bench_copy"], check=True, capture_output=True)
        os.unlink("/tmp/dangol_bench_lines.csv")
    return Measure("generate", scale, f"dangol generate --customers {n}", "COPY of the order lines alone" if ref else "none (SQLite)",
                   "s", [seconds], ref, peak_mb=peak, notes=out.stdout.strip().splitlines()[-1][:200] if out.stdout.strip() else "")


def in_process_benchmarks(env: dict, scale: str, repeat: int) -> list[Measure]:
    """Selectors the staff app and API call, against the same query written by hand in SQL."""
    os.environ.update({k: v for k, v in env.items() if k in ("DATABASE_URL", "DANGOL_DATA_DIR")})
    os.environ["DJANGO_SETTINGS_MODULE"] = "dangol.settings"
    import django

    django.setup()
    from django.db import connection, reset_queries

    from dangol.core.models import Role, User
    from dangol.customers.models import ContactPoint, Customer
    from dangol.customers.selectors import search_customers, timeline_page

    admin = User.objects.filter(role=Role.ADMIN).first() or User.objects.create(username="bench-admin", role=Role.ADMIN)
    rng = random.Random(7)
    max_id = Customer.objects.order_by("-id").values_list("id", flat=True).first()
    phones = list(ContactPoint.objects.filter(kind="phone", customer_id__in=[rng.randrange(1, max_id) for _ in range(200)]).values_list("value", flat=True))
    customers = [rng.randrange(1, max_id) for _ in range(200)]
    last4s = [p[-4:] for p in phones]

    def run_pair(name, ours_fn, ref_fn, items, notes=""):
        ours, ref = [], []
        for fn in (ours_fn, ref_fn):  # warm caches and connections before timing
            fn(items[0])
        for _ in range(repeat):
            for fn, bucket in ((ours_fn, ours), (ref_fn, ref)):  # interleaved: drift hits both alike
                t = time.perf_counter()
                for item in items:
                    fn(item)
                bucket.append((time.perf_counter() - t) / len(items) * 1000)
        # Memory in a separate pass: tracemalloc slows Python code several times and would skew the timings.
        tracemalloc.start()
        for item in items[:50]:
            ours_fn(item)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        reset_queries()
        return Measure(name, scale, ours_fn.__doc__ or name, ref_fn.__doc__ or "hand-written SQL", "ms/op", ours, ref, peak_mb=peak, notes=notes)

    def sql(query, params):
        with connection.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall()

    def ours_phone(phone):
        """search_customers(full phone) incl. masked-row data"""
        list(search_customers(user=admin, query=phone))

    def hand_written_search(column, value):
        """The selector's three queries, written by hand: matching customers, their primary contacts, addresses."""
        rows = sql("SELECT c.id, c.name, c.stage FROM customers_customer c WHERE EXISTS (SELECT 1 FROM customers_contactpoint p "
                   f"WHERE p.customer_id = c.id AND p.kind = 'phone' AND p.{column} = %s) ORDER BY c.name, c.id LIMIT 50", [value])
        ids = [r[0] for r in rows] or [0]
        sql("SELECT * FROM customers_contactpoint WHERE is_primary AND customer_id IN (%s)" % ",".join(map(str, ids)), [])
        sql("SELECT * FROM customers_address WHERE customer_id IN (%s)" % ",".join(map(str, ids)), [])

    def ref_phone(phone):
        """SQL: join contact → customer, prefetch rows"""
        hand_written_search("value", phone)

    def ours_last4(d):
        """search_customers(last four digits)"""
        list(search_customers(user=admin, query=d))

    def ref_last4(d):
        """SQL: contact.last4 → customers, prefetch rows"""
        hand_written_search("last4", d)

    def ours_timeline(cid):
        """timeline_page(customer), first page"""
        customer = Customer(pk=cid)
        list(timeline_page(user=admin, customer=customer))

    def ref_timeline(cid):
        """SQL: newest 20 interactions with unit"""
        sql("SELECT i.*, u.name FROM customers_interaction i LEFT JOIN core_businessunit u ON u.id = i.unit_id "
            "WHERE i.customer_id = %s ORDER BY i.occurred_at DESC, i.id DESC LIMIT 21", [cid])

    return [
        run_pair("lookup_phone", ours_phone, ref_phone, phones),
        run_pair("lookup_last4", ours_last4, ref_last4, last4s, notes="last four digits match ~N/10,000 customers"),
        run_pair("timeline_page", ours_timeline, ref_timeline, customers),
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_benchmarks(env: dict, scale: str, rate: float, duration: float) -> list[Measure]:
    """The production server (gunicorn via `dangol serve`) under an open-loop load at a fixed rate."""
    from loadgen import Request, pick, run_load

    port = free_port()
    serve_env = dict(env, DANGOL_SECRET_KEY="bench-" + "x" * 50, DANGOL_ALLOWED_HOSTS="127.0.0.1", DANGOL_LOG_LEVEL="WARNING")
    token = dangol(serve_env, "token", "create", "--user", "demo").stdout.strip().splitlines()[-1]
    info = json.loads(dangol(serve_env, "shell", "-c", (
        "import json, random\nfrom dangol.customers.models import ContactPoint, Customer\nfrom dangol.sales.models import Product\n"
        "r = random.Random(3)\nm = Customer.objects.order_by('-id').values_list('id', flat=True).first()\n"
        "ids = [r.randrange(1, m) for _ in range(500)]\n"
        "phones = list(ContactPoint.objects.filter(kind='phone', customer_id__in=ids).values_list('value', flat=True))\n"
        "p = Product.objects.filter(unit__code='bakery', is_active=True).values_list('id', flat=True)[:5]\n"
        "from django.contrib.sessions.backends.db import SessionStore\nfrom dangol.core.models import User\n"
        "u = User.objects.get(username='demo')\ns = SessionStore()\n"
        "s.update({'_auth_user_id': str(u.pk), '_auth_user_backend': 'django.contrib.auth.backends.ModelBackend', "
        "'_auth_user_hash': u.get_session_auth_hash()})\ns.create()\n"
        "print(json.dumps({'phones': phones, 'ids': ids, 'products': list(p), 'session': s.session_key}))")).stdout.strip().splitlines()[-1])
    server = subprocess.Popen([sys.executable, "-m", "dangol.cli", "serve", "--bind", f"127.0.0.1:{port}", "--workers", "3", "--threads", "2"],
                              env=serve_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.3)
        auth = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        rng = random.Random(11)
        # The counter lookup runs at the target rate; the heavier pages at a rate a counter team needs and this
        # machine sustains beside its load generator (their saturation point is in the README).
        scenarios = [
            ("api_lookup_by_phone", rate, lambda i: Request(
                "GET", f"/api/v1/customers?phone={pick(rng, info['phones']).replace('+', '%2B')}", auth)),
            ("api_create_order", rate / 2, lambda i: Request("POST", "/api/v1/orders", {**auth, "Content-Type": "application/json"}, json.dumps({
                "unit": "bakery", "customer": pick(rng, info["ids"]), "channel": "store",
                "lines": [{"product": pick(rng, info["products"]), "quantity": 1 + i % 3}]}).encode())),
            ("api_customer_detail", rate / 2, lambda i: Request("GET", f"/api/v1/customers/{pick(rng, info['ids'])}", auth)),
            ("web_customer_360_page", rate / 2, lambda i: Request("GET", f"/customers/{pick(rng, info['ids'])}/",
                                                                  {"Cookie": f"sessionid={info['session']}"})),
        ]
        measures = []
        run_load(base, scenarios[0][2], rate=50, duration=2)  # warm up
        for name, scenario_rate, make in scenarios:
            runs = []
            for _ in range(2):
                time.sleep(5)  # let the server drain what the previous run left queued
                runs.append(run_load(base, make, rate=scenario_rate, duration=duration))
            best = runs[-1].summary()
            target = "target p99 ≤ 50 ms" if name == "api_lookup_by_phone" else "—"
            measures.append(Measure(f"load_{name}", scale, f"{scenario_rate:.0f} req/s for {duration:.0f} s, open loop", target,
                                    "ms p99", [r.percentile(99) for r in runs], [], extra=best))
        return measures
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def write_results(rows: list[dict], meta: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps({"machine": meta, "results": rows}, indent=2, ensure_ascii=False) + "\n")
    lines = [f"Machine: {meta['cpu']}, {meta['cores']} cores, {meta['memory_gb']} GB, Python {meta['python']}, "
             f"PostgreSQL {meta['postgresql']}; {meta['date']}; database: {meta['db']}.", "",
             "| benchmark | scale | subject | median | min–max | reference | ref median | ratio | peak MB |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        unit = r["unit"]
        fmt = (lambda v: f"{v:.2f}") if unit != "s" else (lambda v: f"{v:.1f}")
        ref = f"{fmt(r['ref_median'])} {unit}" if r["ref_median"] is not None else "—"
        ratio = f"{r['ratio']:.2f}×" if r["ratio"] else "—"
        extra = ""
        if "throughput_rps" in r:
            extra = f" ({r['throughput_rps']} req/s ok, p50 {r['p50_ms']} / p95 {r['p95_ms']} ms, errors {r['errors']})"
        lines.append(f"| {r['benchmark']} | {r['scale']} | {r['subject']}{extra} | {fmt(r['median'])} {unit} | {fmt(r['min'])}–{fmt(r['max'])} | "
                     f"{r['reference']} | {ref} | {ratio} | {r['peak_mb']} |")
    (RESULTS / "latest.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", nargs="+", default=["10k"], choices=sorted(SCALES))
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second of the load tests")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per load test run")
    parser.add_argument("--no-load", action="store_true")
    parser.add_argument("--reuse", action="store_true", help="keep the generated database of an earlier run")
    args = parser.parse_args()
    rows = []
    for scale in args.scale:
        env = scratch_database(args.db, scale)
        if not args.reuse:
            rows.append(bench_generate(env, args.db, scale, SCALES[scale]).row())
        dangol(env, "demo", "--no-serve")  # the demo accounts (and nothing else: data exists already)
        child = subprocess.run([sys.executable, __file__, "--_inprocess", scale, "--repeat", str(args.repeat)], env=env,
                               capture_output=True, text=True, check=True)
        rows.extend(json.loads(child.stdout.strip().splitlines()[-1]))
        if not args.no_load:
            rows.extend(m.row() for m in load_benchmarks(env, scale, args.rate, args.duration))
    write_results(rows, {**machine(), "db": args.db})


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--_inprocess":
        scale, repeat = sys.argv[2], int(sys.argv[4])
        measures = in_process_benchmarks(dict(os.environ), scale, repeat)
        print(json.dumps([m.row() for m in measures]))
    else:
        main()
