from django.core.management.base import BaseCommand, CommandError

from fintech.money import Money
from ledger.reconciliation import reconciliation_run


class Command(BaseCommand):
    help = (
        "Prove per currency that every journal entry balances, every account equals its postings within its floor, "
        "the balance read models (table and Redis) equal the ledger, and customer funds equal the segregated trust "
        "account. Records the verdict (the console shows the last one). Exits non-zero on any difference."
    )

    def handle(self, *args, **options):
        report, _ = reconciliation_run(actor="reconcile command")
        for currency, line in sorted(report.currencies.items()):
            funds = Money(line.customer_funds, currency).to_decimal_string()
            verdict = "OK" if not line.differences else f"{len(line.differences)} DIFFERENCE(S)"
            self.stdout.write(
                f"{currency}: {line.entries} entries, {line.accounts} accounts, customer funds {funds} "
                f"against trust {Money(-line.trust, currency).to_decimal_string()}, total {line.total}: {verdict}"
            )
            for difference in line.differences:
                self.stdout.write(f"  {difference}")
        for difference in report.differences:
            self.stdout.write(difference)
        if not report.ok:
            raise CommandError("the ledger does not reconcile")
        self.stdout.write("the ledger reconciles")
