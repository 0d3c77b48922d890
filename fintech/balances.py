"""The flat balance document, the one shape an account's balances have outside the ledger's tables: what the balance
read model keeps (its table rows, the Redis hash `balance:{account_id}`) and what the ledger answers from its own
row when the read model does not know an account yet. Here, in the kernel, because both sides write it and the
ledger sits above the projections.

Amounts are minor units of `currency`; `updated_at` is ISO 8601 in UTC with a `Z`; `version` is the version of the
account's event stream the balances are at."""

from __future__ import annotations

import datetime as dt
import uuid

from fintech.timestamps import iso_z


def balance_change_fields(*, available: int, pending: int, updated_at: dt.datetime, version: int) -> dict:
    """The fields an entry changes (a BalanceChanged event carries them)."""
    return {
        "available": available,
        "pending": pending,
        "updated_at": iso_z(updated_at),
        "version": version,
    }


def balance_fields(
    *,
    account_id: uuid.UUID,
    owner_type: str,
    owner_id: str,
    kind: str,
    currency: str,
    available: int,
    pending: int,
    updated_at: dt.datetime,
    version: int,
) -> dict:
    """A whole balance document: the account's fixed fields and its balances."""
    return {
        "account_id": str(account_id),
        "owner_type": owner_type,
        "owner_id": owner_id,
        "kind": kind,
        "currency": currency,
        **balance_change_fields(available=available, pending=pending, updated_at=updated_at, version=version),
    }
