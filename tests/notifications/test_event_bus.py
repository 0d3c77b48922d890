"""The event bus (issue 15): every committed event published in log order, to a Redis stream by default and to the
machine's real RabbitMQ with EVENT_BUS_URL; a broker outage stalls the relay, which resumes from its checkpoint
once the broker is back, every event once, each stream in version order."""

from __future__ import annotations

import json
import subprocess
import time
import uuid

import pytest
from kombu import Connection, Exchange, Queue

from fintech import eventstore
from fintech.money import Money
from notifications import bus
from payments import services as payments
from projections import cache
from projections.engine import projection_run
from projections.selectors import projection_status_list
from vault.services import card_tokenize

pytestmark = pytest.mark.django_db(transaction=True)

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"
ACTOR = "user:bus"


def _payments(count: int) -> list[uuid.UUID]:
    merchant = f"m-bus-{uuid.uuid4().hex[:8]}"
    token = card_tokenize(card_number="4242424242424242", exp_month=12, exp_year=2040, merchant_id=merchant).token
    made = []
    for _ in range(count):
        payment = payments.payment_initiate(
            merchant_id=merchant, amount=Money(5000, "JPY"), payment_method_token=token, actor=ACTOR
        )
        payments.payment_authorize(payment_id=payment.id, actor=ACTOR)
        payments.payment_capture(payment_id=payment.id, actor=ACTOR)
        made.append(payment.id)
    return made


def _caught_up() -> None:
    """The relay at the head of the log, through the default publisher (the Redis stream: EVENT_BUS_URL is not set
    for the suite), so that a test publishes only its own events."""
    projection_run(name=bus.EVENT_BUS, wait=True)


def _event_ids(payment_ids: list[uuid.UUID]) -> dict[str, tuple[str, int]]:
    return {str(e.event_id): (str(e.stream_id), e.version) for p in payment_ids for e in eventstore.load(p)}


def test_events_go_to_a_redis_stream_in_log_order_by_default():
    # given no EVENT_BUS_URL (the settings as the suite runs them)
    _caught_up()
    made = _payments(2)
    projection_run(name=bus.EVENT_BUS, wait=True)
    expected = _event_ids(made)
    entries = cache.client().xrevrange(bus.STREAM_KEY, count=500)
    ours = [fields for _, fields in reversed(entries) if fields[b"id"].decode() in expected]
    bodies = [json.loads(fields[b"body"]) for fields in ours]
    assert sorted(body["id"] for body in bodies) == sorted(expected)
    for payment_id in made:
        versions = [body["version"] for body in bodies if body["stream_id"] == str(payment_id)]
        assert versions == [1, 2, 3]
    assert {fields[b"type"] for fields in ours} == {b"PaymentInitiated", b"PaymentAuthorized", b"PaymentCaptured"}
    assert bodies[0]["data"]["merchant_id"].startswith("m-bus-")


def _rabbit(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=120)  # noqa: S603, S607


def _broker_answers() -> bool:
    try:
        with Connection(AMQP_URL, connect_timeout=2) as connection:
            connection.ensure_connection(max_retries=1)
        return True
    except Exception:  # noqa: BLE001 - any failure: not yet
        return False


@pytest.fixture
def rabbit_queue(settings):
    """A durable queue bound to the payments' exchange, consumed by the test; deleted afterwards."""
    _caught_up()
    name = f"test-bus-{uuid.uuid4().hex[:8]}"
    exchange = Exchange("fintech.payment", type="topic", durable=True)
    queue = Queue(name, exchange=exchange, routing_key="#", durable=True)
    with Connection(AMQP_URL) as connection:
        queue(connection.channel()).declare()
    settings.EVENT_BUS_URL = AMQP_URL
    yield queue
    with Connection(AMQP_URL) as connection:
        queue(connection.channel()).delete()


def _consumed(queue: Queue, expected: int) -> list[tuple[str, dict]]:
    got: list[tuple[str, dict]] = []
    with Connection(AMQP_URL) as connection:
        bound = queue(connection.channel())
        deadline = time.monotonic() + 30
        while len(got) < expected and time.monotonic() < deadline:
            message = bound.get(no_ack=True)
            if message is None:
                time.sleep(0.05)
                continue
            got.append((message.properties["message_id"], json.loads(message.body)))
        time.sleep(0.3)
        while (message := bound.get(no_ack=True)) is not None:  # anything more would be a duplicate
            got.append((message.properties["message_id"], json.loads(message.body)))
    return got


def _assert_once_in_order(got: list[tuple[str, dict]], made: list[uuid.UUID]) -> None:
    expected = _event_ids(made)
    assert sorted(message_id for message_id, _ in got) == sorted(expected)
    assert all(body["id"] == message_id for message_id, body in got)
    for payment_id in made:
        assert [body["version"] for _, body in got if body["stream_id"] == str(payment_id)] == [1, 2, 3]


def test_events_reach_rabbitmq_once_each_in_stream_order(rabbit_queue):
    made = _payments(3)
    projection_run(name=bus.EVENT_BUS, wait=True)
    got = _consumed(rabbit_queue, 9)
    _assert_once_in_order(got, made)
    assert {body["type"] for _, body in got} == {"PaymentInitiated", "PaymentAuthorized", "PaymentCaptured"}


def test_a_broker_restart_mid_burst_stalls_the_relay_and_loses_nothing(rabbit_queue):
    # given a burst whose first half is published
    first = _payments(3)
    projection_run(name=bus.EVENT_BUS, wait=True)
    # when the broker stops, the rest of the burst commits meanwhile, and the relay runs into the outage
    _rabbit("stop_app")
    try:
        second = _payments(3)
        with pytest.raises(Exception):  # noqa: B017, PT011 - whatever the client raises for a broker that is gone
            projection_run(name=bus.EVENT_BUS, wait=True)
        # then the relay stalled where it was: projection_status shows it behind the log
        (status,) = [s for s in projection_status_list() if s.name == bus.EVENT_BUS]
        assert status.lag_events >= 9
    finally:
        _rabbit("start_app")
    deadline = time.monotonic() + 60
    while not _broker_answers():
        assert time.monotonic() < deadline, "RabbitMQ did not come back"
        time.sleep(0.5)
    # and once the broker is back the relay resumes from its checkpoint: every event once, each stream in order
    projection_run(name=bus.EVENT_BUS, wait=True)
    got = _consumed(rabbit_queue, 18)
    _assert_once_in_order(got, first + second)
