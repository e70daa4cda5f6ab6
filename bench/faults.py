"""Fault tests too long or too disruptive for the test suite (they restart the machine's PostgreSQL and Redis).

    .venv/bin/python bench/faults.py            writes bench/results/faults.md

1. PostgreSQL restarts while a worker drains a queue: every task runs, none twice, the worker resumes by itself.
2. Redis (the RQ broker) is down for a minute while an RQ worker waits: the worker survives and then runs the work.
3. The disk fills while a backup is written: the command fails clearly and leaves no file that looks complete.
(Killing a worker mid-task is in the test suite: tests/ops/test_workers_and_scheduler.py.)
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG = os.environ.get("DANGOL_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
REDIS_START = ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379", "--save", "", "--appendonly", "no",
               "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log"]


def dangol(env, *args, check=True, timeout=600):
    return subprocess.run([sys.executable, "-m", "dangol.cli", *args], env=env, capture_output=True, text=True, check=check, timeout=timeout)


def shell(env, code):
    out = dangol(env, "shell", "-c", code).stdout.strip().splitlines()
    return out[-1] if out else ""


def scratch(backend="db"):
    name = f"dangol_fault_{uuid.uuid4().hex[:8]}"
    subprocess.run(["psql", f"{PG}/postgres", "-qc", f"CREATE DATABASE {name}"], check=True, capture_output=True)
    env = dict(os.environ, DATABASE_URL=f"{PG}/{name}", DANGOL_TASK_BACKEND=backend, REDIS_URL="redis://127.0.0.1:6379/14",
               DANGOL_WORKER_LEASE_SECONDS="5")
    dangol(env, "migrate", "--no-input", "-v", "0")
    return env, name


def drop(name):
    subprocess.run(["psql", f"{PG}/postgres", "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], capture_output=True)


COUNT = ("import json\nfrom django.db.models import Count\nfrom dangol.core.models import Heartbeat\nfrom django_tasks_db.models import DBTaskResult\n"
         "print(json.dumps({'beats': Heartbeat.objects.count(), 'distinct': Heartbeat.objects.values('token').distinct().count(),"
         "'status': dict(DBTaskResult.objects.values_list('status').annotate(n=Count('id')))}))")


def postgres_restart() -> dict:
    env, name = scratch()
    try:
        shell(env, "from dangol.core.tasks import heartbeat\nfor i in range(40): heartbeat.enqueue(token=f'pg{i}', hold_seconds=0.25)")
        worker = subprocess.Popen([sys.executable, "-m", "dangol.cli", "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(4)
        version = subprocess.run(["ls", "/etc/postgresql"], capture_output=True, text=True).stdout.split()[0]
        t = time.time()
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"], check=True)
        restart_s = time.time() - t
        deadline = time.time() + 120
        result = {}
        while time.time() < deadline:
            try:
                result = json.loads(shell(env, COUNT))
                if result["beats"] == 40 and result["status"].get("READY", 0) == 0 and result["status"].get("RUNNING", 0) == 0:
                    break
            except subprocess.CalledProcessError:
                pass
            time.sleep(1)
        alive = worker.poll() is None
        worker.terminate()
        worker.wait(timeout=30)
        ok = result.get("beats") == 40 and result.get("distinct") == 40 and alive
        return {"fault": "PostgreSQL restarted while a worker drained 40 tasks", "ok": ok,
                "detail": f"restart took {restart_s:.1f} s; heartbeats {result.get('beats')} (distinct {result.get('distinct')}); "
                          f"task states {result.get('status')}; worker still running afterwards: {alive}"}
    finally:
        drop(name)


def redis_outage(seconds: int = 60) -> dict:
    import redis

    env, name = scratch("rq")
    r = redis.Redis.from_url("redis://127.0.0.1:6379/14")
    try:
        r.flushdb()
        worker = subprocess.Popen([sys.executable, "-m", "dangol.cli", "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(3)
        subprocess.run(["redis-cli", "shutdown", "nosave"], capture_output=True)
        ready_during = dangol(env, "shell", "-c", "from django.test import Client\nprint(Client().get('/readyz').status_code)").stdout.strip().splitlines()[-1]
        time.sleep(seconds)
        subprocess.run(REDIS_START, check=True, capture_output=True)
        time.sleep(2)
        shell(env, "from dangol.core.tasks import heartbeat\nfor i in range(10): heartbeat.enqueue(token=f'rq{i}')")
        deadline = time.time() + 90
        beats = 0
        while time.time() < deadline:
            beats = int(shell(env, "from dangol.core.models import Heartbeat\nprint(Heartbeat.objects.count())"))
            if beats == 10:
                break
            time.sleep(1)
        alive = worker.poll() is None
        worker.terminate()
        worker.wait(timeout=30)
        return {"fault": f"Redis down for {seconds} s under a waiting RQ worker", "ok": beats == 10 and alive and ready_during == "503",
                "detail": f"/readyz during the outage: {ready_during}; worker alive afterwards: {alive}; tasks enqueued after recovery and run: {beats}/10"}
    finally:
        try:
            r.ping()
        except Exception:
            subprocess.run(REDIS_START, capture_output=True)
        drop(name)


def disk_full_backup() -> dict:
    """A 256 kB tmpfs stands in for a full disk."""
    mount = Path("/tmp/dangol-full-disk")
    mount.mkdir(exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True).returncode == 0
    if not mounted:
        return {"fault": "disk full during a backup", "ok": None, "detail": "could not mount a small tmpfs here (needs root)"}
    env, name = scratch()
    try:
        dangol(env, "demo", "--no-serve", "--customers", "3000")
        result = dangol(env, "backup", str(mount / "dangol.backup"), check=False)
        leftovers = sorted(p.name for p in mount.iterdir())
        ok = result.returncode != 0 and "dangol.backup" not in leftovers
        return {"fault": "disk full during a backup (256 kB volume)", "ok": ok,
                "detail": f"exit {result.returncode}; message: {result.stderr.strip().splitlines()[-1][:160] if result.stderr.strip() else ''}; "
                          f"files left: {leftovers or 'none'}"}
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)
        drop(name)


def main():
    faults = {"postgres": postgres_restart, "redis": lambda: redis_outage(int(os.environ.get("DANGOL_FAULT_REDIS_SECONDS", "60"))),
              "disk": disk_full_backup}
    chosen = sys.argv[1:] or list(faults)
    results = [faults[name]() for name in chosen]
    lines = ["| fault | result | what happened |", "|---|---|---|"]
    for r in results:
        verdict = {True: "pass", False: "FAIL", None: "not run"}[r["ok"]]
        lines.append(f"| {r['fault']} | {verdict} | {r['detail']} |")
    out = ROOT / "bench" / "results" / ("faults.md" if not sys.argv[1:] else f"faults-{'-'.join(chosen)}.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f"Run {time.strftime('%Y-%m-%d %H:%M %Z')}\n\n" + "\n".join(lines) + "\n")
    print("\n".join(lines))
    sys.exit(0 if all(r["ok"] is not False for r in results) else 1)


if __name__ == "__main__":
    main()
