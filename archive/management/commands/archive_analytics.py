import datetime as dt
import getpass

from django.core.management.base import BaseCommand, CommandError

from archive import analytics, events, retention
from archive.management.commands.archive_events import month_arg

ANALYTICS = "analytics"  # the retention policy's kind


class Command(BaseCommand):
    help = (
        "Move whole months of merchant daily summaries older than the analytics policy's hot window (P6M as "
        "seeded) to sealed Parquet in the archive, verified, then removed from the read table."
    )

    def add_arguments(self, parser):
        parser.add_argument("--month", type=month_arg, help="YYYY-MM: this month only")

    def handle(self, *args, month, **options):
        boundary = retention.events_hot_boundary(dt.datetime.now(dt.UTC).date(), kind=ANALYTICS)
        if month is not None and month >= boundary:
            raise CommandError(f"{month:%Y-%m} is within the analytics window (from {boundary:%Y-%m} on)")
        months = [month] if month is not None else analytics.analytics_months_before(boundary)
        actor = f"archive_analytics ({getpass.getuser()})"
        failed = 0
        for first in months:
            try:
                result = analytics.analytics_month_archive(first=first, actor=actor)
            except (events.ArchiveRefused, events.ArchiveCorrupt) as error:
                failed += 1
                self.stderr.write(f"{first:%Y-%m}: {error}")
                continue
            self.stdout.write(f"{first:%Y-%m}: {result.outcome}, {result.rows} summaries")
        if failed:
            raise CommandError(f"{failed} month(s) not archived")
