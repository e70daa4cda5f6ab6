import logging
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import InterfaceError, OperationalError, close_old_connections

from dangol.core.workers import LeaseKeeper, new_worker_id, requeue_own_tasks, requeue_tasks_of_dead_workers, wait_for_database

logger = logging.getLogger("dangol.workers")


class Command(BaseCommand):
    help = "Run a task worker (database queue by default; RQ when DANGOL_TASK_BACKEND=rq). Run as many as needed."

    def add_arguments(self, parser):
        parser.add_argument("--queues", default="*", help="comma-separated queue names, or * for all")
        parser.add_argument("--batch", action="store_true", help="run what is queued, then exit")
        parser.add_argument("--max-tasks", type=int, default=None)
        parser.add_argument("--interval", type=float, default=1.0)

    def handle(self, *args, queues: str, batch: bool, max_tasks, interval: float, **options):
        if settings.TASK_BACKEND == "rq":
            self.run_rq(queues, batch, max_tasks)
        else:
            self.run_db(queues, batch, max_tasks, interval)

    def run_db(self, queues, batch, max_tasks, interval):
        # The database may restart under a running worker; the worker waits for it and goes on by itself.
        while True:
            worker_id = new_worker_id()
            keeper = LeaseKeeper(worker_id)
            try:
                keeper.start()
                requeue_tasks_of_dead_workers()
                options = {"queue_name": queues, "worker_id": worker_id, "interval": interval, "reload": False}
                if batch:
                    options["batch"] = True
                if max_tasks:
                    options["max_tasks"] = max_tasks
                call_command("db_worker", **options)
                keeper.stop()
                return
            except (OperationalError, InterfaceError):
                logger.warning("database connection lost; waiting for it to come back", exc_info=True)
                keeper.abandon()
                close_old_connections()
                wait_for_database()
                # This process was running the task it had claimed: nobody else is, so it goes back in the queue now.
                requeue_own_tasks(worker_id)

    def run_rq(self, queues, batch, max_tasks):
        import redis

        names = settings.TASK_QUEUES if queues == "*" else queues.split(",")
        argv = ["rqworker", *names, "--with-scheduler", "--job-class", "django_tasks_rq.Job"]
        if batch:
            argv.append("--burst")
        if max_tasks:
            argv += ["--max-jobs", str(max_tasks)]
        delay = 1.0
        while True:
            try:
                call_command(*argv)
                return
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                # Redis lost: RQ keeps started jobs in its registries; wait and reconnect instead of dying.
                logger.warning("Redis connection lost; retrying in %.0f s", delay)
                time.sleep(delay)
                delay = min(delay * 2, 30)
