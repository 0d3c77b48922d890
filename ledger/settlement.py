"""Settlement: each merchant's captures due by a date move from pending to available, in one batch per date
with its totals per merchant and currency, computed by an aggregate query over the ledger."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from fintech.db import advisory_xact_lock, raw_cursor
from fintech.money import Money
from ledger import journal, lock_objects
from ledger.domain import AVAILABLE, PENDING, MerchantFundsSettled, Posting
from ledger.models import SettledPayment, SettlementBatch, SettlementLine

# Per merchant account and payment: what the payment still holds in pending (its capture's net less refunds
# booked before settlement), for every capture due by the date and not settled yet.
_DUE_SQL = """
SELECT p.account_id, a.owner_id, p.currency, e.payment_id, sum(p.amount)::bigint
FROM accounts_journalentry c
JOIN accounts_journalentry e ON e.payment_id = c.payment_id
JOIN accounts_posting p ON p.entry_id = e.id AND p.bucket = 'pending'
JOIN accounts_account a ON a.id = p.account_id AND a.kind = 'merchant_payable'
WHERE c.kind = 'capture' AND c.settlement_date <= %s
  AND NOT EXISTS (SELECT FROM accounts_settledpayment s WHERE s.payment_id = c.payment_id)
GROUP BY 1, 2, 3, 4
"""


@dataclass(frozen=True)
class SettlementResult:
    batch: SettlementBatch
    created: bool


def _due(settlement_date: dt.date) -> list[tuple]:
    with raw_cursor() as cursor:
        cursor.execute(_DUE_SQL, [settlement_date])
        return cursor.fetchall()


def settlement_run(*, settlement_date: dt.date, actor: str) -> SettlementResult:
    """Settle every capture due by `settlement_date`: per merchant account one entry moving what its payments
    hold in pending to available, a batch with a line per merchant and currency, and each payment marked
    settled (its later refunds debit available). A second run for a date returns that date's batch and
    changes nothing."""
    with transaction.atomic():
        # One run at a time; the batch's unique date makes a rerun a no-op.
        advisory_xact_lock("ledger:settlement")
        existing = SettlementBatch.objects.filter(settlement_date=settlement_date).first()
        if existing is not None:
            return SettlementResult(batch=existing, created=False)
        batch = SettlementBatch.objects.create(id=uuid.uuid4(), settlement_date=settlement_date, actor=actor)
        candidates = {row[0] for row in _due(settlement_date)}
        accounts = lock_objects.accounts_lock(candidates) if candidates else {}
        # Again under the locks: a refund booked meanwhile has changed what a payment holds.
        per_account: dict[uuid.UUID, list[tuple]] = defaultdict(list)
        for row in _due(settlement_date):
            if row[0] in accounts:
                per_account[row[0]].append(row)
        for account_id, rows in sorted(per_account.items()):
            _settle_account(batch, accounts, account_id, rows, actor)
    return SettlementResult(batch=batch, created=True)


def _settle_account(batch, accounts, account_id: uuid.UUID, rows: list[tuple], actor: str) -> None:
    merchant_id, currency = rows[0][1], rows[0][2]
    total = sum(row[4] for row in rows)
    entry_id = None
    if total:
        entry_id = uuid.uuid4()
        event = MerchantFundsSettled(
            occurred_at=timezone.now(),
            entry_id=entry_id,
            batch_id=batch.id,
            settlement_date=batch.settlement_date,
            merchant_account=account_id,
            amount=Money(total, currency),
            payments=len(rows),
        )
        journal.entry_post(
            accounts={account_id: accounts[account_id]},
            postings=[Posting(account_id, PENDING, -total), Posting(account_id, AVAILABLE, total)],
            kind="settlement",
            entry_event=event,
            entry_stream=entry_id,
            entry_id=entry_id,
            reference=f"settlement {batch.settlement_date}",
            actor=actor,
        )
    SettlementLine.objects.create(
        batch=batch, merchant_id=merchant_id, currency=currency, payments=len(rows), amount=total, entry_id=entry_id
    )
    SettledPayment.objects.bulk_create([SettledPayment(payment_id=row[3], batch=batch, amount=row[4]) for row in rows])
