import datetime as dt
import getpass
from functools import partial

from django.core.management.base import BaseCommand

from archive import snapshots
from archive.management.commands._each import archive_each


class Command(BaseCommand):
    help = (
        "Archive whole years of daily balance snapshots once they ended before the balance_snapshots "
        "policy's database window (P1Y): sealed into the archive, verified, then removed from the table. Kept for ever."
    )

    def add_arguments(self, parser):
        parser.add_argument("--year", type=int, help="this year only")

    def handle(self, *args, year, **options):
        last = snapshots.last_archivable_year(dt.datetime.now(dt.UTC))
        years = [year] if year is not None else ([] if last is None else snapshots.snapshot_years_before(last))
        actor = f"archive_snapshots ({getpass.getuser()})"
        archive_each(
            self,
            ((str(each), partial(snapshots.snapshots_year_archive, year=each, actor=actor)) for each in years),
            noun="snapshots",
            failure="{failed} year(s) not archived",
        )
