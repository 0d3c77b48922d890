import duckdb
from django.core.management.base import BaseCommand, CommandError

from archive import analytics, events


class Command(BaseCommand):
    help = (
        "Run an SQL query (DuckDB) over the archive without restoring anything: the views `events` (archived "
        "payment events), `merchant_daily` (merchant daily summaries), `staff_audit` and `detokenization_audit`. "
        "Every object is checked "
        "against its manifest and decrypted in memory; the query can reach no file and no network."
    )

    def add_arguments(self, parser):
        parser.add_argument("sql")

    def handle(self, *args, sql, **options):
        try:
            columns, rows = analytics.archive_query(sql)
        except events.ArchiveCorrupt as error:
            raise CommandError(f"the archive does not match its manifests: {error}") from None
        except duckdb.Error as error:
            raise CommandError(f"the query failed: {error}") from None
        self.stdout.write("\t".join(columns))
        for row in rows:
            self.stdout.write("\t".join("" if value is None else str(value) for value in row))
        self.stdout.write(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
