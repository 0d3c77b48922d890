"""The payment read model and the merchant daily summary, built from payment events by one projection, so
both tables move with one checkpoint."""

from __future__ import annotations

from fintech.eventstore import RecordedEvent
from projections import cache
from projections.engine import Projection, projection_register
from projections.models import PaymentView

PAYMENTS = "payments"
PAYMENT_TABLE = "projections_payment"
DAILY_TABLE = "projections_merchant_daily"

# Table names come from the projection (live or replay tables), never from input.
# ruff: noqa: S608


def _initiated(cursor, tables, recorded: RecordedEvent):
    event = recorded.event
    method = event.payment_method
    cursor.execute(
        f"INSERT INTO {tables[PAYMENT_TABLE]} (payment_id, merchant_id, currency, amount, authorized_amount, "
        "captured_amount, refunded_amount, status, description, token, brand, last4, authorization_code, "
        "failure_code, created_at, version) VALUES (%s, %s, %s, %s, 0, 0, 0, 'initiated', %s, %s, %s, %s, '', '', "
        "%s, %s) ON CONFLICT (payment_id) DO NOTHING",
        [
            recorded.stream_id,
            event.merchant_id,
            event.amount.currency,
            event.amount.minor,
            event.description,
            method.get("token", ""),
            method.get("brand", ""),
            method.get("last4", ""),
            recorded.occurred_at,
            recorded.version,
        ],
    )
    return [str(recorded.stream_id)]


def _update(cursor, tables, recorded: RecordedEvent, assignments: str, params: list):
    # The version guard keeps an event from being applied twice to a row, whatever happens to checkpoints.
    cursor.execute(
        f"UPDATE {tables[PAYMENT_TABLE]} SET {assignments}, version = %s WHERE payment_id = %s AND version < %s",
        [*params, recorded.version, recorded.stream_id, recorded.version],
    )
    return [str(recorded.stream_id)]


def _authorized(cursor, tables, recorded):
    event = recorded.event
    return _update(
        cursor,
        tables,
        recorded,
        "status = 'authorized', authorized_amount = %s, authorization_code = %s, authorized_at = %s",
        [event.authorized_amount.minor, event.authorization_code, recorded.occurred_at],
    )


def _failed(cursor, tables, recorded):
    return _update(
        cursor,
        tables,
        recorded,
        "status = 'failed', failure_code = %s, failed_at = %s",
        [recorded.event.response_code, recorded.occurred_at],
    )


def _captured(cursor, tables, recorded):
    minor = recorded.event.captured_amount.minor
    touched = _update(
        cursor,
        tables,
        recorded,
        "status = 'captured', captured_amount = %s, captured_at = %s",
        [minor, recorded.occurred_at],
    )
    if cursor.rowcount:
        _daily(cursor, tables, recorded, "captured", minor)
    return touched


def _refunded(cursor, tables, recorded):
    minor = recorded.event.refunded_amount.minor
    touched = _update(
        cursor,
        tables,
        recorded,
        "refunded_amount = refunded_amount + %s, refunded_at = %s, "
        "status = CASE WHEN refunded_amount + %s >= captured_amount THEN 'refunded' ELSE 'partially_refunded' END",
        [minor, recorded.occurred_at, minor],
    )
    if cursor.rowcount:
        _daily(cursor, tables, recorded, "refunded", minor)
    return touched


def _cancelled(cursor, tables, recorded):
    return _update(cursor, tables, recorded, "status = 'cancelled', cancelled_at = %s", [recorded.occurred_at])


def _daily(cursor, tables, recorded, kind: str, minor: int) -> None:
    cursor.execute(
        f"INSERT INTO {tables[DAILY_TABLE]} AS d (merchant_id, day, currency, captured_count, captured_amount, "
        "refunded_count, refunded_amount) SELECT p.merchant_id, (%s AT TIME ZONE 'UTC')::date, p.currency, "
        f"%s, %s, %s, %s FROM {tables[PAYMENT_TABLE]} p WHERE p.payment_id = %s "
        "ON CONFLICT (merchant_id, day, currency) DO UPDATE SET "
        "captured_count = d.captured_count + EXCLUDED.captured_count, "
        "captured_amount = d.captured_amount + EXCLUDED.captured_amount, "
        "refunded_count = d.refunded_count + EXCLUDED.refunded_count, "
        "refunded_amount = d.refunded_amount + EXCLUDED.refunded_amount",
        [
            recorded.occurred_at,
            int(kind == "captured"),
            minor if kind == "captured" else 0,
            int(kind == "refunded"),
            minor if kind == "refunded" else 0,
            recorded.stream_id,
        ],
    )


projection_register(
    Projection(
        name=PAYMENTS,
        tables=(PAYMENT_TABLE, DAILY_TABLE),
        handlers={
            "PaymentInitiated": _initiated,
            "PaymentAuthorized": _authorized,
            "PaymentFailed": _failed,
            "PaymentCaptured": _captured,
            "PaymentRefunded": _refunded,
            "PaymentCancelled": _cancelled,
        },
        refresh=cache.payments_refresh,
        cached_ids=lambda: PaymentView.objects.values_list("payment_id", flat=True),
        after_batch=lambda: cache.checkpoint_note(PAYMENTS),
    )
)
