"""Read-side throughput beside the raw reads it is built on, in one process on the bench database.

catch-up = the payments projection from an empty checkpoint over the whole log (what the sections above left,
topped up here to `events` with payments of every outcome): read_all in batches, decode into domain events,
the handlers' SQL, the checkpoint, one transaction per batch, then the Redis refresh of the touched payments.
The raw figure is a psycopg scan of the same events in the same order and batches, JSON decoded, nothing
applied.

GET = GET /api/v1/payments/{id} on a cache hit through Django's whole stack in process (middleware, token
authentication, the merchant lookup, the view, two Redis reads, JSON rendering); the selector line is the
view's read path alone (payment_get + the checkpoint time); the raw figure is one redis-py GET of the same key.

Call only after django.setup() on the bench database.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable, Iterator

import psycopg

from fintech.money import Money

BATCH = 2000
CHUNK = 5000  # events per COPY transaction when filling the log
MERCHANTS = 20
CURRENCIES = ("JPY", "USD", "KWD")
ACTOR = "bench:projections"
COLUMNS = (
    "event_id, aggregate_id, aggregate_type, event_type, event_version, event_data, metadata, version, occurred_at"
)


def _payment_events(index: int, now) -> list:
    """The events of one payment, as the aggregate decides them: mostly captured, some refunded in part or in
    full, some cancelled or declined (a mean of 3.2 events)."""
    from payments.domain import Payment, PaymentMethod

    currency = CURRENCIES[index % len(CURRENCIES)]
    amount = Money(1000 + index % 500, currency)
    payment = Payment.initiate(
        payment_id=uuid.uuid4(),
        merchant_id=f"m-bench-proj-{index % MERCHANTS}",
        amount=amount,
        payment_method=PaymentMethod(token="tok_benchprojections", brand="visa", last4="4242"),
        description="bench",
        initiated_by=ACTOR,
        now=now,
    )
    outcome = index % 10
    if outcome == 9:
        payment.fail(reason="declined", response_code="05", card_network_response={}, now=now)
        return payment.pending_events
    payment.authorize(authorization_code=f"B{index:06d}", card_network_response={}, now=now)
    if outcome == 8:
        payment.cancel(reason="bench", now=now)
        return payment.pending_events
    payment.capture(amount=None, settlement_date=now.date(), now=now)
    if outcome >= 6:
        payment.refund(refund_id=uuid.uuid4(), amount=Money(100, currency), reason="", now=now)
    if outcome == 7:
        payment.refund(refund_id=uuid.uuid4(), amount=payment.refundable_amount, reason="", now=now)
    return payment.pending_events


def _rows(events: int, moment: Callable[[int], dt.datetime] | None = None) -> Iterator[tuple]:
    """Exactly `events` fintech_event rows of valid payment streams (the last payment possibly cut short: any
    prefix of a stream is a valid stream), the payment of each index happening at `moment(index)` (now)."""
    import json

    from django.utils import timezone

    metadata = json.dumps({"actor": ACTOR})
    written, index = 0, 0
    while written < events:
        now = moment(index) if moment else timezone.now()
        stream_events = _payment_events(index, now)[: events - written]
        stream_id = uuid.uuid4()
        for version, event in enumerate(stream_events, start=1):
            yield (
                uuid.uuid4(),
                stream_id,
                event.aggregate_type,
                event.event_type,
                event.event_version,
                json.dumps(event.to_data(), sort_keys=True),
                metadata,
                version,
                event.occurred_at,
            )
        written += len(stream_events)
        index += 1


def append_events(url: str, events: int) -> tuple[int, float]:
    """COPY `events` payment events into the log, CHUNK per transaction; returns (payments, seconds)."""
    started = time.perf_counter()
    streams = set()
    rows = _rows(events)
    with psycopg.connect(url) as conn:
        while True:
            chunk = [row for _, row in zip(range(CHUNK), rows, strict=False)]
            if not chunk:
                break
            with conn.transaction(), conn.cursor() as cursor:
                with cursor.copy(f"COPY fintech_event ({COLUMNS}) FROM STDIN") as copy:
                    for row in chunk:
                        copy.write_row(row)
            streams.update(row[1] for row in chunk)
    return len(streams), time.perf_counter() - started


def reset_projection(url: str) -> None:
    """Empty the payments read tables and forget the projection's checkpoint."""
    from projections.payments import DAILY_TABLE, PAYMENT_TABLE, PAYMENTS

    with psycopg.connect(url) as conn:
        conn.execute(f"TRUNCATE {PAYMENT_TABLE}, {DAILY_TABLE}")
        conn.execute("DELETE FROM projections_projectionstate WHERE name = %s", [PAYMENTS])


def raw_scan(url: str) -> tuple[int, float]:
    """Every event's data in the log's order, BATCH at a time by keyset, JSON decoded: (events, seconds)."""
    count = 0
    after = (0, 0)
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            rows = conn.execute(
                "SELECT transaction_id::text::bigint, position, event_data FROM fintech_event "
                "WHERE (transaction_id, position) > (%s::text::xid8, %s) ORDER BY transaction_id, position LIMIT %s",
                [after[0], after[1], BATCH],
            ).fetchall()
            if not rows:
                break
            count += len(rows)
            after = rows[-1][:2]
    return count, time.perf_counter() - started


def verify_read_model(url: str) -> None:
    """The read tables agree with the log: a row per payment stream at its version, and the daily capture and
    refund counts and amounts equal to the events' own."""
    with psycopg.connect(url) as conn:
        log = conn.execute(
            "SELECT (SELECT count(*) FROM fintech_stream WHERE aggregate_type = 'payment'), "
            "count(*) FILTER (WHERE aggregate_type = 'payment'), "
            "count(*) FILTER (WHERE event_type = 'PaymentCaptured'), "
            "coalesce(sum((event_data -> 'captured_amount' ->> 'amount')::bigint), 0), "
            "count(*) FILTER (WHERE event_type = 'PaymentRefunded'), "
            "coalesce(sum((event_data -> 'refunded_amount' ->> 'amount')::bigint), 0) FROM fintech_event"
        ).fetchone()
        tables = conn.execute(
            "SELECT (SELECT count(*) FROM projections_payment), (SELECT sum(version) FROM projections_payment), "
            "sum(captured_count), sum(captured_amount), sum(refunded_count), sum(refunded_amount) "
            "FROM projections_merchant_daily"
        ).fetchone()
    if tuple(log) != tuple(tables):
        raise AssertionError(
            "read model against the log (payments, payment events, captures, captured, refunds, refunded): "
            f"{tables} != {log}"
        )


def catch_up() -> tuple[int, float]:
    from django.db import connection

    from projections.engine import projection_run
    from projections.payments import PAYMENTS

    started = time.perf_counter()
    applied = projection_run(name=PAYMENTS, batch_size=BATCH)
    seconds = time.perf_counter() - started
    connection.close()
    return applied, seconds


def _rate(operation: Callable[[], object], seconds: float) -> float:
    count, started = 0, time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        operation()
        count += 1
    return count / (time.perf_counter() - started)


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def reads(*, seconds: float, rounds: int) -> dict[str, float]:
    """ops/s (median of rounds) of the API GET, its selector path and a raw Redis GET, of one cached payment."""
    import redis
    from django.conf import settings
    from rest_framework.test import APIClient

    from accounts.services import api_token_issue
    from projections import selectors
    from projections.cache import payment_key
    from projections.models import PaymentView

    row = PaymentView.objects.filter(status="captured").order_by("payment_id").first()
    if row is None:
        raise RuntimeError("no captured payment in the read table to read")
    client = APIClient()
    token = api_token_issue(username="bench-projections-reader", merchant_id=row.merchant_id)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    url = f"/api/v1/payments/{row.payment_id}"
    first = client.get(url)
    if first.status_code != 200 or first.json()["freshness"]["source"] != "cache":
        raise RuntimeError(f"GET {url} is not a cache hit: {first.status_code} {first.content[:300]!r}")
    raw = redis.Redis.from_url(settings.REDIS_URL)
    key = payment_key(row.payment_id)
    if raw.get(key) is None:
        raise RuntimeError(f"{key} is not in Redis")

    def api_get() -> None:
        response = client.get(url)
        if response.status_code != 200:
            raise RuntimeError(f"GET {url}: {response.status_code}")

    def selector_get() -> None:
        selectors.payment_get(payment_id=row.payment_id, merchant_id=row.merchant_id)
        selectors.projection_checkpoint_at()

    rates: dict[str, list[float]] = {"api": [], "selector": [], "raw": []}
    for _ in range(rounds):
        rates["api"].append(_rate(api_get, seconds))
        rates["selector"].append(_rate(selector_get, seconds))
        rates["raw"].append(_rate(lambda: raw.get(key), seconds))
    raw.close()
    return {name: _median(values) for name, values in rates.items()}


def log_size(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM fintech_event").fetchone()[0]


def run(*, url: str, events: int, seconds: float, rounds: int, out: Callable[[str], None]) -> None:
    """Fill the log up to `events` (the sections above left some), then catch up and read."""
    existing = log_size(url)
    payments, append_seconds = append_events(url, events - existing) if events > existing else (0, 0.0)
    out("")
    out(
        f"projections, 1 process: a log of {existing + max(events - existing, 0):,} events, "
        f"{existing:,} from the sections above and {max(events - existing, 0):,} of {payments:,} payments "
        f"appended by COPY in {append_seconds:.1f} s"
    )
    reset_projection(url)
    raw_scan(url)  # warm the same pages for both sides
    applied, catch_up_seconds = catch_up()
    verify_read_model(url)
    scans = [raw_scan(url) for _ in range(rounds)]
    scanned = scans[0][0]
    if any(count != scanned for count, _ in scans) or applied != scanned:
        raise AssertionError(f"the projection read {applied} events, the raw scans {[c for c, _ in scans]}")
    projection_rate = applied / catch_up_seconds
    raw_rate = _median([count / took for count, took in scans])
    out(f"{'catch-up':<12}{'projection events/s':>22}{'raw scan events/s':>22}{'ratio':>10}")
    out(f"{applied:<12,}{projection_rate:>22,.0f}{raw_rate:>22,.0f}{projection_rate / raw_rate:>10.4f}")
    out(f"  (batch {BATCH}, from an empty checkpoint: the projection took {catch_up_seconds:.1f} s; verified)")

    rates = reads(seconds=seconds, rounds=rounds)
    out(f"{'read':<12}{'ops/s':>22}{'raw Redis GET ops/s':>22}{'ratio':>10}   (cache hit, median of rounds)")
    for label, name in (("GET api", "api"), ("selector", "selector")):
        out(f"{label:<12}{rates[name]:>22,.0f}{rates['raw']:>22,.0f}{rates[name] / rates['raw']:>10.4f}")
