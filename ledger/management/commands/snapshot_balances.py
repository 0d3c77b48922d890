import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from ledger.snapshots import balance_snapshots_take


class Command(BaseCommand):
    help = (
        "Snapshot every ledger account's balances as they stood at the end of a day (UTC; default yesterday), "
        "exactly, whenever it runs. A day already taken changes nothing. Celery beat runs it daily."
    )

    def add_arguments(self, parser):
        parser.add_argument("--day", type=dt.date.fromisoformat, help="YYYY-MM-DD (default: yesterday, UTC)")

    def handle(self, *args, day, **options):
        day = day or dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
        try:
            written = balance_snapshots_take(day=day)
        except ValueError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"{day}: {written} account snapshot(s) written")
