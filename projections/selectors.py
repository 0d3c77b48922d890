"""Queries on the read models: Redis first, the read table on a miss. Never the event store."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import BooleanField, Count, Q, Sum
from django.db.models.expressions import RawSQL
from django.db.models.functions import TruncHour
from django.utils import timezone

from fintech import dbrouter, eventstore
from fintech.cursors import cursor_decode, cursor_encode
from fintech.db import raw_cursor
from fintech.timestamps import iso_z
from projections import cache, engine
from projections.balances import balance_fields
from projections.cache import balance_document
from projections.models import BalanceView, CacheMiss, PaymentView, ProjectionState
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


def _iso_z_sql(column: str) -> str:
    # iso_z's text in SQL: isoformat() leaves out a zero fraction of a second.
    utc = f"({column} AT TIME ZONE 'UTC')"
    whole, fraction = """'YYYY-MM-DD"T"HH24:MI:SS"Z"'""", """'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'"""
    return (
        f"CASE WHEN {column} IS NULL THEN NULL WHEN extract(microseconds FROM {column})::bigint %% 1000000 = 0 "
        f"THEN to_char({utc}, {whole}) ELSE to_char({utc}, {fraction}) END"
    )


def _money_sql(column: str) -> str:
    return f"json_build_object('amount', {column}, 'currency', currency)"


# payment_document, built by the server: the projection refreshes thousands of documents a second.
# ruff: noqa: S608 - the SQL below is built from this module's own column names, never from input
_DOCUMENTS = (
    "SELECT payment_id::text, version, json_build_object("
    f"'id', payment_id::text, 'status', status, 'amount', {_money_sql('amount')}, 'version', version, "
    "'merchant_id', merchant_id, 'description', description, "
    "'payment_method', json_build_object('token', token, 'brand', brand, 'last4', last4), "
    "'authorization_code', nullif(authorization_code, ''), 'failure_code', nullif(failure_code, ''), "
    f"'authorized_amount', {_money_sql('authorized_amount')}, 'captured_amount', {_money_sql('captured_amount')}, "
    f"'refunded_amount', {_money_sql('refunded_amount')}, "
    + ", ".join(
        f"'{name}', {_iso_z_sql(name)}"
        for name in ("created_at", "authorized_at", "captured_at", "refunded_at", "cancelled_at", "failed_at")
    )
    + ")::text FROM projections_payment WHERE payment_id = ANY(%s)"
)


def payment_documents_json(*, payment_ids: list[uuid.UUID]) -> dict[str, tuple[str, int]]:
    """Each payment's document (payment_document's, as JSON text) and version, from the read table."""
    with raw_cursor() as cursor:
        cursor.execute(_DOCUMENTS, [payment_ids])
        return {payment_id: (document, version) for payment_id, version, document in cursor.fetchall()}


def projection_checkpoint_at(name: str = PAYMENTS) -> str | None:
    alias = dbrouter.read_alias(PaymentView)
    # Read-model rows from the replica are as fresh as the replica's checkpoint, not the primary's one in Redis.
    cached = cache.checkpoint_cached(name) if alias == DEFAULT_DB_ALIAS else None
    if cached:
        return cached
    state = ProjectionState.objects.using(alias).filter(name=name).first()
    return iso_z(state.updated_at) if state else None


def _from_replica(row) -> bool:
    # A replica's row may be older than what the projection put in Redis since: it must not fill a missing key,
    # where it would stay until the payment's next event or the key's expiry.
    return row._state.db == dbrouter.REPLICA


def payment_get(*, payment_id: uuid.UUID, merchant_id: str) -> tuple[dict, str] | None:
    """(document, source) of a merchant's payment from the read model, "cache" or "table"; None if absent."""
    document, reachable = cache.payment_cached(payment_id)
    if document is not None:
        return (document, "cache") if document["merchant_id"] == merchant_id else None
    row = PaymentView.objects.filter(payment_id=payment_id, merchant_id=merchant_id).first()
    if row is None:
        return None
    document = payment_document(row)
    if reachable and not _from_replica(row):
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
    return cursor_encode(row.created_at, row.payment_id)


def payment_list(
    *, merchant_id: str, filters: PaymentFilters, cursor: str | None, limit: int
) -> tuple[list[dict], str | None]:
    """A page of the merchant's payments, newest first, and the cursor of the next page (None at the end)."""
    rows = payment_list_rows(merchant_id=merchant_id, filters=filters, cursor=cursor)
    alias = dbrouter.read_alias(PaymentView)
    with list_plan(alias):
        page = list(rows.using(alias)[: limit + 1])
    next_cursor = _cursor_encode(page[limit - 1]) if len(page) > limit else None
    return [payment_document(row) for row in page[:limit]], next_cursor


@contextlib.contextmanager
def list_plan(alias: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Where a page of a merchant's payments is read: without incremental sorts. With them, the planner took the
    all-merchants created_at index, sorted a few rows, and counted on meeting the merchant's rows early in it;
    for a merchant whose payments are all older than everyone else's (imported history, a quiet merchant) it
    walked every newer payment of every merchant: 80 ms at 300,000 payments, growing with the table, where the
    merchant's own index reads the page in 0.1 ms."""
    with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
        cursor.execute("SET LOCAL enable_incremental_sort = off")
        try:
            yield
        finally:
            cursor.execute("SET LOCAL enable_incremental_sort = on")


def payment_list_rows(*, merchant_id: str, filters: PaymentFilters, cursor: str | None):
    """The merchant's payments the filters and the cursor keep, newest first (a query, not yet run)."""
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
        # A row comparison, which the index seeks to; the equivalent OR of two conditions it can only filter by.
        rows = rows.filter(RawSQL("(created_at, payment_id) < (%s, %s)", [created, payment_id], BooleanField()))
    return rows.order_by("-created_at", "-payment_id")


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
    if reachable and not _from_replica(row):
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


@dataclass(frozen=True)
class ProjectionStatus:
    name: str
    replayable: bool
    cached: bool
    checkpoint: eventstore.Checkpoint
    events_applied: int
    last_event_at: dt.datetime | None
    lag_events: int
    lag_seconds: float
    cache_misses: int
    error: str
    error_event_id: uuid.UUID | None
    error_at: dt.datetime | None

    @property
    def error_line(self) -> str:
        """The last line of the stop error: the exception and its message."""
        return self.error.strip().splitlines()[-1] if self.error.strip() else ""


def projection_status_list() -> list[ProjectionStatus]:
    """Every projection by name: its checkpoint, how far behind the log it is (events of its types, and the age of
    the oldest), the cache entries it still has to repair, and the error it stopped at, if any."""
    states = {state.name: state for state in ProjectionState.objects.all()}
    misses = dict(CacheMiss.objects.values("projection").annotate(n=Count("id")).values_list("projection", "n"))
    now = timezone.now()
    statuses = []
    for name, projection in sorted(engine.projections().items()):
        state = states.get(name) or ProjectionState(name=name)
        checkpoint = eventstore.Checkpoint(state.checkpoint_transaction, state.checkpoint_position)
        behind, oldest = eventstore.backlog(after=checkpoint, event_types=projection.handlers)
        statuses.append(
            ProjectionStatus(
                name=name,
                replayable=projection.replayable,
                cached=projection.refresh is not None and projection.cached_ids is not None,
                checkpoint=checkpoint,
                events_applied=state.events_applied,
                last_event_at=state.last_event_at,
                lag_events=behind,
                lag_seconds=(now - oldest).total_seconds() if oldest else 0.0,
                cache_misses=misses.get(name, 0),
                error=state.error,
                error_event_id=state.error_event_id,
                error_at=state.error_at,
            )
        )
    return statuses


def projection_lags() -> list[tuple[str, float, str]]:
    """(name, seconds its oldest pending event has waited, error) of every projection: projection_status_list's
    lag without counting the backlog, for a probe that must stay cheap however far behind a projection is."""
    states = {state.name: state for state in ProjectionState.objects.all()}
    now = timezone.now()
    lags = []
    for name, projection in sorted(engine.projections().items()):
        state = states.get(name) or ProjectionState(name=name)
        checkpoint = eventstore.Checkpoint(state.checkpoint_transaction, state.checkpoint_position)
        oldest = eventstore.oldest_pending(after=checkpoint, event_types=projection.handlers)
        lags.append((name, (now - oldest).total_seconds() if oldest else 0.0, state.error))
    return lags


def payment_figures(*, since: dt.datetime) -> dict:
    """Payments created since a moment, from the read table: count and amount per currency and status, and per
    currency the decline rate (declined among those the acquirer answered: declined or ever authorized)."""
    rows = (
        PaymentView.objects.filter(created_at__gte=since)
        .values("currency", "status")
        .annotate(count=Count("payment_id"), amount=Sum("amount"))
        .order_by("currency", "status")
    )
    answered = (
        PaymentView.objects.filter(created_at__gte=since)
        .filter(Q(status="failed") | Q(authorized_at__isnull=False))
        .values("currency")
        .annotate(answered=Count("payment_id"), declined=Count("payment_id", filter=Q(status="failed")))
    )
    rates = {row["currency"]: (row["declined"], row["answered"]) for row in answered}
    declined = sum(d for d, _ in rates.values())
    answered_all = sum(a for _, a in rates.values())
    return {
        "rows": list(rows),
        "decline": rates,
        "declined": declined,
        "answered": answered_all,
    }


def payment_hourly_counts(*, since: dt.datetime, hours: int) -> list[tuple[dt.datetime, int]]:
    """Payments created per hour from the hour of `since`, `hours` hours in all, empty hours included."""
    start = since.replace(minute=0, second=0, microsecond=0)
    counts = dict(
        PaymentView.objects.filter(created_at__gte=start, created_at__lt=start + dt.timedelta(hours=hours))
        .annotate(hour=TruncHour("created_at", tzinfo=dt.UTC))
        .values("hour")
        .annotate(n=Count("payment_id"))
        .values_list("hour", "n")
    )
    return [(start + dt.timedelta(hours=i), counts.get(start + dt.timedelta(hours=i), 0)) for i in range(hours)]


@dataclass
class PaymentSearch:
    """What staff search payments by; every criterion given must match."""

    payment_id: uuid.UUID | None = None
    merchant_id: str = ""
    last4: str = ""
    authorization_code: str = ""
    amount: int | None = None  # minor units
    currency: str = ""

    @property
    def empty(self) -> bool:
        return not (
            self.payment_id or self.merchant_id or self.last4 or self.authorization_code or self.amount is not None
        )


def payment_search(search: PaymentSearch, *, limit: int) -> list[dict]:
    """Payments matching a staff search, newest first, at most `limit`: each as the API's document."""
    if search.empty:
        return []
    rows = PaymentView.objects.all()
    if search.payment_id:
        rows = rows.filter(payment_id=search.payment_id)
    if search.merchant_id:
        rows = rows.filter(merchant_id=search.merchant_id)
    if search.last4:
        rows = rows.filter(last4=search.last4)
    if search.authorization_code:
        rows = rows.filter(authorization_code=search.authorization_code)
    if search.amount is not None:
        rows = rows.filter(amount=search.amount)
    if search.currency:
        rows = rows.filter(currency=search.currency)
    return [payment_document(row) for row in rows.order_by("-created_at", "-payment_id")[:limit]]


def payment_view_get(*, payment_id: uuid.UUID) -> dict | None:
    """One payment's read-model document, whoever its merchant; None when the projection has not seen it."""
    row = PaymentView.objects.filter(payment_id=payment_id).first()
    return payment_document(row) if row else None


def projection_checkpoints() -> dict[str, eventstore.Checkpoint]:
    """Where each registered projection stands in the log (the start for one that never ran)."""
    states = {
        name: eventstore.Checkpoint(tx, pos)
        for name, tx, pos in ProjectionState.objects.values_list(
            "name", "checkpoint_transaction", "checkpoint_position"
        )
    }
    return {name: states.get(name, eventstore.Checkpoint()) for name in engine.projections()}
