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
   informational messages with a personal body (timed: queueing), then W `dangol worker` processes deliver them to
   the sink (timed: from the workers' start until the outbox has nothing left to send and the sink counted N).
   End to end = queueing + delivery. Checked: the sink received every message of the outbox exactly once (its keys
   compared with the outbox's), none twice, none missing.

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
    if isinstance(payload, dict) and isinstance(payload.get("messages"), list):
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
            key = str(item.get("idempotency_key") or item.get("idempotencyKey") or item.get("key")
                      or item.get("customFields", {}).get("key", "") if isinstance(item.get("customFields"), dict) else
                      item.get("idempotency_key") or item.get("idempotencyKey") or item.get("key") or "")
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
            # Accepted: one result per message, in the provider's style (a message id per message, status accepted).
            self._reply(200, {"groupId": f"G{state.requests}", "accepted": len(keys),
                              "results": [{"messageId": f"M-{key}", "key": key, "status": "accepted",
                                           "statusCode": "2000"} for key in keys]})

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
                items = [{"to": f"0105555{(index * per_client + i) % 10000:04d}", "from": "0212345678", "type": "SMS",
                          "text": f"김하늘{i}님, 적립 포인트 {i * 10:,}P가 곧 소멸됩니다.", "key": f"ref-{index}-{i}"}
                         for i in range(start, min(start + batch, per_client))]
                conn.request("POST", "/messages/v4/send-many", body=json.dumps({"messages": items}).encode(),
                             headers={"Content-Type": "application/json"})
                conn.getresponse().read()
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
    parser.add_argument("--batch", type=int, default=100)
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
    raise SystemExit("bench mode: not written yet")


if __name__ == "__main__":
    main()
