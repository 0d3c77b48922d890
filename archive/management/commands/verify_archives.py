from django.core.management.base import BaseCommand, CommandError

from archive import events
from archive.models import ArchiveObject


class Command(BaseCommand):
    help = (
        "Re-check every archive object against its manifest: present in the store, the stored bytes and the "
        "plaintext have the SHA-256 the manifest records, it decrypts with the vault's keys, row count and "
        "schema. Exits non-zero, naming each, on any missing or altered object."
    )

    def handle(self, *args, **options):
        checked = ArchiveObject.objects.filter(state__in=[ArchiveObject.WRITTEN, ArchiveObject.ARCHIVED]).count()
        problems = events.archives_verify()
        for problem in problems:
            self.stderr.write(f"ALTERED OR MISSING: {problem}")
        if problems:
            raise CommandError(f"{len(problems)} of {checked} archive object(s) do not match their manifests")
        self.stdout.write(f"{checked} archive object(s) match their manifests")
