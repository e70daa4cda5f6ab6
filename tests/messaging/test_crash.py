"""A worker killed with SIGKILL in the middle of a batch loses nothing and sends nothing twice — for real: `dangol
worker` processes, the local HTTP provider, the database of the run (SQLite, or PostgreSQL when DATABASE_URL is set)
and once on the Redis backend. The provider's deliveries are compared with the outbox afterwards."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from dangol.messaging.testing import LocalProvider
from tests.ops.conftest import dangol, query, scratch_env  # noqa: F401 - scratch_env is a fixture

N = 300
REDIS_URL = os.environ.get("DANGOL_MESSAGING_TEST_REDIS_URL", "redis://127.0.0.1:6379/5")

SETUP = f"""
from django.utils import timezone
from dangol.core.models import BusinessUnit
from dangol.customers.models import Customer, ContactPoint
from dangol.messaging import services
BusinessUnit.objects.create(code='crash', name='crash')
now = timezone.now()
cs = Customer.objects.bulk_create([Customer(name=f'c{{i}}', joined_at=now) for i in range({N})])
ContactPoint.objects.bulk_create([ContactPoint(customer=c, kind='phone', value=f'+82105{{i:07d}}', is_primary=True) for i, c in enumerate(cs)])
counts = services.send_bulk(rows=[{{'customer_id': c.pk, 'variables': {{'n': i}}}} for i, c in enumerate(cs)], channel='sms', kind='info',
                            source='crash-test', occurrence='1', body='주문 #{{n}} 안내')
print(counts['queued'])
"""
OUTBOX = """
import json
from dangol.messaging.models import Message
print(json.dumps({str(pk): [status, body] for pk, status, body in Message.objects.values_list('pk', 'status', 'body')}))
"""


def start_worker(env):
    # A session of its own: SIGKILL goes to the worker and anything it forked (RQ's work horse), like a lost host.
    return subprocess.Popen([sys.executable, "-m", "dangol.cli", "worker"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def wait_for(predicate, timeout=90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def crash_and_recover(env, provider, enqueue_again):
    assert query(env, SETUP) == str(N)
    victim = start_worker(env)
    try:
        wait_for(lambda: provider.request_count >= 4)
        time.sleep(provider.delay / 2)  # inside a request the provider has accepted and not yet answered
    finally:
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait(timeout=10)
    delivered_at_kill = len(provider.deliveries)
    time.sleep(4.5)  # the worker's lease (2 s) and its claim (3 s) go stale
    if enqueue_again:
        query(env, "from dangol.messaging.tasks import dispatch_messages\ndispatch_messages.enqueue()")
    dangol(env, "worker", "--batch", timeout=180)
    outbox = json.loads(query(env, OUTBOX))
    return outbox, delivered_at_kill


def check(outbox, provider, delivered_at_kill):
    assert len(outbox) == N
    statuses = {status for status, _ in outbox.values()}
    assert statuses == {"sent"}, statuses  # zero lost
    assert set(provider.deliveries) == set(outbox)  # every message reached the provider, nothing else did
    for pk, delivery in provider.deliveries.items():
        assert delivery["text"] == outbox[pk][1]
    # Zero duplicates: what was accepted before the kill and sent again was recognised by its key and dropped.
    assert len(provider.deliveries) == N
    assert 0 < delivered_at_kill < N
    assert set(provider.repeats) <= set(outbox)


@pytest.fixture
def crash_env(scratch_env):
    provider = LocalProvider(delay=0.25).start()
    env = dict(scratch_env, DANGOL_MESSAGING_PROVIDER_SMS="nhn", DANGOL_NHN_SMS_URL=provider.url, DANGOL_NHN_SECRET_KEY="x",
               DANGOL_NHN_SMS_APP_KEY="app", DANGOL_MESSAGING_BATCH_SIZE="20", DANGOL_MESSAGING_RATE_LIMITS="",
               DANGOL_MESSAGING_CLAIM_SECONDS="3", DANGOL_WORKER_LEASE_SECONDS="2")
    yield env, provider
    provider.stop()


def test_a_worker_killed_mid_batch_loses_nothing_and_sends_nothing_twice(crash_env):
    env, provider = crash_env
    outbox, delivered_at_kill = crash_and_recover(env, provider, enqueue_again=False)
    check(outbox, provider, delivered_at_kill)
    print(f"\ncrash test ({'postgresql' if 'DATABASE_URL' in env else 'sqlite'}): {N} messages, {delivered_at_kill} delivered at the kill, "
          f"{len(provider.repeats)} repeats dropped by key, {provider.request_count} requests")


def test_the_same_on_the_redis_backend(crash_env):
    import redis

    env, provider = crash_env
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.exceptions.ConnectionError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("no Redis at " + REDIS_URL)
    redis.Redis.from_url(REDIS_URL).flushdb()
    env = dict(env, DANGOL_TASK_BACKEND="rq", REDIS_URL=REDIS_URL)
    try:
        outbox, delivered_at_kill = crash_and_recover(env, provider, enqueue_again=True)
    finally:
        redis.Redis.from_url(REDIS_URL).flushdb()
    check(outbox, provider, delivered_at_kill)
