"""``dangol dedupe [--dry-run] [--pairs PATH]``: find probable duplicate customers, merge the sure ones, queue the rest.

The last line is always ``candidates: N, merged: N, queued: N``; when the run cannot start, one error line and a
non-zero exit status."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from dangol.core.audit import Actor
from dangol.ingest.dedupe import DedupeError, run_dedupe, thresholds


class Command(BaseCommand):
    help = ("Find probable duplicate customers (probabilistic record linkage). Pairs at or above "
            "DANGOL_DEDUPE_AUTO_MERGE are merged (reversibly), pairs from DANGOL_DEDUPE_REVIEW up wait in the review "
            "queue. The last line reads `candidates: N, merged: N, queued: N`.")

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="score the pairs, but merge and queue nothing")
        parser.add_argument("--pairs", metavar="PATH", default=None,
                            help="write the pairs at or above the review threshold to this CSV file "
                                 "(source_id_1,source_id_2,match_probability; customer:<id> where a record has no "
                                 "source id)")

    def handle(self, *args, dry_run: bool, pairs: str | None, **options):
        try:
            review, auto = thresholds()
            result = run_dedupe(actor=Actor.system("cli"), dry_run=dry_run, pairs_path=pairs)
        except DedupeError as exc:
            raise CommandError(str(exc))
        except DatabaseError as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CommandError(f"The dedupe stopped on a database error: {first_line}")
        phases = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in result.phase_seconds.items())
        self.stdout.write(f"{result.records:,} customers compared in {result.seconds:.1f}s ({phases}); "
                          f"peak memory {result.peak_mb:.0f} MB; model "
                          f"{'trained on this data' if result.trained else 'with default parameters (small data)'}.")
        self.stdout.write(f"Thresholds: automatic merge ≥ {auto:g}, review queue ≥ {review:g}. "
                          f"{result.auto_pairs} pair(s) to merge, {result.review_pairs} to review, "
                          f"{result.decided_pairs} already decided.")
        if result.merge_errors:
            self.stdout.write(f"{result.merge_errors} merge(s) skipped: the record was merged meanwhile.")
        if pairs:
            self.stdout.write(f"Pairs written to {pairs}.")
        if dry_run:
            self.stdout.write(f"Dry run: nothing changed; would merge {result.would_merge} record(s) and queue "
                              f"{result.would_queue} pair(s).")
        self.stdout.write(result.summary_line)
