"""Events per second through the event bus relay to RabbitMQ, beside a raw loop publishing the same messages.

Each round: `payments` captured payments (three events each), the relay first caught up on the Redis stream
(untimed), then timed publishing them to the machine's RabbitMQ (EVENT_BUS_URL): read the log, build each
message, publish with confirms, move the checkpoint. The raw loop publishes the same message bodies with the
same kombu producer and confirms, one by one, and reads or records nothing. A durable queue bound to the
exchange takes the messages and is deleted afterwards.

Call only after django.setup() on the bench database.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from django.conf import settings

from tests.bench.projections import _median
from tests.bench.webhooks import _payments

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"


def _raw(messages) -> float:
    from kombu import Connection, Exchange

    exchange = Exchange("fintech.payment", type="topic", durable=True)
    with Connection(AMQP_URL, transport_options={"confirm_publish": True}) as connection:
        producer = connection.Producer()
        started = time.perf_counter()
        for message in messages:
            producer.publish(
                message.body,
                exchange=exchange,
                routing_key=message.event_type,
                declare=[exchange],
                message_id=message.message_id,
                delivery_mode=2,
                content_type="application/json",
                retry=False,
            )
        return len(messages) / (time.perf_counter() - started)


def run(*, payments: int, rounds: int, out: Callable[[str], None]) -> None:
    from kombu import Connection, Exchange, Queue

    from fintech import eventstore
    from notifications import bus
    from projections.engine import projection_run
    from vault.services import card_tokenize

    queue = Queue(
        f"bench-bus-{uuid.uuid4().hex[:8]}",
        exchange=Exchange("fintech.payment", type="topic", durable=True),
        routing_key="#",
        durable=True,
    )
    with Connection(AMQP_URL) as connection:
        queue(connection.channel()).declare()
    relayed, raws = [], []
    try:
        for _ in range(rounds):
            settings.EVENT_BUS_URL = ""
            projection_run(name=bus.EVENT_BUS, wait=True)
            merchant_id = f"m-bus-{uuid.uuid4().hex[:8]}"
            token = card_tokenize(card_number="4242424242424242", exp_month=12, exp_year=2040, merchant_id=merchant_id)
            made = _payments(merchant_id, token.token, payments)
            settings.EVENT_BUS_URL = AMQP_URL
            started = time.perf_counter()
            count = projection_run(name=bus.EVENT_BUS, wait=True)
            relayed.append(count / (time.perf_counter() - started))
            messages = [bus.message_of(recorded) for payment_id in made for recorded in eventstore.load(payment_id)]
            raws.append(_raw(messages))
    finally:
        settings.EVENT_BUS_URL = ""
        with Connection(AMQP_URL) as connection:
            queue(connection.channel()).delete()
    rate, raw = _median(relayed), _median(raws)
    out("")
    out(f"event bus, 1 process: {3 * payments:,} events ({payments:,} payments) to RabbitMQ, {rounds} rounds (median)")
    out(f"{'':<12}{'events/s':>22}{'raw publishes/s':>22}{'ratio':>10}")
    out(f"{'relay':<12}{rate:>22,.0f}{raw:>22,.0f}{rate / raw:>10.4f}   (raw: the same messages, confirmed, in a loop)")
