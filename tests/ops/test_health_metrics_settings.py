import os
import subprocess
import sys

import pytest
from django.core.checks import run_checks

from dangol.core.logging import scrub


@pytest.mark.django_db
def test_liveness_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["database"] == "ok"


@pytest.mark.django_db
def test_readiness_fails_when_the_redis_broker_is_unreachable(client, settings):
    settings.TASK_BACKEND = "rq"
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["broker"] != "ok"


@pytest.mark.django_db
def test_readiness_with_the_real_redis_broker(client, settings):
    settings.TASK_BACKEND = "rq"
    settings.REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    assert client.get("/readyz").json()["broker"] == "ok"


@pytest.mark.django_db
def test_metrics_count_requests_and_show_queue_depth(client, monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    from dangol.core.tasks import heartbeat

    heartbeat.enqueue(token="m1")
    client.get("/healthz")
    body = client.get("/metrics").content.decode()
    assert 'dangol_http_requests_total{method="GET",status="200"}' in body
    assert 'dangol_task_queue_depth{queue="default"} 1.0' in body
    assert 'route="healthz"' in body


@pytest.mark.django_db
def test_metrics_can_require_a_token(client, monkeypatch):
    monkeypatch.setenv("DANGOL_METRICS_TOKEN", "s3cret")
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200


def test_production_refuses_the_demo_secret_key(settings):
    settings.DANGOL_ENV = "production"
    settings.SECRET_KEY = settings.DEMO_SECRET_KEY
    ids = {m.id for m in run_checks()}
    assert "dangol.E001" in ids
    settings.SECRET_KEY = "x" * 60
    assert "dangol.E001" not in {m.id for m in run_checks()}


def test_serve_refuses_to_start_with_the_demo_key(tmp_path):
    env = dict(os.environ, DANGOL_ENV="production", DANGOL_DATA_DIR=str(tmp_path))
    env.pop("DANGOL_SECRET_KEY", None)
    env.pop("DATABASE_URL", None)
    result = subprocess.run([sys.executable, "-m", "dangol.cli", "serve", "--bind", "127.0.0.1:0"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "dangol.E001" in result.stderr


def test_logs_never_carry_phone_numbers_or_emails():
    line = "lookup 010-1234-5678 and +82 10 9876 5432 for kim@example.com failed; order 12345678 ok"
    assert scrub(line) == "lookup [phone] and [phone] for [email] failed; order 12345678 ok"


def test_tracebacks_in_logs_are_scrubbed_too():
    import logging

    from dangol.core.logging import ScrubPersonalData

    try:
        raise ValueError("customer +821012345678 already exists")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed for kim@example.com", None, sys.exc_info())
    ScrubPersonalData().filter(record)
    text = logging.Formatter().format(record)
    assert "821012345678" not in text and "kim@example.com" not in text and "[phone]" in text
