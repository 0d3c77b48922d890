from django.core.management.base import BaseCommand, CommandError

from accounts.selectors import api_token_list
from accounts.services import api_token_revoke


class Command(BaseCommand):
    help = (
        "Revoke API tokens: the one whose prefix (the first 8 characters of the key, as the admin lists them) is "
        "given, or every token of the user of that name. A revoked token answers 401 from then on."
    )

    def add_arguments(self, parser):
        parser.add_argument("prefix_or_username", metavar="PREFIX|USERNAME")

    def handle(self, *args, prefix_or_username, **options):
        tokens = api_token_list(prefix_or_username=prefix_or_username)
        if not tokens:
            raise CommandError(f"no API token has the prefix or belongs to the user {prefix_or_username!r}")
        revoked = api_token_revoke(token_ids=[token.id for token in tokens])
        for token in tokens:
            state = "already revoked" if token.revoked_at else "revoked"
            self.stdout.write(f"{token.prefix}  {token.user.username}  created {token.created_at:%Y-%m-%d}  {state}")
        self.stdout.write(f"{revoked} token(s) revoked")
