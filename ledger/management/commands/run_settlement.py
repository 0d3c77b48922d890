import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from fintech.money import Money
from ledger.settlement import settlement_run


class Command(BaseCommand):
    help = (
        "Move each merchant's captures due by --date from pending to available, in one settlement batch per date "
        "(a second run for the same date changes nothing)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--date", required=True, help="settlement date, YYYY-MM-DD")

    def handle(self, *args, date, **options):
        try:
            settlement_date = dt.date.fromisoformat(date)
        except ValueError:
            raise CommandError(f"--date must be YYYY-MM-DD, got {date!r}") from None
        result = settlement_run(settlement_date=settlement_date, actor="command:run_settlement")
        batch = result.batch
        verb = "settled" if result.created else "already settled (nothing changed)"
        self.stdout.write(f"{settlement_date}: {verb}, batch {batch.id}")
        for line in batch.lines.order_by("merchant_id", "currency"):
            amount = Money(line.amount, line.currency).to_decimal_string()
            self.stdout.write(f"  {line.merchant_id:<32} {line.currency} {line.payments:>6} payments {amount:>18}")
