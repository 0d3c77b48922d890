"""The ledger's one way to move money, used by every command that does: inside the caller's transaction and
under its account locks, check the floors, then write the journal entry, its postings, the new balances and
the events (one BalanceChanged per account, plus the entry's own), so that all of it commits or none does."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from fintech import eventstore, metrics
from fintech.db import raw_cursor
from fintech.events import DomainEvent
from fintech.eventstore import StreamAppend
from fintech.money import Money
from ledger.domain import (
    AVAILABLE,
    COMPANY,
    COMPANY_OWNER_ID,
    LEDGER_AGGREGATE,
    UNBOUNDED_KINDS,
    AccountKind,
    AccountOpened,
    AccountState,
    BalanceChanged,
    Posting,
    balances_after,
    entry_check_balanced,
)

# ruff: noqa: S608 - the SQL below joins placeholders only; every value is a parameter


@dataclass(frozen=True)
class Entry:
    """What entry_post wrote."""

    id: uuid.UUID
    created_at: object
    balances: dict[uuid.UUID, tuple[int, int]]


def entry_post(
    *,
    accounts: dict[uuid.UUID, AccountState],
    postings: list[Posting],
    kind: str,
    entry_event: DomainEvent,
    entry_stream: uuid.UUID,
    entry_id: uuid.UUID,
    entry_stream_version: int = 0,
    reference: str = "",
    actor: str = "",
    event_id: uuid.UUID | None = None,
    payment_id: uuid.UUID | None = None,
    settlement_date=None,
) -> Entry:
    """Write one balanced entry over accounts the caller has locked (accounts_lock). Raises InsufficientFunds
    or InvalidLedgerRequest before writing anything."""
    entry_check_balanced(postings, {account_id: account.currency for account_id, account in accounts.items()})
    after = balances_after(accounts, postings)
    now = timezone.now()
    with raw_cursor() as cursor:
        cursor.execute(
            "INSERT INTO accounts_journalentry (id, kind, reference, actor, event_id, payment_id, settlement_date, "
            "created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [entry_id, kind, reference, actor, event_id, payment_id, settlement_date, now],
        )
        _postings_insert(cursor, entry_id, postings, accounts, now)
        _balances_update(cursor, after, now)
    appends = _balance_changes(entry_id, accounts, after, now)
    appends.append(StreamAppend(entry_stream, [entry_event], entry_stream_version))
    # The streams cannot move under us: their accounts are locked, and the entry's stream is new (or its hold
    # is locked).
    eventstore.append_streams(appends, metadata={"actor": actor}, savepoint=False)
    metrics.ledger_entry_committed(kind)
    return Entry(id=entry_id, created_at=now, balances=after)


def _postings_insert(
    cursor, entry_id: uuid.UUID, postings: list[Posting], accounts: dict[uuid.UUID, AccountState], now
) -> None:
    """All the entry's postings in one statement."""
    cursor.execute(
        "INSERT INTO accounts_posting (entry_id, account_id, currency, bucket, amount, created_at) VALUES "
        + ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(postings)),
        [
            value
            for p in postings
            for value in (entry_id, p.account_id, accounts[p.account_id].currency, p.bucket, p.amount, now)
        ],
    )


def _balances_update(cursor, after: dict[uuid.UUID, tuple[int, int]], now) -> None:
    """Every touched account's new balances and version in one statement."""
    cursor.execute(
        "UPDATE accounts_account AS a SET available = v.available, pending = v.pending, "
        "version = a.version + 1, updated_at = %s FROM (VALUES "
        + ", ".join(["(%s::uuid, %s::bigint, %s::bigint)"] * len(after))
        + ") AS v (id, available, pending) WHERE a.id = v.id",
        [now, *[value for account_id, (a, p) in after.items() for value in (account_id, a, p)]],
    )


def _balance_changes(
    entry_id: uuid.UUID, accounts: dict[uuid.UUID, AccountState], after: dict[uuid.UUID, tuple[int, int]], now
) -> list[StreamAppend]:
    """A BalanceChanged on each touched account's stream, at its next version: the one the account row moved to."""
    return [
        StreamAppend(
            account_id,
            [
                BalanceChanged(
                    occurred_at=now,
                    account_id=account_id,
                    entry_id=entry_id,
                    available=Money(available, accounts[account_id].currency),
                    pending=Money(pending, accounts[account_id].currency),
                )
            ],
            accounts[account_id].version,
            LEDGER_AGGREGATE,
        )
        for account_id, (available, pending) in after.items()
    ]


def account_insert(
    *, owner_type: str, owner_id: str, currency: str, kind: str, floor: int | None, actor: str
) -> uuid.UUID | None:
    """Insert an account and its AccountOpened event; None (nothing written) when the owner already has an
    account of this kind in this currency."""
    account_id, now = uuid.uuid4(), timezone.now()
    with raw_cursor() as cursor:
        cursor.execute(
            "INSERT INTO accounts_account (id, owner_type, owner_id, currency, kind, floor, available, pending, "
            "version, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, 0, 0, 1, %s, %s) "
            "ON CONFLICT (owner_type, owner_id, kind, currency) WHERE owner_type IN ('company', 'merchant') "
            "DO NOTHING RETURNING id",
            [account_id, owner_type, owner_id, currency, kind, floor, now, now],
        )
        if cursor.fetchone() is None:
            return None
    opened = AccountOpened(
        occurred_at=now,
        account_id=account_id,
        owner_type=owner_type,
        owner_id=owner_id,
        currency=currency,
        kind=kind,
        floor=floor,
    )
    eventstore.append(account_id, [opened], 0, metadata={"actor": actor})
    return account_id


def owned_account_id(
    *, owner_type: str, owner_id: str, kind: AccountKind, currency: str, floor: int | None, actor: str
) -> uuid.UUID:
    """The id of the owner's one account of a kind in a currency (a merchant's or the company's), opened now if
    there is none."""
    account_insert(owner_type=owner_type, owner_id=owner_id, currency=currency, kind=kind, floor=floor, actor=actor)
    with raw_cursor() as cursor:
        cursor.execute(
            "SELECT id FROM accounts_account WHERE owner_type = %s AND owner_id = %s AND kind = %s AND currency = %s",
            [owner_type, owner_id, str(kind), currency],
        )
        return cursor.fetchone()[0]


_company_accounts: dict[tuple[str, str], uuid.UUID] = {}


def company_account_id(*, kind: AccountKind, currency: str) -> uuid.UUID:
    """The company's account of a kind in a currency (segregated trust, clearing, revenue, suspense), opened
    on first use. Remembered per process once committed: an account is never closed or re-keyed."""
    key = (str(kind), currency)
    if key in _company_accounts:
        return _company_accounts[key]
    with transaction.atomic():
        account_id = owned_account_id(
            owner_type=COMPANY,
            owner_id=COMPANY_OWNER_ID,
            kind=kind,
            currency=currency,
            floor=None if kind in UNBOUNDED_KINDS else 0,
            actor="system",
        )
        transaction.on_commit(lambda: _company_accounts.__setitem__(key, account_id))
    return account_id


def move(account_id: uuid.UUID, amount: int, *, into: uuid.UUID, bucket: str = AVAILABLE) -> list[Posting]:
    """The two postings of `amount` leaving one account's `bucket` for another's available balance."""
    return [Posting(account_id, bucket, -amount), Posting(into, AVAILABLE, amount)]
