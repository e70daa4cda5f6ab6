"""An open-loop HTTP load generator: requests start on a fixed schedule whatever the server's latency, so a slow
response cannot hide the queueing it causes (no coordinated omission). Bounded by count and time; loopback only."""
from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

ALLOWED_HOSTS = {"127.0.0.1", "localhost", "::1"}


@dataclass
class Request:
    method: str
    path: str
    headers: dict = field(default_factory=dict)
    body: bytes = b""


@dataclass
class LoadResult:
    sent: int
    ok: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
        return ordered[k]

    def summary(self) -> dict:
        return {"sent": self.sent, "ok": self.ok, "errors": self.errors, "seconds": round(self.seconds, 2),
                "throughput_rps": round(self.ok / self.seconds, 1) if self.seconds else 0,
                "p50_ms": round(self.percentile(50), 2), "p95_ms": round(self.percentile(95), 2), "p99_ms": round(self.percentile(99), 2)}


class Connection:
    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def request(self, req: Request) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = [f"{req.method} {req.path} HTTP/1.1", f"Host: {self.host}:{self.port}", "Connection: keep-alive"]
        head += [f"{k}: {v}" for k, v in req.headers.items()]
        if req.body:
            head.append(f"Content-Length: {len(req.body)}")
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + req.body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("closed")
        status = int(status_line.split()[1])
        length, close = 0, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value.strip())
            elif name.lower() == "connection" and value.strip().lower() == "close":
                close = True
        if length:
            await self.reader.readexactly(length)
        if close:
            self.close()
        return status

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _run(base_url: str, make_request, rate: float, duration: float, max_requests: int, max_connections: int) -> LoadResult:
    parts = urlsplit(base_url)
    if parts.hostname not in ALLOWED_HOSTS:
        raise ValueError("the load generator only targets this machine")
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(max_connections):
        pool.put_nowait(Connection(parts.hostname, parts.port or 80))
    latencies: list[float] = []
    counts = {"ok": 0, "errors": 0}
    total = min(max_requests, int(rate * duration))
    start = time.perf_counter()

    async def one(scheduled: float, req: Request):
        conn = await pool.get()
        try:
            status = await asyncio.wait_for(conn.request(req), timeout=10)
            # Latency from the scheduled start: time spent waiting for a free connection counts too.
            latencies.append((time.perf_counter() - scheduled) * 1000)
            counts["ok" if status < 400 else "errors"] += 1
        except Exception:
            conn.close()
            counts["errors"] += 1
        finally:
            pool.put_nowait(conn)

    tasks = []
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled, make_request(i))))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    while not pool.empty():
        pool.get_nowait().close()
    return LoadResult(total, counts["ok"], counts["errors"], elapsed, latencies)


def run_load(base_url: str, make_request, *, rate: float, duration: float, max_requests: int = 100_000,
             max_connections: int = 64) -> LoadResult:
    return asyncio.run(_run(base_url, make_request, rate, duration, max_requests, max_connections))


def pick(rng: random.Random, items: list):
    return items[rng.randrange(len(items))]
