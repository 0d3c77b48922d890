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


def _with_daily(cursor, tables, recorded, assignments: str, params: list, kind: str, minor: int):
    """Update the payment row and, only when that update applied (the version guard passed), add the amount
    to the merchant's day: one statement, so it needs no answer before the next event is sent."""
    cursor.execute(
        f"WITH changed AS (UPDATE {tables[PAYMENT_TABLE]} SET {assignments}, version = %s "
        "WHERE payment_id = %s AND version < %s RETURNING merchant_id, currency) "
        f"INSERT INTO {tables[DAILY_TABLE]} AS d (merchant_id, day, currency, captured_count, captured_amount, "
        "refunded_count, refunded_amount) SELECT merchant_id, (%s AT TIME ZONE 'UTC')::date, currency, "
        "%s, %s, %s, %s FROM changed "
        "ON CONFLICT (merchant_id, day, currency) DO UPDATE SET "
        "captured_count = d.captured_count + EXCLUDED.captured_count, "
        "captured_amount = d.captured_amount + EXCLUDED.captured_amount, "
        "refunded_count = d.refunded_count + EXCLUDED.refunded_count, "
        "refunded_amount = d.refunded_amount + EXCLUDED.refunded_amount",
        [
            *params,
            recorded.version,
            recorded.stream_id,
            recorded.version,
            recorded.occurred_at,
            int(kind == "captured"),
            minor if kind == "captured" else 0,
            int(kind == "refunded"),
            minor if kind == "refunded" else 0,
        ],
    )
    return [str(recorded.stream_id)]


def _captured(cursor, tables, recorded):
    minor = recorded.event.captured_amount.minor
    return _with_daily(
        cursor,
        tables,
        recorded,
        "status = 'captured', captured_amount = %s, captured_at = %s",
        [minor, recorded.occurred_at],
        "captured",
        minor,
    )


def _refunded(cursor, tables, recorded):
    minor = recorded.event.refunded_amount.minor
    return _with_daily(
        cursor,
        tables,
        recorded,
        "refunded_amount = refunded_amount + %s, refunded_at = %s, "
        "status = CASE WHEN refunded_amount + %s >= captured_amount THEN 'refunded' ELSE 'partially_refunded' END",
        [minor, recorded.occurred_at, minor],
        "refunded",
        minor,
    )


def _cancelled(cursor, tables, recorded):
    return _update(cursor, tables, recorded, "status = 'cancelled', cancelled_at = %s", [recorded.occurred_at])


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
        pipelined=True,
    )
)
