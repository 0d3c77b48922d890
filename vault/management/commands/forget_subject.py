from django.core.management.base import BaseCommand, CommandError

from vault import services
from vault.fields import subject_id_check


class Command(BaseCommand):
    help = (
        "Crypto-shred a data subject (e.g. a customer id): destroy their data key, so their personal data is "
        "unreadable everywhere, immutable events included, and clear the blind indexes that could still find "
        "them. No event row changes. Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("subject_id", help="the data subject's id (a customer's id)")

    def handle(self, *args, subject_id, **options):
        try:
            subject_id_check(subject_id)
        except ValueError as error:
            raise CommandError(str(error)) from None
        destroyed, cleared = services.subject_forget(subject_id=subject_id)
        if destroyed:
            self.stdout.write(f"subject {subject_id}: data key destroyed, their personal data is unreadable")
        else:
            self.stdout.write(f"subject {subject_id}: already forgotten (or never stored), no key to destroy")
        self.stdout.write(f"blind indexes cleared: {cleared}")
