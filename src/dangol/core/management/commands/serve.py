"""``dangol serve``: the production web server (gunicorn), with static files collected and served by whitenoise."""
import os
import shutil
import sys
import tempfile

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Run the web app under gunicorn (production). Static files are served by the app itself (whitenoise)."
    requires_system_checks = []  # run below, with the deploy checks, so a refusal is explicit

    def add_arguments(self, parser):
        parser.add_argument("--bind", default=os.environ.get("DANGOL_BIND", "127.0.0.1:8000"))
        parser.add_argument("--workers", type=int, default=int(os.environ.get("DANGOL_WEB_WORKERS", "0")) or None,
                            help="gunicorn worker processes (default: 2 × cores + 1)")
        parser.add_argument("--threads", type=int, default=int(os.environ.get("DANGOL_WEB_THREADS", "4")))
        parser.add_argument("--migrate", action="store_true", help="apply migrations first")

    def handle(self, *args, bind: str, workers, threads: int, migrate: bool, **options):
        os.environ["DANGOL_STATIC_FROM_FINDERS"] = "0"
        if settings.WHITENOISE_USE_FINDERS:
            # Settings were read before this command set the variable: re-exec so gunicorn's workers and
            # collectstatic see the production static configuration from the start.
            os.execv(sys.executable, [sys.executable, "-m", "dangol.cli", *sys.argv[1:]])
        call_command("check", fail_level="ERROR")
        if migrate:
            call_command("migrate", interactive=False, verbosity=1)
        call_command("collectstatic", interactive=False, verbosity=0)
        multiproc = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if not multiproc:
            multiproc = tempfile.mkdtemp(prefix="dangol-metrics-")
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = multiproc
        gunicorn = shutil.which("gunicorn", path=os.path.dirname(sys.executable)) or shutil.which("gunicorn")
        if not gunicorn:
            raise CommandError("gunicorn is not installed in this environment.")
        cores = os.cpu_count() or 1
        argv = [gunicorn, "dangol.wsgi:application", "--bind", bind, "--workers", str(workers or 2 * cores + 1),
                "--threads", str(threads), "--config", "python:dangol.gunicorn_conf"]
        self.stdout.write(f"Serving Dangol on http://{bind}/ with {workers or 2 * cores + 1} workers")
        self.stdout.flush()
        os.execv(gunicorn, argv)
