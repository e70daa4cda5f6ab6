from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from dangol.core.workers import LeaseKeeper, new_worker_id, requeue_tasks_of_dead_workers


class Command(BaseCommand):
    help = "Run a task worker (database queue by default; RQ when DANGOL_TASK_BACKEND=rq). Run as many as needed."

    def add_arguments(self, parser):
        parser.add_argument("--queues", default="*", help="comma-separated queue names, or * for all")
        parser.add_argument("--batch", action="store_true", help="run what is queued, then exit")
        parser.add_argument("--max-tasks", type=int, default=None)
        parser.add_argument("--interval", type=float, default=1.0)

    def handle(self, *args, queues: str, batch: bool, max_tasks, interval: float, **options):
        if settings.TASK_BACKEND == "rq":
            names = settings.TASK_QUEUES if queues == "*" else queues.split(",")
            argv = ["rqworker", *names, "--with-scheduler", "--job-class", "django_tasks_rq.Job"]
            if batch:
                argv.append("--burst")
            if max_tasks:
                argv += ["--max-jobs", str(max_tasks)]
            call_command(*argv)
            return
        worker_id = new_worker_id()
        keeper = LeaseKeeper(worker_id)
        keeper.start()
        requeue_tasks_of_dead_workers()
        try:
            options = {"queue_name": queues, "worker_id": worker_id, "interval": interval, "reload": False}
            if batch:
                options["batch"] = True
            if max_tasks:
                options["max_tasks"] = max_tasks
            call_command("db_worker", **options)
        finally:
            keeper.stop()
