"""``dangol demo``: migrate, load the Hanbit Hotels demo business once, create the demo accounts, and serve."""
import os
import subprocess
import sys

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction

from dangol.core.models import BusinessUnit, Role, User
from dangol.core.services import create_staff_user
from dangol.customers.models import Customer

DEMO_PASSWORD = "dangol-demo"
DEMO_ACCOUNTS = [
    # username, role, units (None: all), description
    ("demo", Role.ADMIN, None, "admin, all business units"),
    ("manager", Role.MANAGER, ["seoul-hotel"], "manager of the Seoul hotel"),
    ("clerk", Role.STAFF, ["bakery"], "staff of the bakery"),
]


class Command(BaseCommand):
    help = "Set up Dangol with the Hanbit Hotels demo business on the configured database and serve the staff app."

    def add_arguments(self, parser):
        parser.add_argument("--no-serve", action="store_true", help="only migrate and load the demo data, then exit")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--customers", type=int, default=3000, help="demo customers to generate on first run")
        parser.add_argument("--seed", type=int, default=42)

    def handle(self, *args, no_serve: bool, port: int, customers: int, seed: int, **options):
        from django.conf import settings
        from django.core.management.base import CommandError

        from dangol.demo.generator import ensure_reference_data, generate
        from dangol.demo.samples import write_sample_files

        if settings.DANGOL_ENV == "production":
            raise CommandError("The demo creates accounts with a published password: not in production (DANGOL_ENV=production).")
        call_command("migrate", interactive=False, verbosity=0)
        ensure_reference_data()
        if not Customer.objects.exists():
            self.stdout.write(f"Generating the demo business: {customers:,} customers, two years of purchases…")
            report = generate(customers=customers, seed=seed)
            self.stdout.write(f"  done in {report.seconds:.1f} s")
        self._ensure_accounts()
        self._bring_to_life()
        self.stdout.write(self.style.SUCCESS("Dangol demo is ready: Hanbit Hotels (한빛호텔 그룹)"))
        samples = write_sample_files(settings.DATA_DIR / "samples")
        self.stdout.write(f"  Staff app:  http://127.0.0.1:{port}/")
        for username, _role, _units, description in DEMO_ACCOUNTS:
            self.stdout.write(f"  Log in as:  {username} / {DEMO_PASSWORD}   ({description})")
        self.stdout.write(f"  Try the import (Import, as demo or manager) with the files in {samples['bakery_customers'].parent}")
        if not no_serve:
            # Imports and dedupe run as background tasks: one worker beside the web server, stopped with it.
            # The periodic jobs (expiry, analytics refresh, automations, held messages at 08:00) need the scheduler:
            # the embedded default runs it beside the worker, both stopped with the web server.
            helpers = [subprocess.Popen([sys.executable, "-m", "dangol.cli", command], env=os.environ.copy())
                       for command in ("worker", "scheduler")]
            try:
                call_command("runserver", f"127.0.0.1:{port}", use_reloader=False, use_threading=True)
            finally:
                for helper in helpers:
                    helper.terminate()
                for helper in helpers:
                    try:
                        helper.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        helper.kill()

    def _bring_to_life(self):
        """Once per demo database: the loyalty programme with two years of points, the analysis snapshot, and what
        the other apps show (messages, campaigns, cases, surveys), so that every page has something to say."""
        from dangol.analytics.models import CustomerMetrics
        from dangol.loyalty.models import LedgerEntry

        if not LedgerEntry.objects.exists():
            self.stdout.write("Loyalty: the programme and two years of points…")
            call_command("loyalty", "setup", stdout=self.stdout)
            call_command("loyalty", "backfill", "--expire", "--tiers", stdout=self.stdout)
        from dangol.service import demo as service_demo

        service_demo.seed()
        from dangol.campaigns import demo as campaigns_demo

        campaigns_demo.seed(manager=User.objects.get(username="manager"))
        if not CustomerMetrics.objects.exists():
            self.stdout.write("Customer analysis: the first metrics snapshot…")
            call_command("analytics", "refresh", stdout=self.stdout)
        call_command("playbook_demo", stdout=self.stdout)

    @transaction.atomic
    def _ensure_accounts(self):
        for username, role, unit_codes, _description in DEMO_ACCOUNTS:
            if User.objects.filter(username=username).exists():
                continue
            units = list(BusinessUnit.objects.filter(code__in=unit_codes)) if unit_codes else None
            create_staff_user(username=username, password=DEMO_PASSWORD, role=role, units=units)
