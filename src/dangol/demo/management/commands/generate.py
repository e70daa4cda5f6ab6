"""``dangol generate --customers N --seed S``: deterministic demo and benchmark data for 한빛호텔 그룹."""
from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from dangol.demo.generator import generate


def _end(value: str) -> dt.datetime:
    """An ISO date (the end of that day in Seoul) or an ISO datetime (UTC if it has no offset)."""
    day = parse_date(value)
    if day is not None:
        return dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=timezone.get_default_timezone())
    moment = parse_datetime(value)
    if moment is None:
        raise ValueError(value)
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment


class Command(BaseCommand):
    help = ("Generate the demo business 한빛호텔 그룹 with N customers, their orders over the last years and about 3% "
            "duplicate records. The same seed and --end give the same data.")

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, required=True, help="customer records to write (duplicates included)")
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--years", type=int, default=2, help="years of purchase history (default 2)")
        parser.add_argument("--lines-per-customer", type=float, default=10.0, help="order lines per customer on average")
        parser.add_argument("--end", type=str, default=None,
                            help="last moment of the history, ISO date or datetime (default: now); fix it to reproduce")
        parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")

    def handle(self, *args, customers, seed, years, lines_per_customer, end, quiet, **options):
        try:
            end_at = _end(end) if end else None
        except ValueError:
            raise CommandError(f"--end: “{end}” is not an ISO date (2025-12-31) or datetime (2025-12-31T18:00:00+09:00).")
        progress = None if quiet else (lambda message: self.stderr.write(message))
        try:
            report = generate(customers=customers, seed=seed, years=years, lines_per_customer=lines_per_customer,
                              end=end_at, progress=progress)
        except ValueError as exc:
            raise CommandError(str(exc))
        self.stdout.write(f"Generated with seed {report.seed}, end {report.end.isoformat()}: {report.summary()}")
