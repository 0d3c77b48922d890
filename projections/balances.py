"""The balance read model: `projections_balance` and `balance:{account_id}` in Redis, built from the ledger's
AccountOpened and BalanceChanged events."""

from __future__ import annotations

import logging
import uuid

import redis
from django.conf import settings

from fintech import balances
from fintech.eventstore import RecordedEvent
from projections import cache
from projections.engine import Projection, projection_register
from projections.models import BalanceView

logger = logging.getLogger(__name__)

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


def balance_fields(row: BalanceView) -> dict:
    """A balance as Redis keeps it: flat fields (see cache.balance_document for the API's shape)."""
    return balances.balance_fields(
        account_id=row.account_id,
        owner_type=row.owner_type,
        owner_id=row.owner_id,
        kind=row.kind,
        currency=row.currency,
        available=row.available,
        pending=row.pending,
        updated_at=row.updated_at,
        version=row.version,
    )


def balances_refresh(account_ids: set[str]) -> None:
    rows = BalanceView.objects.filter(account_id__in=[uuid.UUID(i) for i in account_ids])
    cache.balances_set({cache.balance_key(row.account_id): balance_fields(row) for row in rows})


def balances_write_through(events: list[RecordedEvent]) -> None:
    """Event store subscriber: right after a ledger commit, put the new balances in Redis (forward only), so
    that a read following a write sees it without waiting for the projection, which writes the same again."""
    if not settings.BALANCES_WRITE_THROUGH:
        return
    full, partial = {}, {}
    for recorded in events:
        event = recorded.event
        if recorded.event_type == "AccountOpened":
            full[cache.balance_key(event.account_id)] = balances.balance_fields(
                account_id=event.account_id,
                owner_type=event.owner_type,
                owner_id=event.owner_id,
                kind=event.kind,
                currency=event.currency,
                available=0,
                pending=0,
                updated_at=recorded.occurred_at,
                version=recorded.version,
            )
        elif recorded.event_type == "BalanceChanged":
            partial[cache.balance_key(event.account_id)] = balances.balance_change_fields(
                available=event.available.minor,
                pending=event.pending.minor,
                updated_at=recorded.occurred_at,
                version=recorded.version,
            )
    if not (full or partial):
        return
    try:
        cache.balances_set(full, partial)
    except redis.RedisError:
        logger.warning("Redis unavailable: balances left to the projection", exc_info=True)


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
