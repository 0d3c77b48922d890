import datetime as dt
import getpass
from functools import partial

from django.core.management.base import BaseCommand, CommandError

from archive import events, retention
from archive.management.commands._each import archive_each


def month_arg(text: str) -> dt.date:
    try:
        return dt.datetime.strptime(text, "%Y-%m").replace(tzinfo=dt.UTC).date()
    except ValueError:
        raise CommandError(f"a month is YYYY-MM, not {text!r}") from None


def hot_boundary(today: dt.date) -> dt.date:
    """The first month that stays hot, by the payment_events retention policy's hot window (P3M: the current
    month and the two before it)."""
    try:
        return retention.events_hot_boundary(today)
    except retention.PolicyError as error:
        raise CommandError(str(error)) from None


class Command(BaseCommand):
    help = (
        "Archive every whole month of events before --before (never one of the hot months): export to Parquet, "
        "seal with the vault's keys, write to the archive store, read back and verify row by row, then detach "
        "and drop the partition in one transaction. An interrupted run resumes where it stopped."
    )

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group()
        which.add_argument("--before", type=month_arg, help="YYYY-MM: archive the months before this one")
        which.add_argument("--month", type=month_arg, help="YYYY-MM: archive this month only")

    def handle(self, *args, before, month, **options):
        boundary = hot_boundary(dt.datetime.now(dt.UTC).date())
        if month is not None:
            if month >= boundary:
                raise CommandError(f"{month:%Y-%m} is one of the hot months (from {boundary:%Y-%m} on)")
            months = [month]
        else:
            months = events.months_before(min(before or boundary, boundary))
        actor = f"archive_events ({getpass.getuser()})"
        archive_each(
            self,
            ((f"{first:%Y-%m}", partial(events.events_month_archive, first=first, actor=actor)) for first in months),
            noun="events",
            failure="{failed} month(s) not archived; their partitions are untouched",
        )
