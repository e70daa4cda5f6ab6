"""dangol privacy retention [--dry-run] | rotate-keys | generate-key

- ``retention``: anonymise customers past their retention period, delete access logs and import error rows past
  theirs; ``--dry-run`` prints what would be done and writes nothing. The last line is a summary of counts.
- ``rotate-keys``: re-encrypt every encrypted field with the first key of DANGOL_FIELD_KEYS (run after putting a
  new key first; afterwards the old key can be removed). The last line is ``rotated: N``.
- ``generate-key``: print a new Fernet key for DANGOL_FIELD_KEYS.
"""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Privacy: retention run (with --dry-run report), key rotation of encrypted fields, new key."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["retention", "rotate-keys", "generate-key"])
        parser.add_argument("--dry-run", action="store_true", help="retention: report only, change nothing")
        parser.add_argument("--batch", type=int, default=1000, help="rotate-keys: rows per transaction")

    def handle(self, *args, action: str, dry_run: bool, batch: int, **options):
        if action == "retention":
            from dangol.core.audit import Actor
            from dangol.privacy.retention import run_retention

            report = run_retention(dry_run=dry_run, actor=Actor.system("cli"))
            self.stdout.write(report.text)
        elif action == "rotate-keys":
            from dangol.privacy.keys import rotate_all

            if batch < 1:
                raise CommandError("--batch must be at least 1")
            counts = rotate_all(batch=batch)
            for label, count in counts.items():
                self.stdout.write(f"{label}: {count}")
            self.stdout.write(f"rotated: {sum(counts.values())}")
        else:
            from dangol.core.crypto import generate_key

            self.stdout.write(generate_key())
