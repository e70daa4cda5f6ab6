"""Messaging benchmark: queue and deliver N personalised messages to a local HTTP provider sink with one and with two
`dangol worker` processes on PostgreSQL, against the sink's own maximum intake.

    .venv/bin/python bench/messaging_bench.py                      (100,000 messages)
    .venv/bin/python bench/messaging_bench.py --messages 10000     (a quick check)
    .venv/bin/python bench/messaging_bench.py sink --port 8765     (the sink alone, for trying things by hand)

1. The sink is a separate process: a threaded stdlib HTTP server (HTTP/1.1 keep-alive) that answers like the SMS
   provider's API and counts every message it receives and every idempotency key, so duplicates show.
2. Reference: a plain client posting batches of the same size straight to the sink (no database, no Django): the
   most the sink takes in on this machine. Measured in the same run, before each timed delivery, median of R runs.
3. Ours, per worker count (1, then 2): a fresh outbox (database ``dangol_bench_msg``, DANGOL_BENCH_POSTGRES,
   default postgres://postgres@127.0.0.1:5432), N customers generated once; `messaging.send_bulk` queues N
   informational messages with a personal body (timed: queueing), while W `dangol worker` processes (started and
   idle before) deliver them to the sink: send_bulk commits every 20,000 rows and kicks the dispatcher, so delivery
   starts during queueing. End to end = from the call to send_bulk until the outbox has nothing left to send and the
   sink counted N. Delivery rate = N / the sink's busy time (first to last message received). Checked: the sink
   received every message of the outbox exactly once (its keys compared with the outbox's), none twice, none missing.

Prints one JSON object (also written to bench/results/messaging.json).
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PG_BASE = os.environ.get("DANGOL_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
DATABASE = "dangol_bench_msg"


# --- the sink --------------------------------------------------------------------------------------------------------

class SinkState:
    def __init__(self):
        self.lock = threading.Lock()
        self.received = 0
        self.requests = 0
        self.keys: dict[str, int] = {}
        self.first_at: float | None = None
        self.last_at: float | None = None

    def add(self, keys: list[str]) -> None:
        now = time.perf_counter()
        with self.lock:
            self.requests += 1
            self.received += len(keys)
            for key in keys:
                self.keys[key] = self.keys.get(key, 0) + 1
            if self.first_at is None:
                self.first_at = now
            self.last_at = now

    def stats(self, with_keys: bool = False) -> dict:
        with self.lock:
            duplicates = sum(count - 1 for count in self.keys.values() if count > 1)
            out = {"received": self.received, "requests": self.requests, "distinct_keys": len(self.keys),
                   "duplicates": duplicates,
                   "busy_seconds": (self.last_at - self.first_at) if self.first_at is not None else 0.0}
            if with_keys:
                out["keys"] = sorted(self.keys)
            return out

    def reset(self) -> None:
        with self.lock:
            self.received = self.requests = 0
            self.keys = {}
            self.first_at = self.last_at = None


def message_keys(payload, headers) -> list[str]:
    """The idempotency key of each message of a request, whatever shape the provider posts: a batch under
    "messages" (Solapi's send-many style), a list, or one message; a key in the message or in the request header."""
    if isinstance(payload, dict) and isinstance(payload.get("recipientList"), list):
        items = payload["recipientList"]  # NHN Cloud style: one recipient per message, our message id as grouping key
    elif isinstance(payload, dict) and isinstance(payload.get("messages"), list):
        items = payload["messages"]
    elif isinstance(payload, list):
        items = payload
    else:
        items = [payload]
    header_key = headers.get("X-Idempotency-Key") or headers.get("Idempotency-Key") or ""
    keys = []
    for index, item in enumerate(items):
        key = ""
        if isinstance(item, dict):
            key = str(item.get("recipientGroupingKey") or item.get("idempotency_key") or item.get("key") or "")
        if not key and header_key:
            key = header_key if len(items) == 1 else f"{header_key}#{index}"
        keys.append(key or f"nokey-{id(item)}-{time.perf_counter_ns()}")
    return keys


def make_handler(state: SinkState):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: a client sends many requests over one connection

        def setup(self):
            super().setup()
            # Headers and body leave in one segment without waiting: Nagle + delayed ACK would cost 40 ms a request.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, *args):  # quiet
            pass

        def _reply(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self._headers_buffer.append(b"\r\n" + data)  # one write: the end of the headers and the body
            self.flush_headers()

        def do_GET(self):
            if self.path.startswith("/_stats"):
                self._reply(200, state.stats(with_keys="keys=1" in self.path))
            else:
                self._reply(200, {"ok": True})

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if self.path.startswith("/_reset"):
                state.reset()
                self._reply(200, {"ok": True})
                return
            try:
                payload = json.loads(raw or b"{}")
            except ValueError:
                self._reply(400, {"error": "not JSON"})
                return
            keys = message_keys(payload, self.headers)
            state.add(keys)
            # Accepted, answered like NHN Cloud's SMS v3.0: a request id and one result per recipient.
            request_id = f"{time.time_ns()}-{state.requests}"
            self._reply(200, {"header": {"isSuccessful": True, "resultCode": 0, "resultMessage": "SUCCESS"},
                              "body": {"data": {"requestId": request_id, "statusCode": "2", "sendResultList": [
                                  {"recipientSeq": i + 1, "recipientGroupingKey": key, "resultCode": 0,
                                   "resultMessage": "SUCCESS"} for i, key in enumerate(keys)]}}})

    return Handler


def run_sink(port: int) -> None:
    state = SinkState()
    server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(state))
    server.daemon_threads = True
    server.request_queue_size = 128
    print(f"sink listening on 127.0.0.1:{port}", flush=True)
    server.serve_forever()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sink:
    """The sink as a child process, with helpers to read its counters."""

    def __init__(self):
        self.port = free_port()
        self.process = subprocess.Popen([sys.executable, __file__, "sink", "--port", str(self.port)], stdout=subprocess.PIPE,
                                        text=True)
        self.process.stdout.readline()  # "sink listening…"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _call(self, method: str, path: str) -> dict:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        conn.request(method, path, body=b"" if method == "POST" else None)
        data = json.loads(conn.getresponse().read())
        conn.close()
        return data

    def stats(self, with_keys: bool = False) -> dict:
        return self._call("GET", "/_stats?keys=1" if with_keys else "/_stats")

    def reset(self) -> None:
        self._call("POST", "/_reset")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def reference_intake(port: int, messages: int, batch: int, clients: int) -> dict:
    """A plain client posting straight to the sink: C threads, keep-alive connections, batches of B personal messages."""
    per_client = messages // clients
    errors: list[BaseException] = []

    def client(index: int) -> None:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            for start in range(0, per_client, batch):
                items = [{"recipientNo": f"0105555{(index * per_client + i) % 10000:04d}",
                          "recipientGroupingKey": f"ref-{index}-{i}",
                          "templateParameter": {"m": f"김하늘{i}님, 한빛 포인트 {i * 10:,}P가 적립되었습니다.", "t": ""}}
                         for i in range(start, min(start + batch, per_client))]
                body = json.dumps({"body": "##m##", "sendNo": "0212345678", "recipientList": items}).encode()
                conn.request("POST", "/sms/v3.0/appKeys/bench/sender/sms", body=body,
                             headers={"Content-Type": "application/json;charset=UTF-8", "X-Secret-Key": "bench",
                                      "X-Idempotency-Key": f"ref-{index}-{start}"})
                answer = json.loads(conn.getresponse().read())
                assert len(answer["body"]["data"]["sendResultList"]) == len(items)
            conn.close()
        except BaseException as exc:  # noqa: BLE001 (reported)
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if errors:
        raise SystemExit(f"reference client failed: {errors[0]!r}")
    sent = per_client * clients
    return {"messages": sent, "seconds": round(seconds, 3), "per_second": round(sent / seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", nargs="?", default="bench", choices=["bench", "sink", "reference"])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--runs", type=int, default=1, help="timed runs per worker count (median reported)")
    args = parser.parse_args()
    if args.mode == "sink":
        run_sink(args.port)
        return
    if args.mode == "reference":
        sink = Sink()
        try:
            for clients in (1, 2, 4):
                sink.reset()
                result = reference_intake(sink.port, args.messages, args.batch, clients)
                print(clients, result, sink.stats())
        finally:
            sink.stop()
        return
    run_bench(args)


# --- ours: the outbox, workers and the NHN-style provider ----------------------------------------------------------

def psql(url: str, sql: str) -> str:
    done = subprocess.run(["psql", url, "-tAqc", sql], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"psql failed: {done.stderr.strip()}")
    return done.stdout.strip()


def bench_env(sink_url: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(
        DATABASE_URL=f"{PG_BASE}/{DATABASE}", DJANGO_SETTINGS_MODULE="dangol.settings", DANGOL_LOG_LEVEL="WARNING",
        DANGOL_DATA_DIR=env.get("DANGOL_DATA_DIR", "/tmp/messaging-bench-data"),
        DANGOL_MESSAGING_PROVIDER_SMS="nhn", DANGOL_NHN_SMS_URL=sink_url, DANGOL_NHN_SMS_APP_KEY="bench",
        DANGOL_NHN_SECRET_KEY="bench",
        # No per-process rate limit: the point is what the engine and the machine can do (production sets the
        # provider's contract rate, e.g. nhn=300).
        DANGOL_MESSAGING_RATE_LIMITS="nhn=0",
    )
    return env


def dangol(env: dict, *args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "dangol.cli", *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"dangol {' '.join(args)} failed:\n{done.stderr[-3000:]}")


def prepare_database(env: dict, customers: int) -> dict:
    """dangol_bench_msg with at least ``customers`` generated customers (kept between runs)."""
    url = f"{PG_BASE}/{DATABASE}"
    have = 0
    if psql(f"{PG_BASE}/postgres", f"select count(*) from pg_database where datname = '{DATABASE}'") == "1":
        try:
            have = int(psql(url, "select count(*) from customers_customer"))
        except SystemExit:
            have = 0
    info = {"database": DATABASE}
    if have < customers:
        psql(f"{PG_BASE}/postgres", f"drop database if exists {DATABASE} with (force)")
        psql(f"{PG_BASE}/postgres", f"create database {DATABASE}")
        dangol(env, "migrate", "--no-input", "-v", "0")
        started = time.perf_counter()
        dangol(env, "generate", "--customers", str(customers), "--seed", "42")
        info["generated_seconds"] = round(time.perf_counter() - started, 1)
    else:
        dangol(env, "migrate", "--no-input", "-v", "0")
    return info


def start_workers(env: dict, count: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-m", "dangol.cli", "worker", "--queues", "messages", "--interval", "0.2"],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(count)]


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()


def delivery_run(env: dict, sink: Sink, messages: int, workers: int) -> dict:
    """One timed run: empty outbox, W workers up and idle, then queue N personalised messages and wait until every
    one is sent. Runs in this process against the bench database."""
    from django.db import connection
    from django_tasks_db.models import DBTaskResult

    from dangol.core.models import WorkerLease
    from dangol.customers.models import ContactPoint, Customer
    from dangol.messaging import services as messaging
    from dangol.messaging.models import Message, Status
    from dangol.messaging.tasks import dispatch_messages

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE messaging_decision, messaging_message RESTART IDENTITY CASCADE")
        cursor.execute("DELETE FROM django_tasks_database_dbtaskresult")
        cursor.execute("DELETE FROM core_workerlease")
    sink.reset()
    ids = list(ContactPoint.objects.filter(kind="phone", is_primary=True, customer__merged_into__isnull=True,
                                           customer__erased_at__isnull=True)
               .order_by("customer_id").values_list("customer_id", flat=True)[:messages])
    if len(ids) < messages:
        raise SystemExit(f"only {len(ids)} customers with a phone; generate more")
    names = dict(Customer.objects.filter(pk__in=ids).values_list("pk", "name"))
    rows = [{"customer_id": cid, "variables": {"name": names[cid], "points": f"{(cid * 37) % 9000 + 100:,}"}} for cid in ids]
    processes = start_workers(env, workers)
    try:
        deadline = time.time() + 60
        while WorkerLease.objects.count() < workers:
            if time.time() > deadline or any(p.poll() is not None for p in processes):
                raise SystemExit("workers did not start: " + "".join(p.stderr.read()[-2000:] for p in processes if p.poll() is not None))
            time.sleep(0.2)
        time.sleep(1.0)  # past the workers' random start-up delay
        samples: list[tuple[float, int]] = []
        sampling = threading.Event()

        def sample() -> None:  # the sink's count while send_bulk runs too: delivery starts during queueing
            while not sampling.is_set():
                samples.append((round(time.perf_counter() - started, 2), sink.stats()["received"]))
                time.sleep(0.25)

        started = time.perf_counter()
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        counts = messaging.send_bulk(rows=rows, channel="sms", kind="info", source="bench:points", occurrence="1",
                                     body="#{name}님, 한빛 포인트 #{points}P가 적립되었습니다.")
        queued_at = time.perf_counter()
        # The engine's own kick after send_bulk enqueues a dispatch task, which fans out to more workers for a big
        # queue and hands over to a fresh task when its time budget ends. The bench only stands in for the
        # per-minute scheduler (not running here): a kick when nothing is queued or running but messages are due.
        pending = messages
        kicks = 0
        while True:
            time.sleep(0.25)
            pending = Message.objects.filter(source="bench:points", status__in=[Status.QUEUED, Status.CLAIMED]).count()
            received = sink.stats()["received"]
            if pending == 0 and received >= counts["queued"]:
                break
            waiting = DBTaskResult.objects.filter(status__in=["READY", "RUNNING"], task_path__endswith="dispatch_messages").count()
            if not waiting and pending:
                kicks += 1
                dispatch_messages.enqueue()
            if time.perf_counter() - started > 3600:
                raise SystemExit("delivery did not finish within an hour")
        finished = time.perf_counter()
        sampling.set()
        sampler.join()
    finally:
        stop(processes)
    sink_stats = sink.stats(with_keys=True)
    statuses = dict(Message.objects.filter(source="bench:points").values_list("status").annotate(
        n=__import__("django.db.models", fromlist=["Count"]).Count("id")).values_list("status", "n"))
    sent_ids = {str(pk) for pk in Message.objects.filter(source="bench:points", status=Status.SENT).values_list("pk", flat=True)}
    sink_keys = set(sink_stats["keys"])
    total = finished - started
    deliver = sink_stats["busy_seconds"] or (finished - queued_at)  # first to last message at the sink
    first_at = next((t for t, received in samples if received), None)
    return {
        "workers": workers, "messages": messages, "queued": counts["queued"],
        "queue_seconds": round(queued_at - started, 2), "queue_rows_per_second": round(messages / (queued_at - started)),
        "first_delivery_after_seconds": first_at, "after_queue_seconds": round(finished - queued_at, 2),
        "deliver_seconds": round(deliver, 2), "end_to_end_seconds": round(total, 2),
        "end_to_end_per_second": round(messages / total), "delivery_per_second": round(messages / deliver),
        "scheduler_kicks": kicks, "statuses": statuses, "sink_received": sink_stats["received"], "sink_requests": sink_stats["requests"],
        "duplicates": sink_stats["duplicates"], "lost": len(sent_ids - sink_keys) + (messages - len(sent_ids)),
        "unknown_at_sink": len(sink_keys - sent_ids),
        "progress": samples[:: max(1, len(samples) // 20)],
    }


def run_bench(args) -> None:
    import platform

    sink = Sink()
    env = bench_env(sink.url)
    result: dict = {"benchmark": "messaging: queue and deliver personalised SMS to a local NHN-style HTTP sink",
                    "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                    "messages": args.messages, "batch_size": 200, "runs": args.runs}
    RESULTS.mkdir(parents=True, exist_ok=True)
    # A quick check (fewer messages) does not replace the recorded figures.
    out = RESULTS / "messaging.json" if args.messages >= 100_000 else Path("/tmp") / f"messaging-bench-{args.messages}.json"

    def save():
        out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")

    try:
        result["database"] = prepare_database(env, args.messages * 11 // 10)  # some generated customers have no phone
        os.environ.update(env)
        import django

        django.setup()
        result["postgres"] = psql(f"{PG_BASE}/postgres", "show server_version")
        reference: list[dict] = []
        ours: dict[int, list[dict]] = {1: [], 2: []}
        for run in range(args.runs):
            for workers in (1, 2):
                sink.reset()
                reference.append(reference_intake(sink.port, args.messages, 200, clients=workers))
                print("reference", reference[-1], flush=True)
                ours[workers].append(delivery_run(env, sink, args.messages, workers))
                print("ours", {k: v for k, v in ours[workers][-1].items() if k != "progress"}, flush=True)
                result["reference_runs"] = reference
                result["runs_detail"] = ours
                save()
        # Before each 1-worker run the reference posts from 1 client thread, before each 2-worker run from 2.
        result["reference_per_second_median"] = {
            f"{w} client{'s' if w > 1 else ''}": statistics.median(r["per_second"] for r in reference[i::2])
            for i, w in enumerate((1, 2))}
        result["summary"] = {str(w): {
            "end_to_end_per_second_median": statistics.median(r["end_to_end_per_second"] for r in runs),
            "delivery_per_second_median": statistics.median(r["delivery_per_second"] for r in runs),
            "queue_seconds_median": statistics.median(r["queue_seconds"] for r in runs),
            "queue_rows_per_second_median": statistics.median(r["queue_rows_per_second"] for r in runs),
            "duplicates": sum(r["duplicates"] for r in runs), "lost": sum(r["lost"] for r in runs),
        } for w, runs in ours.items()}
        result["target"] = "≥ 1,000 messages/s end to end with two workers, zero duplicates, zero losses"
        two = result["summary"]["2"]
        result["target_met"] = two["end_to_end_per_second_median"] >= 1000 and two["duplicates"] == 0 and two["lost"] == 0
        save()
        print(json.dumps({k: v for k, v in result.items() if k not in ("runs_detail", "reference_runs")}, ensure_ascii=False))
    finally:
        sink.stop()


if __name__ == "__main__":
    main()
