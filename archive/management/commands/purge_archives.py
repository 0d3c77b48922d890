import getpass

from django.core.management.base import BaseCommand, CommandError

from archive import events, lifecycle


class Command(BaseCommand):
    help = (
        "Delete the archive objects whose data is past their policy's total retention (object and manifest), "
        "mark them purged and leave a purge record (what, when, which policy, by whom), kept forever. Nothing is "
        "kept past its time: a payment whose events were purged no longer loads. Safe to run twice at once."
    )

    def handle(self, *args, **options):
        try:
            outcome = lifecycle.archives_purge(actor=f"purge_archives ({getpass.getuser()})")
        except events.ArchiveRefused as error:
            raise CommandError(f"nothing purged: {error}") from None
        for line in outcome.done:
            self.stdout.write(line)
        for line in outcome.failed:
            self.stderr.write(f"NOT PURGED: {line}")
        if outcome.failed:
            raise CommandError(f"{len(outcome.failed)} object(s) not purged")
        self.stdout.write(f"{len(outcome.done)} object(s) purged")
