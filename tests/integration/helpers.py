"""What the events say against what the read model says, and fast ways to fill the log.

The expected side folds each payment's events with the payment aggregate (the write side's own rules), never
with the projection's SQL, and sums the merchant daily figures straight from the capture and refund events.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import defaultdict
from dataclasses import dataclass

from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.services import api_token_issue
from fintech import eventstore
from fintech.events import decode_event
from fintech.eventstore import Checkpoint
from fintech.money import Money
from payments.domain import Payment, PaymentMethod
from vault.services import card_tokenize

ACTOR = "user:integration"
VISA = "4242424242424242"  # approved by the acquirer simulator
DECLINED = "4000000000000002"  # declined by it
EXP_YEAR = dt.datetime.now(tz=dt.UTC).year + 4

PaymentFigures = tuple[str, str, int, int, int, int, int]  # status, currency, amount, authorized, captured, refunded, v
DailyKey = tuple[str, dt.date, str]  # merchant, day (UTC), currency
DailyFigures = tuple[int, int, int, int]  # captured count, captured amount, refunded count, refunded amount


@dataclass(frozen=True)
class ReadModel:
    payments: dict[uuid.UUID, PaymentFigures]
    daily: dict[DailyKey, DailyFigures]


def unique_merchant_id(label: str = "integ") -> str:
    """Events outlive transactional tests: each test works on merchants no other test uses."""
    return f"m-{label}-{uuid.uuid4().hex[:10]}"


def card_token(merchant_id: str, number: str = VISA) -> str:
    """The merchant's vault token of a test card, tokenised through the vault's service."""
    return card_tokenize(card_number=number, exp_month=12, exp_year=EXP_YEAR, merchant_id=merchant_id).token


def merchant_client(merchant_id: str) -> APIClient:
    """An API client authenticated as a user of the merchant."""
    client = APIClient()
    token = api_token_issue(username=f"user-{merchant_id}", merchant_id=merchant_id)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def _json(value):
    return json.loads(value) if isinstance(value, str) else value


def read_model_expected(payment_ids: list[uuid.UUID], *, upto: Checkpoint | None = None) -> ReadModel:
    """The read model these payments' events (up to a checkpoint, if given) call for."""
    sql = (
        "SELECT aggregate_id, event_type, event_version, event_data, occurred_at FROM fintech_event "
        "WHERE aggregate_id = ANY(%s)"
    )
    params: list = [payment_ids]
    if upto is not None:
        sql += " AND (transaction_id, position) <= (%s::text::xid8, %s)"
        params += [upto.transaction_id, upto.position]
    with connection.cursor() as cursor:
        cursor.execute(sql + " ORDER BY aggregate_id, version", params)
        rows = cursor.fetchall()
    streams: dict[uuid.UUID, list] = defaultdict(list)
    for stream_id, event_type, event_version, data, occurred_at in rows:
        streams[stream_id].append(decode_event(event_type, event_version, _json(data), occurred_at=occurred_at))

    payments: dict[uuid.UUID, PaymentFigures] = {}
    daily: dict[DailyKey, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for stream_id, events in streams.items():
        payment = Payment.from_events(stream_id, events)
        payments[stream_id] = (
            payment.status,
            payment.amount.currency,
            payment.amount.minor,
            payment.authorized_amount.minor,
            payment.captured_amount.minor,
            payment.refunded_amount.minor,
            payment.version,
        )
        for event in events:
            day = event.occurred_at.astimezone(dt.UTC).date()
            key = (payment.merchant_id, day, payment.amount.currency)
            if event.event_type == "PaymentCaptured":
                daily[key][0] += 1
                daily[key][1] += event.captured_amount.minor
            elif event.event_type == "PaymentRefunded":
                daily[key][2] += 1
                daily[key][3] += event.refunded_amount.minor
    return ReadModel(payments=payments, daily={key: tuple(value) for key, value in daily.items()})


def read_model_actual(payment_ids: list[uuid.UUID], merchant_ids: list[str]) -> ReadModel:
    """What projections_payment and projections_merchant_daily hold for these payments and merchants."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT payment_id, status, currency, amount, authorized_amount, captured_amount, refunded_amount, "
            "version FROM projections_payment WHERE payment_id = ANY(%s)",
            [payment_ids],
        )
        payments = {row[0]: tuple(row[1:]) for row in cursor.fetchall()}
        cursor.execute(
            "SELECT merchant_id, day, currency, captured_count, captured_amount, refunded_count, refunded_amount "
            "FROM projections_merchant_daily WHERE merchant_id = ANY(%s)",
            [merchant_ids],
        )
        daily = {tuple(row[:3]): tuple(row[3:]) for row in cursor.fetchall()}
    return ReadModel(payments=payments, daily=daily)


def payments_append(*, merchant_id: str, events_at_least: int) -> list[uuid.UUID]:
    """Append payments of every outcome (initiated, authorized, failed, cancelled, captured, partly and fully
    refunded; JPY and USD) straight through the event store, as the aggregate decides them, one transaction
    per payment, until at least `events_at_least` events are in. No acquirer and no vault: fast."""
    method = PaymentMethod(token="tok_integration", brand="visa", last4="4242")
    ids: list[uuid.UUID] = []
    appended = 0
    while appended < events_at_least:
        index = len(ids)
        currency = "JPY" if index % 2 else "USD"
        amount = Money(1000 + index % 97 * 10, currency)
        now = timezone.now()
        payment = Payment.initiate(
            payment_id=uuid.uuid4(),
            merchant_id=merchant_id,
            amount=amount,
            payment_method=method,
            description=f"order {index}",
            initiated_by=ACTOR,
            now=now,
        )
        outcome = index % 7
        if outcome == 1:
            payment.fail(reason="declined", response_code="05", card_network_response={}, now=now)
        elif outcome == 2:
            payment.cancel(reason="customer asked", now=now)
        elif outcome >= 3:
            payment.authorize(authorization_code=f"A{index:05d}", card_network_response={}, now=now)
        if outcome >= 4:
            captured = amount if outcome != 5 else Money(amount.minor // 2, currency)
            payment.capture(amount=captured, settlement_date=now.date(), now=now)
        if outcome == 5:
            payment.refund(refund_id=uuid.uuid4(), amount=Money(100, currency), reason="", now=now)
        if outcome == 6:
            payment.refund(refund_id=uuid.uuid4(), amount=Money(300, currency), reason="", now=now)
            payment.refund(refund_id=uuid.uuid4(), amount=payment.refundable_amount, reason="", now=now)
        eventstore.append(payment.id, payment.pending_events, 0, metadata={"actor": ACTOR})
        appended += len(payment.pending_events)
        ids.append(payment.id)
    return ids


def log_size() -> tuple[int, Checkpoint]:
    """How many events of the payments projection's types the log holds, and its head."""
    from projections.engine import projection_get
    from projections.payments import PAYMENTS

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM fintech_event WHERE event_type = ANY(%s)", [list(projection_get(PAYMENTS).handlers)]
        )
        count = cursor.fetchone()[0]
    return count, eventstore.head()
