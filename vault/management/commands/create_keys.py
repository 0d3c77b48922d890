from django.core.management.base import BaseCommand, CommandError

from vault import keys
from vault.fields import blind_indexes_recompute


class Command(BaseCommand):
    help = (
        "Create the vault's missing keys: on a first install the KEK and its PRF keys, on an upgrade the keys it "
        "introduced. Never run it to 'fix' a redeploy that lost its key volume: restore the volume instead, or "
        "every vaulted card stays unreadable. When it creates the PII blind-index key on an installation that "
        "already had a card index key, it recomputes the PII blind indexes under the new key."
    )
    # The system checks refuse to start while keys are missing: this is the command that creates them.
    requires_system_checks = []

    def handle(self, *args, **options):
        try:
            created = keys.key_provider().create_missing_keys()
        except keys.VaultKeyError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"created: {', '.join(created)}" if created else "every key exists: nothing created")
        if "pii-index" in created and "card-index" not in created:
            self.stdout.write(f"PII blind indexes recomputed: {blind_indexes_recompute()} row(s)")
