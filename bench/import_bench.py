"""Import benchmark: `dangol import` of N customers / order lines into PostgreSQL, beside PostgreSQL's own COPY of the
same file into a table of text columns (the reference: parsing and writing with no validation at all).

    .venv/bin/python bench/import_bench.py --customers 1000000 --lines 10000000 [--repeat 2]

Each round: our import into an empty database (every row validated, normalised, matched and written to its tables),
the re-import of the same file (every row recognised as unchanged), and the reference COPY — interleaved, so that
the machine's state is the same for both. Prints one JSON object; bench/run.py stores it with the other results.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PG_BASE = os.environ.get("DANGOL_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
SURNAMES = "김이박최정강조윤장임한오서신권황안송전홍"
GIVEN = "민서지현수영준우하윤도예은성진태재희연주"
ROADS = ["서울 강남구 테헤란로", "서울 마포구 월드컵로", "부산 해운대구 해운대로", "경기 성남시 분당구 판교역로", "대구 수성구 달구벌대로",
         "인천 연수구 컨벤시아대로", "서울특별시 송파구 올림픽로", "광주 서구 상무대로"]


def write_customers_csv(path: Path, n: int, seed: int = 1) -> None:
    """A realistic member export: Korean headers, mixed phone and date formats, 1% bad rows."""
    rng = np.random.default_rng(seed)
    s = np.array(list(SURNAMES))[rng.integers(0, len(SURNAMES), n)]
    g1 = np.array(list(GIVEN))[rng.integers(0, len(GIVEN), n)]
    g2 = np.array(list(GIVEN))[rng.integers(0, len(GIVEN), n)]
    phone = rng.permutation(np.arange(20_000_000, 59_000_000))[:n]
    year = rng.integers(1950, 2005, n)
    month = rng.integers(1, 13, n)
    day = rng.integers(1, 29, n)
    road = rng.integers(0, len(ROADS), n)
    consent = rng.integers(0, 2, n)
    bad = rng.random(n) < 0.01
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("회원번호,성명,휴대폰,이메일,생년월일,음력,주소,가입일,SMS수신동의,이메일수신동의\n")
        rows = []
        for i in range(n):
            p = int(phone[i])
            phone_text = f"010-{p // 10000:04d}-{p % 10000:04d}" if i % 3 else f"010{p:08d}"
            if bad[i]:
                phone_text = phone_text[:-2]
            birth = f"{year[i]}.{month[i]:02d}.{day[i]:02d}" if i % 2 else f"{year[i]}{month[i]:02d}{day[i]:02d}"
            rows.append(f"M{i:08d},{s[i]}{g1[i]}{g2[i]},{phone_text},member{i}@example.kr,{birth},{'N' if i % 10 else 'Y'},"
                        f"\"{ROADS[road[i]]} {i % 400 + 1}\",2023-{1 + i % 12:02d}-{1 + i % 28:02d},{'Y' if consent[i] else 'N'},{'동의' if consent[i] else '미동의'}\n")
            if len(rows) == 100_000:
                out.writelines(rows)
                rows = []
        out.writelines(rows)


def write_orders_csv(path: Path, lines: int, customers: int, skus: list[str], seed: int = 2) -> None:
    """Order lines of the members above: about 2.5 lines per order, over two years."""
    rng = np.random.default_rng(seed)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("영수증번호,회원번호,거래일시,상품코드,수량,단가,구분,원영수증번호\n")
        written, order = 0, 0
        chunk = []
        while written < lines:
            block = 200_000
            member = rng.integers(0, customers, block)
            per_order = rng.integers(1, 5, block)
            days = rng.integers(1, 720, block)
            hours = rng.integers(9, 21, block)
            sku = rng.integers(0, len(skus), block * 4)
            qty = rng.integers(1, 4, block * 4)
            k = 0
            for j in range(block):
                at = f"2025-{1 + days[j] % 12:02d}-{1 + days[j] % 28:02d} {hours[j]:02d}:{days[j] % 60:02d}"
                for _line in range(int(per_order[j])):
                    chunk.append(f"O{order:09d},M{member[j]:08d},{at},{skus[sku[k]]},{qty[k]},,판매,\n")
                    k += 1
                    written += 1
                    if written >= lines:
                        break
                order += 1
                if written >= lines:
                    break
            out.writelines(chunk)
            chunk = []


def psql(db_url: str, sql: str) -> None:
    subprocess.run(["psql", db_url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql], check=True, capture_output=True)


def dangol(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(ROOT / ".venv/bin/dangol"), *args], env=env, capture_output=True, text=True, timeout=7200)


def timed_dangol(env: dict, *args: str) -> tuple[float, str, float]:
    """Seconds, last stdout line and the child's peak RSS (MB) of one CLI run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    done = dangol(env, *args)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"dangol {' '.join(args)} failed: {done.stderr[-2000:]}")
    peak = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 1024
    return seconds, done.stdout.strip().splitlines()[-1], peak


def reference_copy(db_url: str, path: Path, columns: int) -> float:
    """PostgreSQL's COPY of the same file into an unlogged-free plain table of text columns (no checks at all)."""
    cols = ", ".join(f"c{i} text" for i in range(columns))
    psql(db_url, f"DROP TABLE IF EXISTS bench_copy; CREATE TABLE bench_copy ({cols})")
    start = time.perf_counter()
    subprocess.run(["psql", db_url, "-q", "-c", f"\\copy bench_copy FROM '{path}' WITH (FORMAT csv, HEADER true)"], check=True,
                   capture_output=True)
    seconds = time.perf_counter() - start
    psql(db_url, "DROP TABLE bench_copy")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--lines", type=int, default=0, help="order lines to import after the customers (0: none)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--workdir", default="/tmp/dangol-import-bench")
    args = parser.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    db = "dangol_bench_import"
    db_url = f"{PG_BASE}/{db}"
    env = {**os.environ, "DATABASE_URL": db_url, "DANGOL_DATA_DIR": str(work / "data"), "DJANGO_SETTINGS_MODULE": "dangol.settings",
           "DANGOL_DEDUPE_AFTER_IMPORT": "0"}
    customers_csv = work / f"customers-{args.customers}.csv"
    if not customers_csv.exists():
        write_customers_csv(customers_csv, args.customers)
    result = {"customers": args.customers, "customers_file_mb": round(customers_csv.stat().st_size / 1e6, 1)}
    runs = {"import": [], "reimport": [], "copy": [], "peak_mb": 0.0}
    line_runs = {"import": [], "reimport": [], "copy": [], "peak_mb": 0.0}
    orders_csv = work / f"orders-{args.lines}.csv"
    for _round in range(args.repeat):
        psql(f"{PG_BASE}/postgres", f"DROP DATABASE IF EXISTS {db}")
        psql(f"{PG_BASE}/postgres", f"CREATE DATABASE {db}")
        dangol(env, "migrate", "-v0")
        subprocess.run([str(ROOT / ".venv/bin/python"), "-c", "import django; django.setup(); "
                        "from dangol.demo.catalogue import ensure_reference_data; ensure_reference_data()"], env=env, check=True)
        seconds, line, peak = timed_dangol(env, "import", "customers", str(customers_csv), "--unit", "bakery")
        runs["import"].append(seconds)
        runs["peak_mb"] = max(runs["peak_mb"], peak)
        result["import_counts"] = line
        seconds, line, peak = timed_dangol(env, "import", "customers", str(customers_csv), "--unit", "bakery")
        runs["reimport"].append(seconds)
        result["reimport_counts"] = line
        runs["copy"].append(reference_copy(db_url, customers_csv, 10))
        if args.lines:
            if not orders_csv.exists():
                skus = ["BK-BR-CRO", "BK-BR-BAG", "BK-BR-SAL", "BK-BR-RED", "BK-BR-SIK", "BK-BR-CAM"]
                write_orders_csv(orders_csv, args.lines, args.customers, skus)
                result["orders_file_mb"] = round(orders_csv.stat().st_size / 1e6, 1)
            seconds, line, peak = timed_dangol(env, "import", "orders", str(orders_csv), "--unit", "bakery")
            line_runs["import"].append(seconds)
            line_runs["peak_mb"] = max(line_runs["peak_mb"], peak)
            result["orders_counts"] = line
            seconds, line, peak = timed_dangol(env, "import", "orders", str(orders_csv), "--unit", "bakery")
            line_runs["reimport"].append(seconds)
            result["orders_reimport_counts"] = line
            line_runs["copy"].append(reference_copy(db_url, orders_csv, 8))
    for name, data, rows in (("customers", runs, args.customers), ("order_lines", line_runs, args.lines)):
        if not data["import"]:
            continue
        med = {k: statistics.median(v) for k, v in data.items() if k != "peak_mb"}
        result[name] = {
            "import_s": med["import"], "import_rows_per_s": round(rows / med["import"]),
            "reimport_s": med["reimport"], "reimport_rows_per_s": round(rows / med["reimport"]),
            "copy_s": med["copy"], "copy_rows_per_s": round(rows / med["copy"]),
            "ratio_import_to_copy": round(med["import"] / med["copy"], 2), "peak_rss_mb": round(data["peak_mb"]),
            "runs": {k: [round(x, 2) for x in v] for k, v in data.items() if k != "peak_mb"},
        }
    psql(f"{PG_BASE}/postgres", f"DROP DATABASE IF EXISTS {db}")
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
