"""The Redis task backend (django-tasks-rq) against the machine's real Redis."""
import json
import os
import uuid

import pytest
import redis

from tests.ops.conftest import dangol, query

REDIS_URL = os.environ.get("DANGOL_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def rq_env(scratch_env):
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.exceptions.ConnectionError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("no Redis at " + REDIS_URL)
    env = dict(scratch_env, DANGOL_TASK_BACKEND="rq", REDIS_URL=REDIS_URL)
    redis.Redis.from_url(REDIS_URL).flushdb()
    yield env
    redis.Redis.from_url(REDIS_URL).flushdb()


def test_tasks_enqueued_on_redis_are_run_by_a_worker_once(rq_env):
    prefix = uuid.uuid4().hex[:8]
    query(rq_env, f"from dangol.core.tasks import heartbeat\nfor i in range(12): heartbeat.enqueue(token='{prefix}' + str(i))")
    assert redis.Redis.from_url(REDIS_URL).llen("rq:queue:default") == 12
    dangol(rq_env, "worker", "--batch", timeout=120)
    result = json.loads(query(rq_env, "import json\nfrom dangol.core.models import Heartbeat\n"
                                      f"print(json.dumps(list(Heartbeat.objects.filter(token__startswith='{prefix}').values_list('token', flat=True))))"))
    assert sorted(result) == sorted(f"{prefix}{i}" for i in range(12))
    assert redis.Redis.from_url(REDIS_URL).llen("rq:queue:default") == 0


def test_readiness_reports_the_redis_broker(rq_env):
    code = ("from django.test import Client\nr = Client().get('/readyz')\nprint(r.status_code, r.json()['broker'])")
    assert query(rq_env, code) == "200 ok"
