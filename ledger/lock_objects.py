"""Row locks of the ledger. Every entry locks all the accounts it touches in one statement, ordered by id, so
two entries over the same accounts (two opposite transfers, say) queue instead of deadlocking."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from fintech.db import raw_cursor
from ledger.domain import AccountNotFound, AccountState


def accounts_peek(account_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, tuple[str, str]]:
    """(kind, currency) of accounts, without a lock: both are fixed when an account is opened. Unknown ids
    raise AccountNotFound."""
    ids = list(dict.fromkeys(account_ids))
    with raw_cursor() as cursor:
        cursor.execute("SELECT id, kind, currency FROM accounts_account WHERE id = ANY(%s)", [ids])
        found = {row[0]: (row[1], row[2]) for row in cursor.fetchall()}
    missing = [str(i) for i in ids if i not in found]
    if missing:
        raise AccountNotFound(f"no account {', '.join(missing)}")
    return found


def accounts_lock(account_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, AccountState]:
    """Lock the accounts (SELECT ... FOR UPDATE, ordered by id) for the rest of the caller's transaction."""
    ids = sorted(set(account_ids))
    with raw_cursor() as cursor:
        cursor.execute(
            "SELECT id, kind, currency, floor, available, pending, version FROM accounts_account "
            "WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
            [ids],
        )
        locked = {row[0]: AccountState(*row) for row in cursor.fetchall()}
    if len(locked) != len(ids):
        raise AccountNotFound(f"no account {', '.join(str(i) for i in ids if i not in locked)}")
    return locked
