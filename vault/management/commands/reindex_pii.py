from django.core.management.base import BaseCommand, CommandError

from vault.fields import blind_indexes_recompute


class Command(BaseCommand):
    help = (
        "Recompute every blind index of personal data (the e-mail index of customers...) from the decrypted "
        "values under the current PII index key, in batches. Needed once after that key was created on an "
        "installation whose indexes were computed with another key; safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args, batch_size, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be positive")
        self.stdout.write(f"PII blind indexes recomputed: {blind_indexes_recompute(batch_size=batch_size)} row(s)")
