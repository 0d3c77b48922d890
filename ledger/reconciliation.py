"""Reconciliation: prove, per currency, that the ledger holds together and that its read models agree with it.

- every journal entry has two or more postings summing to zero;
- each account's available and pending balances equal the sums of its postings, and stay within its floor
  (pending: zero);
- the balance read table and Redis equal the accounts (after catching the balance projection up);
- customer funds equal the segregated trust account (mirrored: their sum is zero);
- the balances of a currency sum to zero.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import asdict, dataclass, field

import redis
from django.utils import timezone

from fintech.db import raw_cursor
from ledger.domain import AccountKind
from ledger.models import ReconciliationRun


@dataclass
class CurrencyReport:
    currency: str
    entries: int = 0
    accounts: int = 0
    customer_funds: int = 0
    trust: int = 0
    total: int = 0
    differences: list[str] = field(default_factory=list)


@dataclass
class Report:
    currencies: dict[str, CurrencyReport] = field(default_factory=dict)
    differences: list[str] = field(default_factory=list)  # not tied to one currency

    def of(self, currency: str) -> CurrencyReport:
        return self.currencies.setdefault(currency, CurrencyReport(currency))

    @property
    def ok(self) -> bool:
        return not self.differences and not any(c.differences for c in self.currencies.values())


def _query(sql: str, params=()) -> list[tuple]:
    with raw_cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _entries(report: Report) -> None:
    for currency, count in _query("SELECT currency, count(DISTINCT entry_id) FROM accounts_posting GROUP BY 1"):
        report.of(currency).entries = count
    for entry_id, currency, total, postings in _query(
        "SELECT e.id, p.currency, coalesce(sum(p.amount), 0)::bigint, count(p.id) FROM accounts_journalentry e "
        "LEFT JOIN accounts_posting p ON p.entry_id = e.id GROUP BY 1, 2 HAVING coalesce(sum(p.amount), 0) <> 0 "
        "OR count(p.id) < 2"
    ):
        target = report.of(currency).differences if currency else report.differences
        target.append(f"journal entry {entry_id}: {postings} posting(s) summing to {total}")


def _accounts(report: Report) -> dict[uuid.UUID, tuple[int, int, int]]:
    accounts = {}
    funds: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for account_id, kind, currency, floor, available, pending, version, posted_available, posted_pending in _query(
        "SELECT a.id, a.kind, a.currency, a.floor, a.available, a.pending, a.version, "
        "coalesce(sum(p.amount) FILTER (WHERE p.bucket = 'available'), 0)::bigint, "
        "coalesce(sum(p.amount) FILTER (WHERE p.bucket = 'pending'), 0)::bigint "
        "FROM accounts_account a LEFT JOIN accounts_posting p ON p.account_id = a.id GROUP BY a.id"
    ):
        line = report.of(currency)
        line.accounts += 1
        line.total += available + pending
        funds[currency][kind] += available + pending
        accounts[account_id] = (available, pending, version)
        if (available, pending) != (posted_available, posted_pending):
            line.differences.append(
                f"account {account_id}: balances {available}/{pending}, postings {posted_available}/{posted_pending}"
            )
        if (floor is not None and available < floor) or pending < 0:
            line.differences.append(f"account {account_id}: balances {available}/{pending} cross its floor {floor}")
    for currency, line in report.currencies.items():
        line.customer_funds = funds[currency][AccountKind.CUSTOMER_BALANCE]
        line.trust = funds[currency][AccountKind.SEGREGATED_TRUST]
        if line.customer_funds + line.trust:
            line.differences.append(
                f"customer funds {line.customer_funds} are not mirrored by the segregated trust account ({line.trust})"
            )
        if line.total:
            line.differences.append(f"the balances sum to {line.total}, not 0")
    return accounts


def _read_models(report: Report, accounts: dict[uuid.UUID, tuple[int, int, int]], currency_of) -> None:
    from projections import selectors
    from projections.balances import BALANCES
    from projections.engine import projection_run

    def differing() -> tuple[dict, dict]:
        projection_run(name=BALANCES, wait=True)
        table = selectors.balance_rows()
        table_off = {i: table.get(i) for i, row in accounts.items() if table.get(i) != row}
        try:
            cached = selectors.balances_cached(list(accounts))
        except redis.RedisError as error:
            report.differences.append(f"Redis cannot be read: {error}")
            cached = {}
        cache_off = {i: cached[i] for i, row in accounts.items() if i in cached and cached[i] != row}
        return table_off, cache_off

    table_off, cache_off = differing()
    if table_off or cache_off:
        # Entries written while we compared: read those accounts again and compare once more.
        fresh = _query(
            "SELECT id, available, pending, version FROM accounts_account WHERE id = ANY(%s)",
            [list({*table_off, *cache_off})],
        )
        accounts.update({row[0]: tuple(row[1:]) for row in fresh})
        table_off, cache_off = differing()
    for account_id, row in table_off.items():
        report.of(currency_of[account_id]).differences.append(
            f"balance read table for {account_id}: {row}, ledger {accounts[account_id]} (available, pending, version)"
        )
    for account_id, row in cache_off.items():
        report.of(currency_of[account_id]).differences.append(
            f"Redis balance:{account_id}: {row}, ledger {accounts[account_id]} (rebuild_cache balances refills it)"
        )


def ledger_check() -> Report:
    """The ledger's own rules, without its read models: every entry balances, every account equals its postings
    within its floor, customer funds equal the trust account, the balances of a currency sum to zero."""
    report = Report()
    _entries(report)
    _accounts(report)
    return report


def ledger_reconcile() -> Report:
    """Check the whole ledger and its read models; the report lists every difference found."""
    report = Report()
    _entries(report)
    accounts = _accounts(report)
    currency_of = dict(_query("SELECT id, currency FROM accounts_account"))
    _read_models(report, accounts, currency_of)
    return report


def reconciliation_run(*, actor: str) -> tuple[Report, ReconciliationRun]:
    """Reconcile (ledger_reconcile) and record the verdict, whoever asked: the command, the console."""
    report = ledger_reconcile()
    currencies = {currency: asdict(line) for currency, line in sorted(report.currencies.items())}
    run = ReconciliationRun.objects.create(
        ran_at=timezone.now(),
        actor=actor[:200],
        ok=report.ok,
        currencies=currencies,
        differences=report.differences,
        difference_count=len(report.differences) + sum(len(c.differences) for c in report.currencies.values()),
    )
    return report, run
