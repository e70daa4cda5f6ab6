import logging
import signal
import time

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from dangol.core.scheduler import enqueue_due_jobs

logger = logging.getLogger("dangol.scheduler")


class Command(BaseCommand):
    help = "Enqueue periodic jobs idempotently (run one or several; each slot is enqueued once)."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=15.0, help="seconds between checks")
        parser.add_argument("--once", action="store_true", help="check once and exit (for cron or tests)")

    def handle(self, *args, interval: float, once: bool, **options):
        running = True

        def stop(signum, frame):
            nonlocal running
            running = False

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        while running:
            close_old_connections()
            try:
                names = enqueue_due_jobs()
                if names:
                    self.stdout.write(f"enqueued: {', '.join(names)}")
            except Exception:  # database restarting: the next round retries
                logger.exception("scheduler round failed")
            if once:
                break
            time.sleep(interval)
