"""``dangol export warehouse DIR``: Parquet files for a BI tool, DuckDB or Spark (see dangol.warehouse.export)."""
from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from dangol.core.audit import Actor
from dangol.core.models import User
from dangol.warehouse.export import datasets, export_warehouse


class Command(BaseCommand):
    help = ("Export to a data warehouse directory: customers (pseudonymised unless --identities), orders and lines, the "
            "analytics snapshot and the loyalty ledgers as Parquet partitioned by month, incremental since the last run "
            "to the same directory, with manifest.json.")

    def add_arguments(self, parser):
        parser.add_argument("what", choices=["warehouse"], help="what to export")
        parser.add_argument("directory", help="the target directory (created when missing)")
        parser.add_argument("--identities", action="store_true",
                            help="customer ids, names, phones and emails in clear (needs --user of an admin)")
        parser.add_argument("--user", default="", help="the staff user on whose behalf the export runs (audited)")
        parser.add_argument("--only", action="append", choices=[d.name for d in datasets()], default=None,
                            help="only this dataset (repeatable)")

    def handle(self, *args, what, directory, identities, user, only, **options):
        account = None
        if user:
            account = User.objects.filter(username=user).first()
            if account is None:
                raise CommandError(f"no user {user!r}")
        if identities and account is None:
            raise CommandError("--identities needs --user of an admin (the export of identities is audited under that name)")
        try:
            result = export_warehouse(directory=directory, identities=identities, only=only,
                                      actor=Actor(user=account, via="cli"))
        except PermissionDenied as exc:
            raise CommandError(str(exc)) from exc
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        for name, rows in result.rows.items():
            took = result.seconds.get(name)
            self.stdout.write(f"{name}: {rows} rows" + (f" in {took:.1f} s (of which reading the database "
                                                          f"{result.seconds[name + '.dump']:.1f} s)" if took is not None else ""))
        self.stdout.write(f"run {result.run.pk}: {result.summary_line}")
