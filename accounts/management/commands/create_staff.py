from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.services import STAFF_ROLES, staff_user_ensure


class Command(BaseCommand):
    help = (
        "Create or update the staff user USERNAME in --role (and a superuser with --superuser), with a new random "
        "password and a new TOTP device, replacing the old ones. Prints the otpauth:// URI (for an authenticator "
        "app), then, as the last two lines, 'password <password>' and 'totp <base32 secret>'. Shown only this once."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=STAFF_ROLES)
        parser.add_argument("--superuser", action="store_true")

    def handle(self, *args, username, role, superuser, **options):
        try:
            credentials = staff_user_ensure(username=username, role=role, superuser=superuser)
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from None
        kind = "superuser" if superuser else "staff user"
        self.stdout.write(f"{kind} {credentials.username} ({role}): log in at /admin/ with this password and a code")
        self.stdout.write(f"otpauth {credentials.totp_uri}")
        self.stdout.write(f"password {credentials.password}")
        self.stdout.write(f"totp {credentials.totp_secret}")
