from django.core.management.base import BaseCommand, CommandError

from archive import events, lifecycle


class Command(BaseCommand):
    help = (
        "Move the archive objects whose data is older than their policy's warm window from warm/ to cold/: the "
        "object, then its row, then its manifest beside it. Safe to run twice at once, and after a run cut off."
    )

    def handle(self, *args, **options):
        try:
            outcome = lifecycle.archives_move()
        except events.ArchiveRefused as error:
            raise CommandError(f"nothing moved: {error}") from None
        for line in outcome.done:
            self.stdout.write(line)
        for line in outcome.failed:
            self.stderr.write(f"NOT MOVED: {line}")
        if outcome.failed:
            raise CommandError(f"{len(outcome.failed)} object(s) not moved")
        self.stdout.write(f"{len(outcome.done)} object(s) moved to cold")
