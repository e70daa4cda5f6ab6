"""API tokens from the command line.

- ``dangol token create --user USERNAME``: the per-user token of a staff account (created on first use), acting as
  that account with every scope.
- ``dangol token create --integration NAME --unit CODE [--unit CODE…] --scope customers:read --scope orders:write
  [--role staff|manager|admin] [--rate 600/min]``: a scoped integration token, printed once.
- ``dangol token list`` and ``dangol token revoke NAME``.
The token is always the last line printed.
"""
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from rest_framework.authtoken.models import Token

from dangol.api import tokens
from dangol.api.models import SCOPES, ApiToken
from dangol.core import audit
from dangol.core.audit import Actor
from dangol.core.models import BusinessUnit, Role


class Command(BaseCommand):
    help = "Manage API tokens. `token create --user USERNAME` prints the user's token key on its last line."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        create = actions.add_parser("create", help="Create a token (per user, or a scoped integration token).")
        who = create.add_mutually_exclusive_group(required=True)
        who.add_argument("--user", metavar="USERNAME", help="Username of the staff account.")
        who.add_argument("--integration", metavar="NAME", help="Name of the integration (a POS, a website…).")
        create.add_argument("--scope", action="append", default=[], metavar="SCOPE", help=f"One of: {', '.join(SCOPES)}.")
        create.add_argument("--unit", action="append", default=[], metavar="CODE", help="Business unit code (repeat).")
        create.add_argument("--role", default=Role.STAFF, choices=Role.values)
        create.add_argument("--rate", default="", help="Rate limit, e.g. 600/min.")
        actions.add_parser("list", help="List integration tokens (never their keys).")
        revoke = actions.add_parser("revoke", help="Revoke an integration token.")
        revoke.add_argument("name")

    def handle(self, *args, action: str, **options):
        if action == "list":
            for token in ApiToken.objects.prefetch_related("units"):
                state = "revoked" if token.revoked_at else "active"
                units = ",".join(u.code for u in token.units.all()) or "all"
                self.stdout.write(f"{token.name}\t{token.prefix}…\t{token.role}\t{units}\t{' '.join(token.scopes)}\t{state}")
            return
        if action == "revoke":
            token = ApiToken.objects.filter(name=options["name"]).first()
            if token is None:
                raise CommandError(f"There is no integration token “{options['name']}”.")
            tokens.revoke_token(actor=Actor.system("cli"), token=token)
            self.stdout.write(f"Revoked {token.name}.")
            return
        if options.get("integration"):
            self.create_integration(options)
        else:
            self.create_for_user(options["user"])

    def create_integration(self, options):
        codes = options["unit"]
        units = list(BusinessUnit.objects.filter(code__in=codes))
        missing = set(codes) - {u.code for u in units}
        if missing:
            raise CommandError(f"Unknown business unit: {', '.join(sorted(missing))}.")
        try:
            created = tokens.create_token(actor=Actor.system("cli"), name=options["integration"], scopes=options["scope"],
                                          units=units, role=options["role"], rate=options["rate"])
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages))
        self.stdout.write(f"Created the integration token “{created.token.name}” ({', '.join(created.token.scopes)}). "
                          "It is shown only now. Send it as `Authorization: Bearer <token>`:")
        self.stdout.write(created.key)

    def create_for_user(self, user: str):
        username = user.strip()
        account = get_user_model().objects.filter(username=username).first()
        if account is None:
            raise CommandError(f"There is no user “{username}”. Check the username (it is case-sensitive).")
        if not account.is_active:
            raise CommandError(f"The account “{username}” is deactivated; a token would be refused.")
        token, created = Token.objects.get_or_create(user=account)
        if created:
            audit.record(actor=Actor.system("cli"), action="api_token.create", obj=account, fields=["api_token"])
        self.stdout.write(f"{'Created a new' if created else 'Existing'} API token for {account.get_username()}. "
                          "Send it as `Authorization: Bearer <token>`:")
        self.stdout.write(token.key)
