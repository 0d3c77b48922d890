"""The baseline: the database and crypto work of initiate → authorize → capture, written by hand with psycopg 3.

No Django here (`vault.keys` is plain Python and Tink). Each command sends the statements the service layer
sends, in autocommit, each its own transaction:

- initiate: SELECT the merchant's card by token (token_describe: every column, as the ORM selects them),
  check its expiry, INSERT the first event with the card's token, brand and last 4.
- authorize, in one transaction (BEGIN ... COMMIT) that first takes the payment's advisory lock: SELECT the
  stream's events; SELECT the payment's last authorization attempt at that version, INSERT a new attempt on a
  second, autocommit connection (opened at its first use, as the project's own connection); the simulator:
  SELECT its answer by the attempt's key (second connection), SELECT the card again by token and merchant (the
  gateway's token_status), check its expiry; SELECT it by token (card_detokenize), unwrap its data key with the
  KEK (Tink AEAD, associated data `vault.card:<token>:key`), decrypt the number (`vault.card:<token>:number`),
  INSERT the detokenisation audit row (second connection), INSERT its answer (second connection); then UPDATE
  the attempt's outcome and INSERT the authorization event numbered from the version read.
- capture: SELECT the stream's events; INSERT the capture event.

Each event INSERT returns (position, transaction id, created_at); the insert trigger on fintech_event creates
the stream row (version 1) or advances it by compare-and-set, raising SQLSTATE FE409 on a stale version, so
the reads need no transaction around them. Payloads are built as the aggregate builds them (json.dumps of the
same dicts, keys sorted), so `payments.services.payment_load` reads the rows back.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg

from vault import keys

AGGREGATE_TYPE = "payment"
AMOUNT = {"amount": 5000, "currency": "JPY"}
ACTOR = "bench"
METADATA = json.dumps({"actor": ACTOR}, sort_keys=True)
# What the simulator gateway checks once it has the number (payments.gateway.TEST_CARDS, DECLINE_RANGE).
DECLINED_CARDS = frozenset({"4000000000000002", "4000000000009995"})
GATEWAY_ACTOR = "system:acquirer-gateway"

INSERT_EVENT = (
    "INSERT INTO fintech_event (event_id, aggregate_id, aggregate_type, event_type, event_version, event_data, "
    "metadata, version, occurred_at) VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s, %s) "
    "RETURNING position, transaction_id::text::bigint, created_at"
)
LOCK_PAYMENT = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"
SELECT_STREAM = (
    "SELECT event_id, aggregate_id, aggregate_type, event_type, event_version, event_data, metadata, version, "
    "occurred_at, created_at, transaction_id::text::bigint, position FROM fintech_event "
    "WHERE aggregate_id = %s AND version > %s ORDER BY version"
)
# Every column of vault_card, as Card.objects.filter(...).first() selects them.
_CARD = (
    "SELECT token, merchant_id, blind_index, wrapped_key, kek_key_id, number_ciphertext, name_ciphertext, brand, "
    "last4, masked, exp_month, exp_year, created_at, updated_at FROM vault_card"
)
SELECT_MERCHANT_CARD = f"{_CARD} WHERE (merchant_id = %s AND token = %s) ORDER BY token ASC LIMIT 1"
SELECT_CARD = f"{_CARD} WHERE token = %s ORDER BY token ASC LIMIT 1"
SELECT_LAST_ATTEMPT = (
    "SELECT number, outcome, idempotency_key FROM payments_authorizationattempt "
    "WHERE payment_id = %s AND payment_version = %s ORDER BY number DESC LIMIT 1"
)
INSERT_ATTEMPT = (
    "INSERT INTO payments_authorizationattempt (payment_id, payment_version, number, idempotency_key, "
    "merchant_id, amount, currency, started_at, outcome, resolved_by) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, now(), '', '') ON CONFLICT (idempotency_key) DO NOTHING"
)
RESOLVE_ATTEMPT = (
    "UPDATE payments_authorizationattempt SET outcome = %s, resolved_at = now(), resolved_by = %s "
    "WHERE idempotency_key = %s AND outcome = ''"
)
SELECT_SIMULATED = (
    "SELECT approved, response_code, reason, authorization_code, network_response::text "
    "FROM payments_simulatedauthorization WHERE idempotency_key = %s"
)
INSERT_SIMULATED = (
    "INSERT INTO payments_simulatedauthorization (idempotency_key, payment_id, created_at, approved, "
    "response_code, reason, authorization_code, network_response) VALUES (%s, %s, now(), %s, %s, %s, %s, %s) "
    "ON CONFLICT (idempotency_key) DO NOTHING "
    "RETURNING approved, response_code, reason, authorization_code, network_response::text"
)
INSERT_AUDIT = (
    "INSERT INTO vault_detokenizationaudit (occurred_at, actor, user_id, token, purpose, outcome, channel) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id"
)
# Column indexes in SELECT_STREAM rows and in card rows.
EVENT_TYPE, EVENT_DATA, VERSION = 3, 5, 7
WRAPPED_KEY, NUMBER_CIPHERTEXT, BRAND, LAST4, EXP_MONTH, EXP_YEAR = 3, 5, 7, 8, 10, 11


class BenchError(Exception):
    """The database did not do what a payment needed: the benchmark is wrong, not slow."""


@dataclass(frozen=True)
class VaultKeys:
    """Where the service's key provider finds the KEK (settings.VAULT_*), for a client without Django."""

    provider: str
    directory: str
    keyset_json: str | None = None
    aws_kms_key_uri: str | None = None

    def key_provider(self) -> keys.KeyProvider:
        # As vault.keys.key_provider() builds it from the settings.
        if self.provider == "aws-kms":
            return keys.AwsKmsKeyProvider(Path(self.directory), key_uri=self.aws_kms_key_uri)
        return keys.LocalKeyProvider(Path(self.directory), keyset_json=self.keyset_json)


def next_business_day(now: dt.datetime) -> dt.date:
    day = now.date() + dt.timedelta(days=1)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


def _card_context(token: str, field: str) -> bytes:
    return f"vault.card:{token}:{field}".encode()


def _usable(card: tuple | None) -> bool:
    today = dt.datetime.now(dt.UTC).date()  # settings.TIME_ZONE is UTC
    return card is not None and (card[EXP_YEAR], card[EXP_MONTH]) >= (today.year, today.month)


class HandWrittenPayments:
    """One client's connection, its key provider and its three commands."""

    def __init__(self, conninfo: str, vault_keys: VaultKeys) -> None:
        # Autocommit: each statement is its own transaction, as in the service layer.
        self.conn = psycopg.connect(conninfo, autocommit=True)
        self.conninfo = conninfo
        self.audit_conn: psycopg.Connection | None = None
        self.provider = vault_keys.key_provider()

    def close_audit_connection(self) -> None:
        if self.audit_conn is not None:
            self.audit_conn.close()
            self.audit_conn = None

    def close(self) -> None:
        self.close_audit_connection()
        self.conn.close()

    def _execute(self, query: str, params: tuple) -> psycopg.Cursor:
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

    def initiate(self, *, merchant_id: str, token: str) -> uuid.UUID:
        card = self._execute(SELECT_MERCHANT_CARD, (merchant_id, token)).fetchone()
        if not _usable(card):
            raise BenchError(f"card {token} is not a usable card of merchant {merchant_id}")
        payment_id = uuid.uuid4()
        data = {
            "payment_id": str(payment_id),
            "merchant_id": merchant_id,
            "amount": dict(AMOUNT),
            "payment_method": {"token": token, "brand": card[BRAND], "last4": card[LAST4]},
            "description": "bench",
            "initiated_by": ACTOR,
        }
        self._insert_event(payment_id, "PaymentInitiated", 2, data, 1)
        return payment_id

    def _detokenize(self, *, token: str, payment_id: uuid.UUID) -> str:
        card = self._execute(SELECT_CARD, (token,)).fetchone()
        if card is None:
            raise BenchError(f"card {token} is gone")
        dek = keys.dek_unwrap(self.provider, card[WRAPPED_KEY], context=_card_context(token, "key"))
        number = dek.decrypt(card[NUMBER_CIPHERTEXT], _card_context(token, "number")).decode()
        self._own().execute(
            INSERT_AUDIT,
            (
                dt.datetime.now(dt.UTC),
                GATEWAY_ACTOR,
                None,
                token,
                f"authorization of payment {payment_id}",
                "granted",
                "gateway",
            ),
        ).fetchall()
        return number

    def _own(self) -> psycopg.Connection:
        if self.audit_conn is None:
            self.audit_conn = psycopg.connect(self.conninfo, autocommit=True)
        return self.audit_conn

    def authorize(self, *, payment_id: uuid.UUID) -> None:
        with self.conn.transaction():
            self._execute(LOCK_PAYMENT, (f"payment:{payment_id}",))
            self._authorize(payment_id=payment_id)

    def _authorize(self, *, payment_id: uuid.UUID) -> None:
        rows = self._load(payment_id, "PaymentInitiated")
        initiated = rows[0][EVENT_DATA]
        merchant_id, token = initiated["merchant_id"], initiated["payment_method"]["token"]
        version = len(rows)
        last = self._execute(SELECT_LAST_ATTEMPT, (payment_id, version)).fetchone()
        if last is not None:
            raise BenchError(f"payment {payment_id} was asked for before")
        key = f"{payment_id}:{version}:1"
        self._own().execute(
            INSERT_ATTEMPT, (payment_id, version, 1, key, merchant_id, initiated["amount"]["amount"], "JPY")
        )
        # The simulator gateway: a key it has not answered; the card must still be the merchant's and unexpired,
        # then it sees the number.
        if self._own().execute(SELECT_SIMULATED, (key,)).fetchone() is not None:
            raise BenchError(f"the simulator has answered {key} before")
        if not _usable(self._execute(SELECT_MERCHANT_CARD, (merchant_id, token)).fetchone()):
            raise BenchError(f"card {token} is no longer usable")
        number = self._detokenize(token=token, payment_id=payment_id)
        if number in DECLINED_CARDS:
            raise BenchError(f"card {token} is a declined test card")
        del number
        # The simulator's approval: a 6-character code and a network reference, kept on its side.
        code = secrets.token_hex(3).upper()
        network = {"network": "simulator", "reference": f"sim_{uuid.uuid4().hex[:16]}", "response_code": "00"}
        self._own().execute(
            INSERT_SIMULATED, (key, payment_id, True, "00", "approved", code, json.dumps(network))
        ).fetchall()
        self._execute(RESOLVE_ATTEMPT, ("approved", "command", key))
        data = {"authorization_code": code, "card_network_response": network, "authorized_amount": initiated["amount"]}
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

    def pay(self, *, merchant_id: str, token: str) -> uuid.UUID:
        payment_id = self.initiate(merchant_id=merchant_id, token=token)
        self.authorize(payment_id=payment_id)
        if self.capture(payment_id=payment_id) != 3:
            raise BenchError(f"payment {payment_id} did not end at version 3")
        return payment_id
