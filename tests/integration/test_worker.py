"""The read side with a real Celery worker (solo pool, embedded beat catching up every second) on the test
database and real Redis: appends reach the read table and the cache, a worker killed mid-batch applies every
event exactly once, late commits are not stepped over, and a replay rebuilds what the live projection built."""

from __future__ import annotations

import io
import json
import uuid

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from fintech import eventstore
from fintech.eventstore import Checkpoint
from fintech.money import Money
from payments import services
from payments.domain import PaymentInitiated
from projections import cache
from projections import services as projection_services
from projections.cache import PAYMENT_TTL_SECONDS, payment_key
from projections.engine import projections
from projections.models import MerchantDailySummary, PaymentView, ProjectionState
from projections.payments import PAYMENTS
from projections.selectors import payment_document
from projections.services import WAKE_GATE_KEY
from tests.integration.conftest import WORKER_APPLICATION_NAME, wait_for
from tests.integration.helpers import (
    ACTOR,
    DECLINED,
    card_token,
    log_size,
    merchant_client,
    payments_append,
    read_model_actual,
    read_model_expected,
    unique_merchant_id,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# Long enough for the worker to project a payment before the gate lapses, on a slow machine too.
WAKE_INTERVAL = 4.0
# Enough for several of the worker's 500-event batches, so that the kill lands inside one of them.
KILL_EVENTS = 3000


def _state() -> ProjectionState | None:
    return ProjectionState.objects.filter(name=PAYMENTS).first()


def _at_head() -> ProjectionState | None:
    """The payments projection's state once its checkpoint is at the head of the log."""
    state = _state()
    if state is None or Checkpoint(state.checkpoint_transaction, state.checkpoint_position) != eventstore.head():
        return None
    return state


def _caught_up() -> ProjectionState | None:
    """The state at the head, having read every event of the log once (the tables and the state were flushed
    before the test, so the projection started from the first event)."""
    state = _at_head()
    if state is not None:
        total, _ = log_size()
        assert state.events_applied == total, f"{state.events_applied} events applied for {total} in the log"
    return state


def test_appended_payment_reaches_read_table_and_cache(worker, redis_db):
    # given a vaulted card and a running worker whose beat stays quiet: only the wake-ups sent through the broker
    # after each commit can bring the events in
    merchant = unique_merchant_id("live")
    token = card_token(merchant)
    worker.env["PROJECTIONS_CATCH_UP_SECONDS"] = "3600"
    worker.start()
    # when a payment is initiated, authorized, partly captured and partly refunded through the services
    amount = Money(1000, "JPY")
    payment = services.payment_initiate(
        merchant_id=merchant, amount=amount, payment_method_token=token, description="order 1", actor=ACTOR
    )
    services.payment_authorize(payment_id=payment.id, actor=ACTOR)
    services.payment_capture(payment_id=payment.id, amount=Money(800, "JPY"), actor=ACTOR)
    services.payment_refund(payment_id=payment.id, amount=Money(300, "JPY"), actor=ACTOR)

    # then Redis soon holds the final state, as the read table has it
    def cached_final() -> dict | None:
        raw = redis_db.client().get(payment_key(payment.id))
        document = json.loads(raw) if raw else None
        return document if document and document["version"] == 4 else None

    document = wait_for(cached_final, what="payment:{id} at version 4 in Redis", worker=worker)
    row = PaymentView.objects.get(payment_id=payment.id)
    assert (row.status, row.currency, row.amount, row.authorized_amount, row.captured_amount) == (
        "partially_refunded",
        "JPY",
        1000,
        1000,
        800,
    )
    assert (row.refunded_amount, row.version, row.merchant_id) == (300, 4, merchant)
    assert (row.token, row.brand, row.last4, row.description) == (token, "visa", "4242", "order 1")
    assert row.authorization_code
    assert None not in (row.authorized_at, row.captured_at, row.refunded_at)
    assert document == payment_document(row)
    assert 0 < redis_db.client().ttl(payment_key(payment.id)) <= PAYMENT_TTL_SECONDS
    daily = MerchantDailySummary.objects.get(merchant_id=merchant)
    assert (daily.currency, daily.captured_count, daily.captured_amount) == ("JPY", 1, 800)
    assert (daily.refunded_count, daily.refunded_amount) == (1, 300)
    # and the API answers from the cache
    response = merchant_client(merchant).get(f"/api/v1/payments/{payment.id}")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["freshness"]["source"] == "cache"
    assert body["freshness"]["read_model_version"] == 4
    assert body["captured_amount"] == {"amount": 800, "currency": "JPY"}
    assert body["refunded_amount"] == {"amount": 300, "currency": "JPY"}
    assert body["status"] == "partially_refunded"
    assert worker.tasks_succeeded("projections.tasks.projections_catch_up_task") == 0


def test_a_commit_made_while_the_wake_up_gate_holds_is_projected_at_the_interval_s_end(worker, settings, monkeypatch):
    # given a running worker whose beat stays quiet, a wake-up interval of a few seconds for it and for this
    # process, and no gate taken yet
    settings.PROJECTIONS_WAKE_INTERVAL_SECONDS = WAKE_INTERVAL
    worker.env["PROJECTIONS_WAKE_INTERVAL_SECONDS"] = str(WAKE_INTERVAL)
    worker.env["PROJECTIONS_CATCH_UP_SECONDS"] = "3600"
    worker.start()
    cache.client().delete(WAKE_GATE_KEY)
    monkeypatch.setattr(projection_services, "_quiet_until", 0.0)
    merchant = unique_merchant_id("trail")
    token = card_token(merchant)

    def projected(payment_id: uuid.UUID) -> bool:
        return PaymentView.objects.filter(payment_id=payment_id).exists()

    def initiate(amount: int) -> uuid.UUID:
        money = Money(amount, "JPY")
        return services.payment_initiate(merchant_id=merchant, amount=money, payment_method_token=token, actor=ACTOR).id

    # when a payment is initiated, its commit's wake-up has the worker project it, and a second payment is
    # initiated while the gate still holds: its commit sends no wake-up
    first = initiate(100)
    wait_for(lambda: projected(first), what="the first payment in the read table", worker=worker)
    assert cache.client().pttl(WAKE_GATE_KEY) > 0, "the first projection took longer than the interval"
    second = initiate(200)
    # then the worker's trailing wake-up, at the interval's end, projects the second one too
    wait_for(lambda: projected(second), what="the second payment in the read table", worker=worker)


def test_worker_killed_mid_batch_applies_every_event_exactly_once(worker, settings):
    # given the projection at the head of the log (earlier tests' events are not this test's business)
    before, start = log_size()
    ProjectionState.objects.create(
        name=PAYMENTS, checkpoint_transaction=start.transaction_id, checkpoint_position=start.position
    )
    # and thousands of events appended while no worker runs (beat will find them)
    settings.PROJECTIONS_WAKE_ON_COMMIT = False
    merchant = unique_merchant_id("kill")
    ids = payments_append(merchant_id=merchant, events_at_least=KILL_EVENTS)
    total, head = log_size()
    ours = total - before
    # when the worker is SIGKILLed inside a batch (written, not committed), after its first batch committed
    worker.start()

    def writing_later_batch() -> tuple | None:
        """The worker's session, once a batch has committed, inside a later one that has written (uncommitted)."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT a.state, a.query FROM pg_stat_activity a, projections_projectionstate s "
                "WHERE a.application_name = %s AND a.datname = current_database() AND a.xact_start IS NOT NULL "
                # the handlers' statements, or the range applied in SQL (projections.payments._INITIATED, _FOLDED)
                "AND a.query ~ '^((INSERT INTO|UPDATE) projections_(payment|merchant_daily) |WITH logged AS )' "
                "AND s.name = %s AND s.events_applied > 0 AND a.xact_start > s.updated_at",
                [WORKER_APPLICATION_NAME, PAYMENTS],
            )
            return cursor.fetchone()

    wait_for(writing_later_batch, what="a batch writing after the first commit", interval=0.001, worker=worker)
    worker.kill()
    state = _state()
    assert 0 < state.events_applied < ours, (
        f"the worker was not killed mid-run ({state.events_applied} of {ours} applied): raise KILL_EVENTS"
    )
    # then the tables hold exactly the events up to the checkpoint: they moved together, the open batch is gone
    at_kill = Checkpoint(state.checkpoint_transaction, state.checkpoint_position)
    projected = read_model_actual(ids, [merchant])
    assert 0 < len(projected.payments) < len(ids)
    assert projected == read_model_expected(ids, upto=at_kill)

    # when it starts again
    worker.start()
    state = wait_for(_at_head, what="the restarted worker to catch up", worker=worker)
    # then every event was applied once: the checkpoint's count, each payment's row, the daily sums
    assert state.events_applied == ours
    # (at or past the head seen before: the worker's ledger bookings append events of their own)
    assert Checkpoint(state.checkpoint_transaction, state.checkpoint_position) >= head
    assert state.error == ""
    expected = read_model_expected(ids)
    assert len(expected.payments) == len(ids)
    assert sum(figures[-1] for figures in expected.payments.values()) >= KILL_EVENTS
    actual = read_model_actual(ids, [merchant])
    assert actual.payments == expected.payments
    assert actual.daily == expected.daily
    assert {status for status, *_ in actual.payments.values()} == {
        "initiated",
        "failed",
        "cancelled",
        "authorized",
        "captured",
        "partially_refunded",
        "refunded",
    }


def _connect(*, autocommit: bool = False) -> psycopg.Connection:
    settings = connection.settings_dict
    return psycopg.connect(
        dbname=settings["NAME"],
        user=settings["USER"] or None,
        password=settings["PASSWORD"] or None,
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
        autocommit=autocommit,
    )


def _insert_initiated(conn: psycopg.Connection, payment_id: uuid.UUID, merchant_id: str) -> tuple[int, int]:
    """A PaymentInitiated row by plain SQL on `conn` (its transaction left as it is): (position, xid)."""
    event = PaymentInitiated(
        occurred_at=timezone.now(),
        payment_id=payment_id,
        merchant_id=merchant_id,
        amount=Money(500, "JPY"),
        payment_method={"token": "tok_integration", "brand": "visa", "last4": "4242"},
        description="raw",
        initiated_by=ACTOR,
    )
    return conn.execute(
        "INSERT INTO fintech_event (event_id, aggregate_id, aggregate_type, event_type, event_version, event_data, "
        "version, occurred_at) VALUES (%s, %s, 'payment', %s, %s, %s::jsonb, 1, %s) "
        "RETURNING position, transaction_id::text::bigint",
        [
            uuid.uuid4(),
            payment_id,
            event.event_type,
            event.event_version,
            json.dumps(event.to_data()),
            event.occurred_at,
        ],
    ).fetchone()


def test_appends_committed_out_of_order_are_both_projected(worker):
    merchant = unique_merchant_id("order")
    first, second = uuid.uuid4(), uuid.uuid4()
    worker.start()
    conn_a, conn_b = _connect(), _connect()
    try:
        # given append A takes the lower position and stays open while append B commits
        position_a, xid_a = _insert_initiated(conn_a, first, merchant)
        position_b, xid_b = _insert_initiated(conn_b, second, merchant)
        conn_b.commit()
        assert position_a < position_b
        assert xid_a < xid_b
        # then, however often the worker runs meanwhile, it steps over neither (B waits for A)
        runs = worker.tasks_succeeded()
        wait_for(
            lambda: worker.tasks_succeeded() >= runs + 2,
            what="two projection runs while A is open",
            timeout=15,
            worker=worker,
        )
        assert not PaymentView.objects.filter(payment_id__in=[first, second]).exists()
        # when A commits, after B
        conn_a.commit()
    finally:
        conn_a.close()
        conn_b.close()
    # then both are projected
    wait_for(
        lambda: PaymentView.objects.filter(payment_id__in=[first, second]).count() == 2,
        what="both payments in the read table",
        worker=worker,
    )
    assert read_model_actual([first, second], [merchant]) == read_model_expected([first, second])
    state = wait_for(_caught_up, what="the checkpoint at the head", worker=worker)
    assert (state.checkpoint_transaction, state.checkpoint_position) >= (xid_b, position_b)


def _table_contents() -> dict[str, tuple[list[str], list[tuple]]]:
    """Column names and every row, in a stable order, of both read tables (the daily table's identity ids left
    out: they only say in which order rows were first inserted)."""
    queries = {
        "projections_payment": "SELECT * FROM projections_payment ORDER BY payment_id",
        "projections_merchant_daily": (
            "SELECT merchant_id, day, currency, captured_count, captured_amount, refunded_count, refunded_amount "
            "FROM projections_merchant_daily ORDER BY merchant_id, day, currency"
        ),
    }
    contents = {}
    with connection.cursor() as cursor:
        for table, query in queries.items():
            cursor.execute(query)
            contents[table] = ([column.name for column in cursor.description], cursor.fetchall())
    return contents


def _payments_of_every_status(merchant_id: str) -> dict[str, uuid.UUID]:
    visa, declined = card_token(merchant_id), card_token(merchant_id, DECLINED)
    ids = {}

    def initiate(minor: int, currency: str = "JPY", token: str = visa) -> uuid.UUID:
        return services.payment_initiate(
            merchant_id=merchant_id, amount=Money(minor, currency), payment_method_token=token, actor=ACTOR
        ).id

    ids["initiated"] = initiate(1000)
    ids["cancelled"] = initiate(1100)
    services.payment_cancel(payment_id=ids["cancelled"], actor=ACTOR)
    ids["failed"] = initiate(1200, token=declined)
    services.payment_authorize(payment_id=ids["failed"], actor=ACTOR)
    for status, minor, currency in (
        ("authorized", 1300, "JPY"),
        ("captured", 1400, "USD"),
        ("partially_refunded", 1500, "USD"),
        ("refunded", 1600, "JPY"),
    ):
        ids[status] = initiate(minor, currency)
        services.payment_authorize(payment_id=ids[status], actor=ACTOR)
        if status == "authorized":
            continue
        services.payment_capture(payment_id=ids[status], actor=ACTOR)
        if status == "partially_refunded":
            services.payment_refund(payment_id=ids[status], amount=Money(200, currency), actor=ACTOR)
        if status == "refunded":
            services.payment_refund(payment_id=ids[status], amount=Money(600, currency), actor=ACTOR)
            services.payment_refund(payment_id=ids[status], amount=Money(1000, currency), actor=ACTOR)
    return ids


def _quiet() -> ProjectionState | None:
    """The payments state once every projection is at the head at once: the ledger's bookings append events of
    their own after a capture, which move the head past a payments projection that had caught up."""
    head = eventstore.head()
    at = {
        name: Checkpoint(tx, pos)
        for name, tx, pos in ProjectionState.objects.values_list(
            "name", "checkpoint_transaction", "checkpoint_position"
        )
    }
    if set(at) != set(projections()) or any(checkpoint != head for checkpoint in at.values()):
        return None
    return _caught_up()


def test_replay_rebuilds_the_same_tables_as_live_projection(worker):
    # given payments of every status projected live by the worker
    merchant = unique_merchant_id("replay")
    worker.start()
    ids = _payments_of_every_status(merchant)
    live_state = wait_for(_quiet, what="every projection to catch up", worker=worker)
    live = _table_contents()
    assert {row[0] for row in live["projections_payment"][1]} >= set(ids.values())
    statuses = dict(PaymentView.objects.filter(payment_id__in=ids.values()).values_list("payment_id", "status"))
    assert statuses == {payment_id: status for status, payment_id in ids.items()}

    # when the projection is replayed into fresh tables and swapped in, the worker running beside it
    out = io.StringIO()
    call_command("replay_projection", PAYMENTS, stdout=out)
    assert "replayed" in out.getvalue()

    # then both tables hold exactly what the live projection had built, at the same checkpoint
    assert _table_contents() == live
    state = _state()
    assert (state.checkpoint_transaction, state.checkpoint_position, state.events_applied) == (
        live_state.checkpoint_transaction,
        live_state.checkpoint_position,
        live_state.events_applied,
    )
    assert state.error == ""
    # and the live projection goes on into the swapped-in tables
    services.payment_capture(payment_id=ids["authorized"], actor=ACTOR)
    wait_for(
        lambda: PaymentView.objects.filter(payment_id=ids["authorized"], status="captured").exists(),
        what="the capture after the replay to be projected",
        worker=worker,
    )
    assert read_model_actual(list(ids.values()), [merchant]) == read_model_expected(list(ids.values()))
