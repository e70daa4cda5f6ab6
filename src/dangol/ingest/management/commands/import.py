"""dangol import customers|orders PATH --unit CODE [--dry-run] [--mapping NAME]

The last line printed is exactly ``read: N, created: N, updated: N, unchanged: N, rejected: N``; the error report is
written next to the file as PATH.errors.csv. Exit status 0 when the import ran (even with rejected rows), 1 when it
could not run (unreadable file, unknown unit, no recognisable columns…), with one line saying why.
"""
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from dangol.core.audit import Actor
from dangol.core.models import BusinessUnit
from dangol.ingest import services
from dangol.ingest.models import ImportKind, JobStatus, MappingProfile


class Command(BaseCommand):
    help = "Import a business unit's customers or order lines from CSV (UTF-8 or CP949) or XLSX."

    def add_arguments(self, parser):
        parser.add_argument("kind", choices=ImportKind.values)
        parser.add_argument("path")
        parser.add_argument("--unit", required=True, help="the business unit's code")
        parser.add_argument("--dry-run", action="store_true", help="check and count, write nothing")
        parser.add_argument("--mapping", help="the name of a saved column mapping of this unit")

    def handle(self, *args, kind, path, unit, dry_run, mapping, **options):
        source = Path(path)
        if not source.is_file():
            raise CommandError(f"No such file: {path}")
        try:
            business_unit = BusinessUnit.objects.get(code=unit)
        except BusinessUnit.DoesNotExist:
            raise CommandError(f"No business unit with the code “{unit}”.")
        profile = None
        if mapping:
            profile = MappingProfile.objects.filter(unit=business_unit, kind=kind, name=mapping).first()
            if profile is None:
                raise CommandError(f"No saved mapping “{mapping}” for {kind} at {unit}.")
        actor = Actor.system("cli")
        job = services.create_job(actor=actor, unit=business_unit, kind=kind, path=services.copy_for_job(source),
                                  original_name=source.name, profile=profile, dry_run=dry_run)
        job = services.run_job(job, actor=actor)
        if job.status != JobStatus.DONE:
            raise CommandError(job.error or "The import could not run.")
        report = Path(f"{source}.errors.csv")
        if job.rejected:
            services.write_error_report(job, report)
            self.stderr.write(f"{job.rejected} rejected rows: see {report}")
        elif report.exists():
            report.unlink()  # a report of an earlier run of this file would be misleading now
        if job.flagged:
            self.stderr.write(f"{job.flagged} orders flagged for review")
        if dry_run:
            self.stderr.write("dry run: nothing was written")
        self.stdout.write(job.counts_line)
