import datetime as dt
import getpass

from django.core.management.base import BaseCommand, CommandError

from archive import events, snapshots


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
        failed = 0
        for each in years:
            try:
                result = snapshots.snapshots_year_archive(year=each, actor=actor)
            except (events.ArchiveRefused, events.ArchiveCorrupt) as error:
                failed += 1
                self.stderr.write(f"{each}: {error}")
                continue
            self.stdout.write(f"{each}: {result.outcome}, {result.rows} snapshots")
        if failed:
            raise CommandError(f"{failed} year(s) not archived")
