import datetime as dt
import getpass
from functools import partial

from django.core.management.base import BaseCommand, CommandError

from archive import analytics, retention
from archive.management.commands._each import archive_each
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
        archive_each(
            self,
            ((f"{m:%Y-%m}", partial(analytics.analytics_month_archive, first=m, actor=actor)) for m in months),
            noun="summaries",
            failure="{failed} month(s) not archived",
        )
