import getpass

from django.core.management.base import BaseCommand, CommandError

from archive import events
from archive.management.commands.archive_events import month_arg


class Command(BaseCommand):
    help = (
        "Re-attach an archived month of events: the object is verified against its manifest first (a missing or "
        "altered one is refused), then its rows go into a new partition attached in one transaction."
    )

    def add_arguments(self, parser):
        parser.add_argument("--month", type=month_arg, required=True, help="YYYY-MM")

    def handle(self, *args, month, **options):
        try:
            result = events.events_month_restore(first=month, actor=f"restore_events ({getpass.getuser()})")
        except (events.ArchiveRefused, events.ArchiveCorrupt) as error:
            raise CommandError(f"{month:%Y-%m} not restored: {error}") from None
        self.stdout.write(f"{month:%Y-%m}: restored {result.rows} events")
