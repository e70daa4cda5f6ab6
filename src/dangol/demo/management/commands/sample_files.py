"""``dangol sample-files DIR``: write sample exports of the demo units to try the import with."""
from django.core.management.base import BaseCommand

from dangol.demo.samples import write_sample_files


class Command(BaseCommand):
    help = "Write sample customer and order exports (CP949 CSV, XLSX, UTF-8 CSV) of the demo units into DIR."

    def add_arguments(self, parser):
        parser.add_argument("directory")
        parser.add_argument("--persons", type=int, default=120)
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args, directory, persons, seed, **options):
        paths = write_sample_files(directory, persons=persons, seed=seed)
        for name, path in paths.items():
            self.stdout.write(f"{name}: {path}")
