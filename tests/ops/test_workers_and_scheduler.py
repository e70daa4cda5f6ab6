import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from django.utils import timezone

from dangol.core.models import ScheduledSlot, WorkerLease
from dangol.core.scheduler import PeriodicJob, enqueue_due_jobs
from tests.ops.conftest import dangol, query



def start_worker(env, *extra):
    return subprocess.Popen([sys.executable, "-m", "dangol.cli", "worker", *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for(predicate, timeout=60.0, every=0.3):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("timed out waiting")


ENQUEUE = "from dangol.core.tasks import heartbeat\nfor i in range({n}): heartbeat.enqueue(token=f'{prefix}{{i}}', hold_seconds={hold})"
COUNTS = ("import json\nfrom dangol.core.models import Heartbeat\nfrom django_tasks_db.models import DBTaskResult\n"
          "print(json.dumps({{'beats': Heartbeat.objects.count(), 'workers': Heartbeat.objects.values('worker').distinct().count(),"
          "'tokens': Heartbeat.objects.values('token').distinct().count(), "
          "'status': dict(DBTaskResult.objects.values_list('status').annotate(n=__import__('django.db.models', fromlist=['Count']).Count('id')))}}))")


def counts(env):
    return json.loads(query(env, COUNTS.format()))


def test_two_worker_processes_share_one_queue_and_run_each_task_once(scratch_env):
    query(scratch_env, ENQUEUE.format(n=30, prefix="t", hold=0.1))
    workers = [start_worker(scratch_env, "--batch") for _ in range(2)]
    for w in workers:
        w.wait(timeout=120)
        assert w.returncode == 0, w.stdout.read()
    result = counts(scratch_env)
    assert result["beats"] == 30 and result["tokens"] == 30
    assert result["workers"] == 2, "both workers should have taken part"
    assert result["status"] == {"SUCCESSFUL": 30}


def test_a_task_of_a_killed_worker_is_run_again_by_another_and_written_once(scratch_env):
    env = dict(scratch_env, DANGOL_WORKER_LEASE_SECONDS="2")
    query(env, ENQUEUE.format(n=1, prefix="killed", hold=8))
    victim = start_worker(env)
    wait_for(lambda: counts(env)["status"].get("RUNNING") == 1)
    victim.send_signal(signal.SIGKILL)  # no chance to clean up: the lease stays behind and goes stale
    victim.wait(timeout=10)
    time.sleep(2.5)
    rescuer = start_worker(env, "--batch")
    rescuer.wait(timeout=60)
    result = counts(env)
    assert result["beats"] == 1 and result["status"] == {"SUCCESSFUL": 1}


@pytest.mark.django_db
def test_the_scheduler_enqueues_each_slot_once_however_many_schedulers_run(settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend", "QUEUES": settings.TASK_QUEUES}}
    jobs = [PeriodicJob("beat", "dangol.core.tasks.heartbeat", dt.timedelta(minutes=5), {"token": "x"})]
    now = timezone.now().replace(minute=1, second=0)
    assert enqueue_due_jobs(now=now, jobs=jobs) == ["beat"]
    assert enqueue_due_jobs(now=now + dt.timedelta(minutes=1), jobs=jobs) == []  # same slot, a second scheduler
    assert enqueue_due_jobs(now=now + dt.timedelta(minutes=5), jobs=jobs) == ["beat"]
    assert ScheduledSlot.objects.filter(job="beat").count() == 2


@pytest.mark.django_db
def test_requeue_leaves_tasks_of_live_workers_alone(settings):
    from django_tasks.base import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    from dangol.core.workers import requeue_tasks_of_dead_workers

    settings.WORKER_LEASE_SECONDS = 60
    now = timezone.now()
    WorkerLease.objects.create(worker_id="alive", host="h", pid=1, started_at=now, renewed_at=now)
    common = dict(status=TaskResultStatus.RUNNING, started_at=now - dt.timedelta(minutes=10), args_kwargs={"args": [], "kwargs": {}},
                  task_path="dangol.core.tasks.heartbeat", backend_name="default", run_after=now, queue_name="default")
    live = DBTaskResult.objects.create(worker_ids=["alive"], **common)
    dead = DBTaskResult.objects.create(worker_ids=["gone"], **common)
    assert requeue_tasks_of_dead_workers(now=now) == 1
    assert DBTaskResult.objects.get(pk=live.pk).status == TaskResultStatus.RUNNING
    assert DBTaskResult.objects.get(pk=dead.pk).status == TaskResultStatus.READY
