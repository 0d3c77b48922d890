from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.services import api_token_issue
from vault.services import role_groups_ensure


class Command(BaseCommand):
    help = (
        "Create USERNAME if needed and print its API token on the last line. --merchant ID attaches the user to "
        "that merchant (created if new); with neither --merchant nor --group the user gets a merchant of its own "
        "named after it."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--merchant", dest="merchant_id")
        parser.add_argument("--group")

    def handle(self, *args, username, merchant_id, group, **options):
        if not merchant_id and not group:
            merchant_id = username
        if group:
            role_groups_ensure()  # the roles and their permissions, should a flush have removed them
        try:
            key = api_token_issue(username=username, merchant_id=merchant_id, group=group)
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from None
        self.stdout.write(key)
