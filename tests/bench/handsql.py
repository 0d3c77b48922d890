"""The baseline: the database work of initiate → authorize → capture, written by hand with psycopg 3.

No Django here. Each command does what the service layer's event store does: initiate inserts the first event;
authorize and capture read the stream's events, then insert one event numbered from the version read,
returning (position, transaction id, created_at). Each write is one INSERT statement, a transaction on its
own; the insert trigger on fintech_event creates the stream row (version 1) or advances it by compare-and-set,
raising SQLSTATE FE409 on a stale version, so the read needs no transaction around it. Payloads are built as
the aggregate builds them (json.dumps of the same dicts, keys sorted), so the rows are the ones the service
writes and `payments.services.payment_load` reads them back.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import secrets
import uuid

import psycopg

AGGREGATE_TYPE = "payment"
AMOUNT = {"amount": 5000, "currency": "JPY"}
ACTOR = "bench"
METADATA = json.dumps({"actor": ACTOR}, sort_keys=True)

INSERT_EVENT = (
    "INSERT INTO fintech_event (event_id, aggregate_id, aggregate_type, event_type, event_version, event_data, "
    "metadata, version, occurred_at) VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s, %s) "
    "RETURNING position, transaction_id::text::bigint, created_at"
)
SELECT_STREAM = (
    "SELECT event_id, aggregate_id, aggregate_type, event_type, event_version, event_data, metadata, version, "
    "occurred_at, created_at, transaction_id::text::bigint, position FROM fintech_event "
    "WHERE aggregate_id = %s AND version > %s ORDER BY version"
)
# Column indexes in SELECT_STREAM rows.
EVENT_TYPE, EVENT_DATA, VERSION = 3, 5, 7


class BenchError(Exception):
    """The database did not do what a payment needed: the benchmark is wrong, not slow."""


def next_business_day(now: dt.datetime) -> dt.date:
    day = now.date() + dt.timedelta(days=1)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


class HandWrittenPayments:
    """One client's connection and its three commands. `trace()` counts the statements sent, by kind."""

    def __init__(self, conninfo: str) -> None:
        # Autocommit: each statement is its own transaction, as in the service layer.
        self.conn = psycopg.connect(conninfo, autocommit=True)
        self.statements: collections.Counter[str] | None = None

    def close(self) -> None:
        self.conn.close()

    def trace(self) -> collections.Counter[str]:
        self.statements = collections.Counter()
        return self.statements

    def _execute(self, query: str, params: tuple) -> psycopg.Cursor:
        if self.statements is not None:
            self.statements[query.split(None, 1)[0]] += 1
        return self.conn.execute(query, params)

    def _insert_event(
        self, stream_id: uuid.UUID, event_type: str, event_version: int, data: dict, version: int
    ) -> None:
        self._execute(
            INSERT_EVENT,
            (
                uuid.uuid4(),
                stream_id,
                AGGREGATE_TYPE,
                event_type,
                event_version,
                json.dumps(data, sort_keys=True),
                METADATA,
                version,
                dt.datetime.now(dt.UTC),
            ),
        ).fetchall()

    def _load(self, stream_id: uuid.UUID, expected_last: str) -> list[tuple]:
        rows = self._execute(SELECT_STREAM, (stream_id, 0)).fetchall()
        if not rows or rows[-1][EVENT_TYPE] != expected_last or rows[-1][VERSION] != len(rows):
            raise BenchError(f"payment {stream_id} is not at {expected_last}")
        return rows

    def initiate(self, *, merchant_id: str) -> uuid.UUID:
        payment_id = uuid.uuid4()
        data = {
            "payment_id": str(payment_id),
            "merchant_id": merchant_id,
            "amount": dict(AMOUNT),
            "payment_method": {"token": "tok_visa", "brand": "visa", "last4": "4242"},
            "description": "bench",
            "initiated_by": ACTOR,
        }
        self._insert_event(payment_id, "PaymentInitiated", 2, data, 1)
        return payment_id

    def authorize(self, *, payment_id: uuid.UUID) -> None:
        rows = self._load(payment_id, "PaymentInitiated")
        data = {
            # The simulator's approval, inline: a 6-character code and a network reference.
            "authorization_code": secrets.token_hex(3).upper(),
            "card_network_response": {
                "network": "simulator",
                "reference": f"sim_{uuid.uuid4().hex[:16]}",
                "response_code": "00",
            },
            "authorized_amount": rows[0][EVENT_DATA]["amount"],
        }
        self._insert_event(payment_id, "PaymentAuthorized", 1, data, len(rows) + 1)

    def capture(self, *, payment_id: uuid.UUID) -> int:
        """Capture in full; returns the stream's new version."""
        rows = self._load(payment_id, "PaymentAuthorized")
        data = {
            "captured_amount": rows[-1][EVENT_DATA]["authorized_amount"],
            "settlement_date": next_business_day(dt.datetime.now(dt.UTC)).isoformat(),
        }
        self._insert_event(payment_id, "PaymentCaptured", 1, data, len(rows) + 1)
        return len(rows) + 1

    def pay(self, *, merchant_id: str) -> uuid.UUID:
        payment_id = self.initiate(merchant_id=merchant_id)
        self.authorize(payment_id=payment_id)
        if self.capture(payment_id=payment_id) != 3:
            raise BenchError(f"payment {payment_id} did not end at version 3")
        return payment_id
