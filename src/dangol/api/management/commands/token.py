"""``dangol token create --user USERNAME``: the API token of a staff account, created on first use."""
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from rest_framework.authtoken.models import Token

from dangol.core import audit
from dangol.core.audit import Actor


class Command(BaseCommand):
    help = "Manage API tokens. `token create --user USERNAME` prints the user's token key on its last line."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        create = actions.add_parser("create", help="Create the user's token, or show the one they already have.")
        create.add_argument("--user", required=True, metavar="USERNAME", help="Username of the staff account.")

    def handle(self, *args, action: str, user: str, **options):
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
