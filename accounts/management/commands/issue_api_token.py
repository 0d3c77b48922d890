from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.services import api_token_issue
from vault.services import role_groups_ensure


class Command(BaseCommand):
    help = (
        "Create USERNAME if needed and print its API token on the last line. --merchant ID attaches the user to "
        "that merchant (created if new); with neither --merchant nor --group the user gets a merchant of its own "
        "named after it. --group is a role: support, finance, cde or auditor. The token is shown only this once "
        "(only its hash is stored); it expires after --ttl-days (default API_TOKEN_TTL_DAYS). Earlier tokens stay "
        "valid until revoked (revoke_api_token)."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--merchant", dest="merchant_id")
        parser.add_argument("--group")
        parser.add_argument("--ttl-days", type=int, help="days until the token expires")

    def handle(self, *args, username, merchant_id, group, ttl_days, **options):
        if not merchant_id and not group:
            merchant_id = username
        if ttl_days is not None and ttl_days < 1:
            raise CommandError("--ttl-days must be positive")
        if group:
            role_groups_ensure()  # the roles and their permissions, should a flush have removed them
        try:
            key = api_token_issue(username=username, merchant_id=merchant_id, group=group, ttl_days=ttl_days)
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from None
        self.stdout.write(key)
