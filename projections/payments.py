"""The payment read model and the merchant daily summary, built from payment events by one projection, so
both tables move with one checkpoint."""

from __future__ import annotations

from fintech.db import raw_cursor
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


# The set-based twin of the handlers above (Projection.apply_range): the same columns from the same fields, read
# from event_data by the server for a whole range of the log, in two statements that write each payment once: a
# payment initiated, authorized and captured in one range is one insert of its last state, not an insert and two
# updates, each of which rewrote all eight indexes of the table. The first statement inserts the payments
# initiated in the range, every later event of theirs in the range folded in; the second folds the range's
# events of the other payments into their rows, those past the row's version only (the handlers' version
# guard). Each adds the captures and refunds it applied to the merchants' days.
_LOGGED = (
    # Read by the log's index alone (MATERIALIZED keeps the event types out of it: with them, the planner also
    # scanned the month's whole type index, 28,000 entries for a range of 2,000).
    "logged AS MATERIALIZED (SELECT aggregate_id, version, event_type, event_version, event_data AS d, occurred_at "
    "FROM fintech_event WHERE (transaction_id, position) > (%(after_tx)s::text::xid8, %(after_pos)s) "
    "AND (transaction_id, position) <= (%(end_tx)s::text::xid8, %(end_pos)s))"
)
_AMOUNT = "(a.d->'{field}'->>'amount')::bigint"


def _last(value: str, event_type: str) -> str:
    """The value of the payment's last event of this type among those folded."""
    return f"(array_agg({value} ORDER BY a.version DESC) FILTER (WHERE a.event_type = '{event_type}'))[1]"


# One row per payment of the events in `a` (a CTE of logged's columns): what each kind of event sets.
_FOLD = (
    "SELECT a.aggregate_id, max(a.version) AS version, "
    "(array_agg(a.event_type ORDER BY a.version DESC))[1] AS last_type, "
    f"{_last(_AMOUNT.format(field='authorized_amount'), 'PaymentAuthorized')} AS authorized_amount, "
    f"{_last('a.d->>$$authorization_code$$', 'PaymentAuthorized')} AS authorization_code, "
    f"{_last('a.occurred_at', 'PaymentAuthorized')} AS authorized_at, "
    f"{_last('a.d->>$$response_code$$', 'PaymentFailed')} AS failure_code, "
    f"{_last('a.occurred_at', 'PaymentFailed')} AS failed_at, "
    f"{_last(_AMOUNT.format(field='captured_amount'), 'PaymentCaptured')} AS captured_amount, "
    f"{_last('a.occurred_at', 'PaymentCaptured')} AS captured_at, "
    "coalesce(sum((a.d->'refunded_amount'->>'amount')::bigint) FILTER (WHERE a.event_type = 'PaymentRefunded'), 0) "
    "AS refunded_sum, "
    f"{_last('a.occurred_at', 'PaymentRefunded')} AS refunded_at, "
    f"{_last('a.occurred_at', 'PaymentCancelled')} AS cancelled_at "
    "FROM {source} a GROUP BY a.aggregate_id"
)


def _status(refunded: str, captured: str, unchanged: str) -> str:
    """The status after the folded events: their last one's, a refund's by what is left to refund."""
    return (
        "CASE f.last_type WHEN 'PaymentAuthorized' THEN 'authorized' WHEN 'PaymentFailed' THEN 'failed' "
        "WHEN 'PaymentCaptured' THEN 'captured' WHEN 'PaymentCancelled' THEN 'cancelled' "
        f"WHEN 'PaymentRefunded' THEN CASE WHEN {refunded} + f.refunded_sum >= coalesce(f.captured_amount, {captured}) "
        f"THEN 'refunded' ELSE 'partially_refunded' END ELSE {unchanged} END"
    )


def _daily(source: str, join: str) -> str:
    """Add the captures and refunds among `source`'s events (of the payments `join` names) to their days."""
    return (
        "INSERT INTO {daily} AS d (merchant_id, day, currency, captured_count, captured_amount, refunded_count, "
        "refunded_amount) SELECT w.merchant_id, (a.occurred_at AT TIME ZONE 'UTC')::date, w.currency, "
        "count(*) FILTER (WHERE a.event_type = 'PaymentCaptured'), "
        f"coalesce(sum({_AMOUNT.format(field='captured_amount')}) FILTER (WHERE a.event_type = 'PaymentCaptured'), 0), "
        "count(*) FILTER (WHERE a.event_type = 'PaymentRefunded'), "
        f"coalesce(sum({_AMOUNT.format(field='refunded_amount')}) FILTER (WHERE a.event_type = 'PaymentRefunded'), 0) "
        f"FROM {source} a JOIN {join} w ON w.payment_id = a.aggregate_id "
        "WHERE a.event_type IN ('PaymentCaptured', 'PaymentRefunded') GROUP BY 1, 2, 3 "
        "ON CONFLICT (merchant_id, day, currency) DO UPDATE SET "
        "captured_count = d.captured_count + EXCLUDED.captured_count, "
        "captured_amount = d.captured_amount + EXCLUDED.captured_amount, "
        "refunded_count = d.refunded_count + EXCLUDED.refunded_count, "
        "refunded_amount = d.refunded_amount + EXCLUDED.refunded_amount"
    )


# PaymentInitiated v1 carried the payment method as a bare token (see its upcaster). A payment already in the
# table (DO NOTHING) is left to the second statement, whose version guard applies what it has not seen.
_INITIATED = (
    f"WITH {_LOGGED}, "
    "born AS (SELECT * FROM logged WHERE event_type = 'PaymentInitiated'), "
    "later AS (SELECT l.* FROM logged l JOIN born b ON b.aggregate_id = l.aggregate_id "
    "WHERE l.event_type <> 'PaymentInitiated'), "
    f"fold AS ({_FOLD.replace('{source}', 'later')}), "
    "inserted AS (INSERT INTO {payment} (payment_id, merchant_id, currency, amount, authorized_amount, "
    "captured_amount, refunded_amount, status, description, token, brand, last4, authorization_code, failure_code, "
    "created_at, authorized_at, captured_at, refunded_at, cancelled_at, failed_at, version) "
    "SELECT b.aggregate_id, b.d->>'merchant_id', b.d->'amount'->>'currency', (b.d->'amount'->>'amount')::bigint, "
    "coalesce(f.authorized_amount, 0), coalesce(f.captured_amount, 0), coalesce(f.refunded_sum, 0), "
    f"{_status('0', '0', chr(39) + 'initiated' + chr(39))}, coalesce(b.d->>'description', ''), "
    "CASE WHEN b.event_version = 1 THEN b.d->>'payment_method' "
    "ELSE coalesce(b.d->'payment_method'->>'token', '') END, "
    "CASE WHEN b.event_version = 1 THEN 'unknown' ELSE coalesce(b.d->'payment_method'->>'brand', '') END, "
    "CASE WHEN b.event_version = 1 THEN '' ELSE coalesce(b.d->'payment_method'->>'last4', '') END, "
    "coalesce(f.authorization_code, ''), coalesce(f.failure_code, ''), b.occurred_at, f.authorized_at, "
    "f.captured_at, f.refunded_at, f.cancelled_at, f.failed_at, coalesce(f.version, b.version) "
    "FROM born b LEFT JOIN fold f ON f.aggregate_id = b.aggregate_id "
    "ON CONFLICT (payment_id) DO NOTHING RETURNING payment_id, merchant_id, currency) " + _daily("later", "inserted")
)
_FOLDED = (
    f"WITH {_LOGGED}, "
    "applied AS (SELECT l.* FROM logged l WHERE l.event_type <> 'PaymentInitiated' "
    "AND l.version > (SELECT p.version FROM {payment} p WHERE p.payment_id = l.aggregate_id)), "
    f"fold AS ({_FOLD.replace('{source}', 'applied')}), "
    "changed AS (UPDATE {payment} p SET version = f.version, "
    "authorized_amount = coalesce(f.authorized_amount, p.authorized_amount), "
    "authorization_code = coalesce(f.authorization_code, p.authorization_code), "
    "authorized_at = coalesce(f.authorized_at, p.authorized_at), "
    "failure_code = coalesce(f.failure_code, p.failure_code), failed_at = coalesce(f.failed_at, p.failed_at), "
    "captured_amount = coalesce(f.captured_amount, p.captured_amount), "
    "captured_at = coalesce(f.captured_at, p.captured_at), refunded_amount = p.refunded_amount + f.refunded_sum, "
    "refunded_at = coalesce(f.refunded_at, p.refunded_at), cancelled_at = coalesce(f.cancelled_at, p.cancelled_at), "
    f"status = {_status('p.refunded_amount', 'p.captured_amount', 'p.status')} "
    "FROM fold f WHERE p.payment_id = f.aggregate_id RETURNING p.payment_id, p.merchant_id, p.currency) "
    + _daily("applied", "changed")
)


def _apply_range(*, tables, after, end, keys) -> None:
    bounds = {"after_tx": after.transaction_id, "after_pos": after.position}
    bounds |= {"end_tx": end.transaction_id, "end_pos": end.position}
    names = {"payment": tables[PAYMENT_TABLE], "daily": tables[DAILY_TABLE]}
    types = {key.event_type for key in keys}
    with raw_cursor() as cursor:
        # No JIT: the planner's estimate for a range grows with the log (it cannot know a range is 2,000 rows),
        # and past jit_above_cost each statement spent 450 ms compiling itself to run in 5: at a million events
        # catch-up was ten times slower per event than at a hundred thousand. Local: until the batch commits.
        cursor.execute("SELECT set_config('jit', 'off', true)")
        if "PaymentInitiated" in types:
            cursor.execute(_INITIATED.format(**names), bounds)
        if types - {"PaymentInitiated"}:
            cursor.execute(_FOLDED.format(**names), bounds)


_HANDLERS = {
    "PaymentInitiated": _initiated,
    "PaymentAuthorized": _authorized,
    "PaymentFailed": _failed,
    "PaymentCaptured": _captured,
    "PaymentRefunded": _refunded,
    "PaymentCancelled": _cancelled,
}


projection_register(
    Projection(
        name=PAYMENTS,
        tables=(PAYMENT_TABLE, DAILY_TABLE),
        handlers=_HANDLERS,
        refresh=cache.payments_refresh,
        cached_ids=lambda: PaymentView.objects.values_list("payment_id", flat=True),
        after_batch=lambda: cache.checkpoint_note(PAYMENTS),
        pipelined=True,
        apply_range=_apply_range,
        range_versions={
            "PaymentInitiated": frozenset({1, 2}),
            **{name: frozenset({1}) for name in _HANDLERS if name != "PaymentInitiated"},
        },
    )
)
