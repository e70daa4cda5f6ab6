"""Prometheus metrics: request counts and latencies (per process; multi-process under gunicorn through
PROMETHEUS_MULTIPROC_DIR, which `dangol serve` sets), and queue figures read from the database at scrape time so
that every worker on every host is counted."""
from __future__ import annotations

import os
import time

from django.conf import settings
from django.db import connection
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily

REQUESTS = Counter("dangol_http_requests_total", "HTTP requests", ["method", "status"])
LATENCY = Histogram("dangol_http_request_duration_seconds", "HTTP request latency", ["route"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))


class MetricsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        # The route pattern, never the path: paths hold customer ids, and labels must stay few.
        route = match.route if match else "unmatched"
        LATENCY.labels(route=route).observe(time.perf_counter() - started)
        REQUESTS.labels(method=request.method, status=str(response.status_code)).inc()
        return response


class QueueCollector:
    """Queue depth, running and failed tasks, and task durations of the last hour, from the task table."""

    def collect(self):
        depth = GaugeMetricFamily("dangol_task_queue_depth", "Tasks ready to run", labels=["queue"])
        running = GaugeMetricFamily("dangol_tasks_running", "Tasks running now", labels=["queue"])
        failed = GaugeMetricFamily("dangol_tasks_failed_24h", "Tasks failed in the last 24 hours", labels=["queue"])
        duration = GaugeMetricFamily("dangol_task_duration_seconds_avg_1h", "Average task duration, last hour", labels=["task"])
        duration_max = GaugeMetricFamily("dangol_task_duration_seconds_max_1h", "Longest task duration, last hour", labels=["task"])
        if settings.TASK_BACKEND == "db":
            for queue, ready, run, fail in queue_figures():
                depth.add_metric([queue], ready)
                running.add_metric([queue], run)
                failed.add_metric([queue], fail)
            for task, avg, longest in task_durations():
                duration.add_metric([task], avg)
                duration_max.add_metric([task], longest)
        yield from (depth, running, failed, duration, duration_max)


def queue_figures() -> list[tuple[str, int, int, int]]:
    import datetime as dt

    from django.db.models import Count, Q
    from django.utils import timezone
    from django_tasks.base import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    since = timezone.now() - dt.timedelta(hours=24)
    rows = (DBTaskResult.objects.values("queue_name")
            .annotate(ready=Count("id", filter=Q(status=TaskResultStatus.READY)),
                      running=Count("id", filter=Q(status=TaskResultStatus.RUNNING)),
                      failed=Count("id", filter=Q(status=TaskResultStatus.FAILED, finished_at__gte=since)))
            .order_by("queue_name"))
    seen = {r["queue_name"]: (r["ready"], r["running"], r["failed"]) for r in rows}
    return [(q, *seen.get(q, (0, 0, 0))) for q in sorted(set(settings.TASK_QUEUES) | set(seen))]


def task_durations() -> list[tuple[str, float, float]]:
    import datetime as dt

    from django.db.models import Avg, DurationField, ExpressionWrapper, F, Max
    from django.utils import timezone
    from django_tasks_db.models import DBTaskResult

    since = timezone.now() - dt.timedelta(hours=1)
    took = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    rows = (DBTaskResult.objects.filter(finished_at__gte=since, started_at__isnull=False).values("task_path")
            .annotate(avg=Avg(took), longest=Max(took)).order_by("task_path"))
    return [(r["task_path"], _seconds(r["avg"]), _seconds(r["longest"])) for r in rows]


def _seconds(value) -> float:
    if value is None:
        return 0.0
    if hasattr(value, "total_seconds"):
        return value.total_seconds()
    return float(value) / 1_000_000  # SQLite returns microseconds


def render_metrics() -> bytes:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)  # sums the files every gunicorn worker writes
    else:
        registry.register(REQUESTS)
        registry.register(LATENCY)
    registry.register(QueueCollector())
    return generate_latest(registry)


def database_ok() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return True, "ok"
    except Exception as exc:  # noqa: BLE001 - readiness reports any failure
        return False, type(exc).__name__


def broker_ok() -> tuple[bool, str]:
    if settings.TASK_BACKEND == "rq":
        try:
            import redis

            redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2).ping()
            return True, "ok"
        except Exception as exc:  # noqa: BLE001
            return False, type(exc).__name__
    if settings.TASK_BACKEND == "db":
        return database_ok()
    return True, "inline"
