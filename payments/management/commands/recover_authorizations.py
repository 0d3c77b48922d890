import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from payments.services import payment_authorizations_recover


class Command(BaseCommand):
    help = (
        "Settle with the acquirer every authorization attempt whose answer nobody recorded (a lost answer, a "
        "process killed between the approval and the commit): an approval is voided, the payment stays as "
        "recorded. What beat runs every minute."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            type=float,
            default=None,
            help="seconds an attempt has been open (default PAYMENTS_ATTEMPT_RECOVER_AFTER_SECONDS)",
        )

    def handle(self, *args, older_than, **options):
        if older_than is not None and older_than < 0:
            raise CommandError("--older-than must not be negative")
        recovered = payment_authorizations_recover(
            older_than=None if older_than is None else dt.timedelta(seconds=older_than)
        )
        for attempt in recovered:
            self.stdout.write(f"{attempt.idempotency_key}: {attempt.outcome}")
        self.stdout.write(f"{len(recovered)} attempt(s) settled")
