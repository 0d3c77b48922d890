"""Queries on the read models: Redis first, the read table on a miss. Never the event store."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from dataclasses import dataclass

from django.db.models import Q

from fintech.timestamps import iso_z
from projections import cache
from projections.balances import balance_fields
from projections.cache import balance_document
from projections.models import BalanceView, PaymentView, ProjectionState
from projections.payments import PAYMENTS


def _money(minor: int, currency: str) -> dict:
    return {"amount": minor, "currency": currency}


def payment_document(row: PaymentView) -> dict:
    """A payment as GET answers it: the command responses' fields plus amounts and timestamps."""
    return {
        "id": str(row.payment_id),
        "status": row.status,
        "amount": _money(row.amount, row.currency),
        "version": row.version,
        "merchant_id": row.merchant_id,
        "description": row.description,
        "payment_method": {"token": row.token, "brand": row.brand, "last4": row.last4},
        "authorization_code": row.authorization_code or None,
        "failure_code": row.failure_code or None,
        "authorized_amount": _money(row.authorized_amount, row.currency),
        "captured_amount": _money(row.captured_amount, row.currency),
        "refunded_amount": _money(row.refunded_amount, row.currency),
        "created_at": iso_z(row.created_at),
        "authorized_at": iso_z(row.authorized_at),
        "captured_at": iso_z(row.captured_at),
        "refunded_at": iso_z(row.refunded_at),
        "cancelled_at": iso_z(row.cancelled_at),
        "failed_at": iso_z(row.failed_at),
    }


def payment_rows_as_json(*, payment_ids: list[uuid.UUID]) -> dict[str, dict]:
    return {
        str(row.payment_id): payment_document(row) for row in PaymentView.objects.filter(payment_id__in=payment_ids)
    }


def projection_checkpoint_at(name: str = PAYMENTS) -> str | None:
    cached = cache.checkpoint_cached(name)
    if cached:
        return cached
    state = ProjectionState.objects.filter(name=name).first()
    return iso_z(state.updated_at) if state else None


def payment_get(*, payment_id: uuid.UUID, merchant_id: str) -> tuple[dict, str] | None:
    """(document, source) of a merchant's payment from the read model, "cache" or "table"; None if absent."""
    document, reachable = cache.payment_cached(payment_id)
    if document is not None:
        return (document, "cache") if document["merchant_id"] == merchant_id else None
    row = PaymentView.objects.filter(payment_id=payment_id, merchant_id=merchant_id).first()
    if row is None:
        return None
    document = payment_document(row)
    if reachable:
        cache.payment_fill(document)
    return document, "table"


@dataclass(frozen=True)
class PaymentFilters:
    status: str | None = None
    created_from: dt.datetime | None = None
    created_to: dt.datetime | None = None
    amount_min: int | None = None
    amount_max: int | None = None
    currency: str | None = None


def _cursor_encode(row: PaymentView) -> str:
    return base64.urlsafe_b64encode(json.dumps([row.created_at.isoformat(), str(row.payment_id)]).encode()).decode()


def cursor_decode(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    """Raises ValueError for a cursor this API did not hand out."""
    created, payment_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    return dt.datetime.fromisoformat(created), uuid.UUID(payment_id)


def payment_list(
    *, merchant_id: str, filters: PaymentFilters, cursor: str | None, limit: int
) -> tuple[list[dict], str | None]:
    """A page of the merchant's payments, newest first, and the cursor of the next page (None at the end)."""
    rows = PaymentView.objects.filter(merchant_id=merchant_id)
    if filters.status:
        rows = rows.filter(status=filters.status)
    if filters.created_from:
        rows = rows.filter(created_at__gte=filters.created_from)
    if filters.created_to:
        rows = rows.filter(created_at__lt=filters.created_to)
    if filters.amount_min is not None:
        rows = rows.filter(amount__gte=filters.amount_min)
    if filters.amount_max is not None:
        rows = rows.filter(amount__lte=filters.amount_max)
    if filters.currency:
        rows = rows.filter(currency=filters.currency)
    if cursor:
        created, payment_id = cursor_decode(cursor)
        rows = rows.filter(Q(created_at__lt=created) | Q(created_at=created, payment_id__lt=payment_id))
    page = list(rows.order_by("-created_at", "-payment_id")[: limit + 1])
    next_cursor = _cursor_encode(page[limit - 1]) if len(page) > limit else None
    return [payment_document(row) for row in page[:limit]], next_cursor


def balance_get(*, account_id: uuid.UUID) -> tuple[dict, str] | None:
    """An account's balance from Redis, or from the read table when Redis misses or is down: (document,
    "cache" | "table"); None when the read model does not know the account (yet)."""
    cached, reachable = cache.balance_cached(account_id)
    if cached is not None:
        return cached, "cache"
    row = BalanceView.objects.filter(account_id=account_id).first()
    if row is None:
        return None
    fields = balance_fields(row)
    if reachable:
        cache.balance_fill(fields)
    return balance_document(fields), "table"


def balance_rows() -> dict[uuid.UUID, tuple[int, int, int]]:
    """Every row of the balance read table: account id → (available, pending, version)."""
    return {
        account_id: (available, pending, version)
        for account_id, available, pending, version in BalanceView.objects.values_list(
            "account_id", "available", "pending", "version"
        )
    }


def balances_cached(account_ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[int, int, int] | None]:
    """What Redis holds for these accounts: (available, pending, version), None where it holds nothing whole.
    Raises redis.RedisError when Redis cannot answer."""
    found: dict[uuid.UUID, tuple[int, int, int] | None] = {}
    for start in range(0, len(account_ids), 1000):
        chunk = account_ids[start : start + 1000]
        pipe = cache.client().pipeline(transaction=False)
        for account_id in chunk:
            pipe.hgetall(cache.balance_key(account_id))
        for account_id, fields in zip(chunk, pipe.execute(), strict=True):
            document = cache.balance_from_hash(fields) if fields else None
            found[account_id] = (
                (document["available"]["amount"], document["pending"]["amount"], document["version"])
                if document
                else None
            )
    return found
