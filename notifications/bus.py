"""The event bus: every committed event, in log order, published for other services to consume.

A relay, the projection `event_bus`: its handlers collect a batch's events as messages, and the batch's
checkpoint commits only once the broker has confirmed every one of them (Projection.before_commit). A broker
that does not answer makes the batch roll back: the relay stalls where it was (projection_status shows its lag)
and resumes from that checkpoint once the broker is back, nothing skipped. At least once: a batch published but
not committed (a crash between the two) is published again, with the same message ids (the events' ids), which
is what consumers dedupe on. Order: one publisher, in log order, so each stream's events arrive in version order.

The broker sits behind one small interface (Publisher):
- EVENT_BUS_URL=amqp://...: RabbitMQ with publisher confirms. A durable topic exchange per aggregate type
  (`fintech.payment`, `fintech.ledger_account`, ...), routing key the event type, persistent messages;
- no EVENT_BUS_URL (the embedded default): a Redis stream (`fintech:events`, capped near EVENT_BUS_STREAM_MAXLEN).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings

from fintech.events import event_types
from fintech.eventstore import RecordedEvent
from fintech.timestamps import iso_z
from projections.cache import client
from projections.engine import Projection, projection_register

EVENT_BUS = "event_bus"
STREAM_KEY = "fintech:events"


@dataclass(frozen=True)
class BusMessage:
    message_id: str
    aggregate_type: str
    event_type: str
    body: bytes


def message_of(recorded: RecordedEvent) -> BusMessage:
    """An event as consumers get it: its id, type, stream, version, time and data (not its metadata: who did it is
    ours to keep)."""
    body = {
        "id": str(recorded.event_id),
        "type": recorded.event_type,
        "aggregate_type": recorded.aggregate_type,
        "stream_id": str(recorded.stream_id),
        "version": recorded.version,
        "occurred_at": iso_z(recorded.occurred_at),
        "data": recorded.event.to_data(),
    }
    encoded = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    return BusMessage(str(recorded.event_id), recorded.aggregate_type, recorded.event_type, encoded)


class Publisher(Protocol):
    def publish(self, messages: list[BusMessage]) -> None:
        """Return once the broker holds every message; raise otherwise (nothing is known of the rest)."""


class RedisStreamPublisher:
    def publish(self, messages: list[BusMessage]) -> None:
        pipe = client().pipeline(transaction=False)
        for message in messages:
            fields = {
                "id": message.message_id,
                "type": message.event_type,
                "aggregate_type": message.aggregate_type,
                "body": message.body,
            }
            pipe.xadd(STREAM_KEY, fields, maxlen=settings.EVENT_BUS_STREAM_MAXLEN, approximate=True)
        pipe.execute()


class AmqpPublisher:
    """RabbitMQ through kombu, with publisher confirms: each publish returns once the broker has the message."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.connection = None
        self.producer = None

    def publish(self, messages: list[BusMessage]) -> None:
        from kombu import Connection, Exchange

        try:
            if self.producer is None:
                self.connection = Connection(self.url, connect_timeout=5, transport_options={"confirm_publish": True})
                self.producer = self.connection.Producer()
            for message in messages:
                exchange = Exchange(f"fintech.{message.aggregate_type}", type="topic", durable=True)
                self.producer.publish(
                    message.body,
                    exchange=exchange,
                    routing_key=message.event_type,
                    declare=[exchange],
                    message_id=message.message_id,
                    delivery_mode=2,
                    content_type="application/json",
                    retry=False,
                )
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        """Drop the connection (a broken one too): the next publish opens a new one."""
        if self.connection is not None:
            with contextlib.suppress(Exception):
                self.connection.release()
            self.connection, self.producer = None, None


_publishers: dict[str, Publisher] = {}


def publisher() -> Publisher:
    """The publisher EVENT_BUS_URL names (one per process and URL)."""
    url = settings.EVENT_BUS_URL
    if url not in _publishers:
        _publishers[url] = AmqpPublisher(url) if url.startswith(("amqp://", "pyamqp://")) else RedisStreamPublisher()
    return _publishers[url]


# The batch being applied (this process applies one at a time).
_pending: list[BusMessage] = []


def _collect(cursor, tables, recorded: RecordedEvent):
    _pending.append(message_of(recorded))


def _publish() -> None:
    try:
        if _pending:
            publisher().publish(list(_pending))
    finally:
        _pending.clear()


def register() -> None:
    """The relay, over every event type the domain modules define (imported by then: the apps are ready)."""
    projection_register(
        Projection(
            name=EVENT_BUS,
            tables=(),
            handlers=dict.fromkeys(event_types(), _collect),
            before_commit=_publish,
            # Publishing the whole log again is an operator's decision, not a rebuild.
            replayable=False,
        )
    )
