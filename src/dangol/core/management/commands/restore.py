from django.core.management.base import BaseCommand, CommandError

from dangol.core.backup import BackupError, restore


class Command(BaseCommand):
    help = "Restore the database from a file made by `dangol backup`. Replaces the current data."

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    def handle(self, *args, path: str, yes: bool, **options):
        if not yes:
            answer = input("This replaces every row of the database. Type 'restore' to go on: ")
            if answer.strip() != "restore":
                raise CommandError("not restored")
        try:
            restore(path)
        except BackupError as exc:
            raise CommandError(str(exc))
        self.stdout.write(f"restored from {path}")
