from django.core.management.base import BaseCommand, CommandError

from dangol.core.backup import BackupError, backup


class Command(BaseCommand):
    help = "Back up the database to a file: pg_dump (custom format) on PostgreSQL, the online backup API on SQLite."

    def add_arguments(self, parser):
        parser.add_argument("path")

    def handle(self, *args, path: str, **options):
        try:
            written = backup(path)
        except BackupError as exc:
            raise CommandError(str(exc))
        self.stdout.write(f"backup written: {written}")
