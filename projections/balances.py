"""The balance read model: `projections_balance` and `balance:{account_id}` in Redis, built from the ledger's
AccountOpened and BalanceChanged events."""

from __future__ import annotations

import uuid

from fintech.eventstore import RecordedEvent
from projections import cache
from projections.engine import Projection, projection_register
from projections.models import BalanceView

BALANCES = "balances"
BALANCE_TABLE = "projections_balance"

# Table names come from the projection (live or replay tables), never from input.
# ruff: noqa: S608


def _opened(cursor, tables, recorded: RecordedEvent):
    event = recorded.event
    cursor.execute(
        f"INSERT INTO {tables[BALANCE_TABLE]} (account_id, owner_type, owner_id, kind, currency, available, pending, "
        "version, updated_at) VALUES (%s, %s, %s, %s, %s, 0, 0, %s, %s) ON CONFLICT (account_id) DO NOTHING",
        [
            event.account_id,
            event.owner_type,
            event.owner_id,
            event.kind,
            event.currency,
            recorded.version,
            recorded.occurred_at,
        ],
    )
    return [str(event.account_id)]


def _changed(cursor, tables, recorded: RecordedEvent):
    event = recorded.event
    # The version guard keeps an older event from ever winning over a newer one.
    cursor.execute(
        f"UPDATE {tables[BALANCE_TABLE]} SET available = %s, pending = %s, version = %s, updated_at = %s "
        "WHERE account_id = %s AND version < %s",
        [
            event.available.minor,
            event.pending.minor,
            recorded.version,
            recorded.occurred_at,
            event.account_id,
            recorded.version,
        ],
    )
    return [str(event.account_id)]


def balance_document(row) -> dict:
    """A balance as the API answers it and Redis keeps it."""
    return {
        "account_id": str(row.account_id),
        "owner_type": row.owner_type,
        "owner_id": row.owner_id,
        "kind": row.kind,
        "currency": row.currency,
        "available": {"amount": row.available, "currency": row.currency},
        "pending": {"amount": row.pending, "currency": row.currency},
        "updated_at": row.updated_at.isoformat().replace("+00:00", "Z"),
        "version": row.version,
    }


def balances_refresh(account_ids: set[str]) -> None:
    rows = BalanceView.objects.filter(account_id__in=[uuid.UUID(i) for i in account_ids])
    cache.documents_set({cache.balance_key(row.account_id): balance_document(row) for row in rows})


projection_register(
    Projection(
        name=BALANCES,
        tables=(BALANCE_TABLE,),
        handlers={"AccountOpened": _opened, "BalanceChanged": _changed},
        refresh=balances_refresh,
        cached_ids=lambda: BalanceView.objects.values_list("account_id", flat=True),
        after_batch=lambda: cache.checkpoint_note(BALANCES),
        pipelined=True,
    )
)
