"""The read side when things break, in this process on the real database and Redis: a handler that fails stops
its projection at that event and says so until it is fixed; Redis down leaves reads on the table and the
projection moving, and one command refills Redis once it is back."""

from __future__ import annotations

import datetime as dt
import io
import json
import time
import uuid
from collections.abc import Iterator

import pytest
from django.core.management import call_command
from django.db import connection

from fintech import eventstore
from fintech.eventstore import Checkpoint
from fintech.money import Money
from ledger import services as ledger_services
from ledger.bookings import LEDGER_BOOKINGS
from ledger.models import Account
from payments import services
from projections import engine
from projections import services as projection_services
from projections.balances import BALANCES
from projections.cache import balance_from_hash, balance_key, payment_key
from projections.engine import Projection, projection_register, projection_run
from projections.models import CacheMiss, PaymentView, ProjectionState
from projections.payments import PAYMENTS
from projections.tasks import projection_run_task, projections_catch_up_task, projections_wake_task
from tests.integration.helpers import ACTOR, card_token, merchant_client, payments_append, unique_merchant_id

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

FAILING = "integration_failing"
SEEN_TABLE = "integration_failing_seen"
PAYMENT_EVENT_TYPES = (
    "PaymentInitiated",
    "PaymentAuthorized",
    "PaymentFailed",
    "PaymentCaptured",
    "PaymentRefunded",
    "PaymentCancelled",
)
BATCH = 7
DEAD_REDIS = "redis://127.0.0.1:1/0"


def _log() -> list[tuple[uuid.UUID, str, Checkpoint]]:
    """(event id, type, checkpoint) of every event in the log, in the order projections read it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT event_id, event_type, transaction_id::text::bigint, position FROM fintech_event "
            "ORDER BY transaction_id, position"
        )
        return [(event_id, kind, Checkpoint(xid, position)) for event_id, kind, xid, position in cursor.fetchall()]


def _seen() -> list[uuid.UUID]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT event_id FROM {SEEN_TABLE} ORDER BY seq")  # noqa: S608 - a constant
        return [row[0] for row in cursor.fetchall()]


@pytest.fixture
def failing_projection(transactional_db) -> Iterator[dict[str, object]]:
    """A projection recording each payment event in a table of its own, which raises on `control["fail_on"]`
    (an event id) while set. Removed from the registry, and its table dropped, afterwards."""
    control: dict[str, object] = {"fail_on": None}

    def handler(cursor, tables, recorded):
        if recorded.event_id == control["fail_on"]:
            raise RuntimeError(f"cannot project {recorded.event_type} {recorded.event_id}")
        cursor.execute(
            f"INSERT INTO {tables[SEEN_TABLE]} (event_id) VALUES (%s)",  # noqa: S608 - the projection's table
            [recorded.event_id],
        )

    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {SEEN_TABLE} (seq bigserial PRIMARY KEY, event_id uuid NOT NULL)")
    projection_register(
        Projection(name=FAILING, tables=(SEEN_TABLE,), handlers=dict.fromkeys(PAYMENT_EVENT_TYPES, handler))
    )
    try:
        yield control
    finally:
        engine._REGISTRY.pop(FAILING, None)
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {SEEN_TABLE}")


def test_failing_handler_stops_at_its_event_then_resumes_after_fix(failing_projection):
    # given payment events in the log, one of which the handler cannot apply; chosen in the middle of a batch
    payments_append(merchant_id=unique_merchant_id("failing"), events_at_least=30)
    log = _log()
    failing_index = next(i for i in range(len(log) - 12, 0, -1) if i % BATCH == 3 and log[i][1] in PAYMENT_EVENT_TYPES)
    failing_id = log[failing_index][0]
    failing_projection["fail_on"] = failing_id
    handled = [event_id for event_id, kind, _ in log if kind in PAYMENT_EVENT_TYPES]

    # when the projection runs
    read = projection_run(name=FAILING, batch_size=BATCH)

    # then it applied every event it handles before the failing one, once, and its checkpoint sits at the last
    # of them (events of other types are passed over, not applied)
    before = [i for i in range(failing_index) if log[i][1] in PAYMENT_EVENT_TYPES]
    state = ProjectionState.objects.get(name=FAILING)
    assert read == len(before)
    assert state.events_applied == len(before)
    assert Checkpoint(state.checkpoint_transaction, state.checkpoint_position) == log[before[-1]][2]
    assert _seen() == [event_id for event_id, kind, _ in log[:failing_index] if kind in PAYMENT_EVENT_TYPES]
    # and it reports the error and the event
    assert state.error_event_id == failing_id
    assert "RuntimeError: cannot project" in state.error
    assert str(failing_id) in state.error
    assert state.error_at is not None
    out = io.StringIO()
    call_command("projection_status", stdout=out)
    assert f"stopped at event {failing_id}" in out.getvalue()

    # when it runs again, still broken, it stays where it is
    assert projection_run(name=FAILING, batch_size=BATCH) == 0
    again = ProjectionState.objects.get(name=FAILING)
    assert (again.checkpoint_transaction, again.checkpoint_position, again.events_applied) == (
        state.checkpoint_transaction,
        state.checkpoint_position,
        state.events_applied,
    )
    assert again.error_event_id == failing_id
    assert len(_seen()) == len([e for e, kind, _ in log[:failing_index] if kind in PAYMENT_EVENT_TYPES])

    # when the handler is fixed, it goes on from the failing event to the head, and the error is cleared
    failing_projection["fail_on"] = None
    assert projection_run(name=FAILING, batch_size=BATCH) == len(handled) - len(before)
    fixed = ProjectionState.objects.get(name=FAILING)
    assert Checkpoint(fixed.checkpoint_transaction, fixed.checkpoint_position) == eventstore.head() == log[-1][2]
    assert fixed.events_applied == len(handled)
    assert (fixed.error, fixed.error_event_id, fixed.error_at) == ("", None, None)
    assert _seen() == handled


def _cache_at(settings, location: str) -> None:
    settings.CACHES = {**settings.CACHES, "default": {**settings.CACHES["default"], "LOCATION": location}}


def test_redis_down_reads_fall_back_to_table_and_rebuild_cache_refills_it(redis_db, settings):
    # given a captured payment, not projected yet
    merchant = unique_merchant_id("redis")
    payment = services.payment_initiate(
        merchant_id=merchant, amount=Money(1500, "JPY"), payment_method_token=card_token(merchant), actor=ACTOR
    )
    services.payment_authorize(payment_id=payment.id, actor=ACTOR)
    services.payment_capture(payment_id=payment.id, actor=ACTOR)
    client = merchant_client(merchant)
    url = f"/api/v1/payments/{payment.id}"

    # when Redis is down (nothing listens where the cache points)
    _cache_at(settings, DEAD_REDIS)
    # then the projection still moves its checkpoint to the head
    assert projection_run(name=PAYMENTS) > 0
    state = ProjectionState.objects.get(name=PAYMENTS)
    assert Checkpoint(state.checkpoint_transaction, state.checkpoint_position) == eventstore.head()
    assert state.error == ""
    # and the API answers from the read table
    started = dt.datetime.now(tz=dt.UTC)
    response = client.get(url)
    elapsed = (dt.datetime.now(tz=dt.UTC) - started).total_seconds()
    assert response.status_code == 200, response.content
    from_table = response.json()
    assert from_table["freshness"]["source"] == "table"
    assert from_table["status"] == "captured"
    assert from_table["captured_amount"] == {"amount": 1500, "currency": "JPY"}
    assert from_table["freshness"]["projection_checkpoint_at"]
    assert elapsed < 5, f"a read with Redis down took {elapsed:.1f} s"

    # when Redis is back, the entry the outage missed is not there: reads stay on the table
    _cache_at(settings, redis_db.cache_url)
    assert redis_db.client().get(payment_key(payment.id)) is None
    assert client.get(url).json()["freshness"]["source"] == "table"
    # then rebuild_cache refills it, and the API answers the same document from the cache
    out = io.StringIO()
    call_command("rebuild_cache", PAYMENTS, stdout=out)
    assert "cache entries written" in out.getvalue()
    assert redis_db.client().get(payment_key(payment.id)) is not None
    response = client.get(url)
    assert response.status_code == 200, response.content
    from_cache = response.json()
    assert from_cache["freshness"]["source"] == "cache"
    assert {k: v for k, v in from_cache.items() if k != "freshness"} == {
        k: v for k, v in from_table.items() if k != "freshness"
    }


def test_redis_down_commands_commit_and_caches_refill_on_read_when_it_returns(redis_db, settings):
    # given Redis down (nothing listens where the cache points)
    _cache_at(settings, DEAD_REDIS)
    merchant = unique_merchant_id("refill")
    client = merchant_client(merchant)
    token = card_token(merchant)
    # when a merchant pays, authorizes and captures through the API
    created = client.post(
        "/api/v1/payments",
        {"amount": {"amount": 1400, "currency": "JPY"}, "payment_method": {"token": token}},
        format="json",
    )
    assert created.status_code == 201, created.content
    url = f"/api/v1/payments/{created.json()['id']}"
    assert client.post(f"{url}/authorize", {}, format="json").status_code == 200
    assert client.post(f"{url}/capture", {}, format="json").status_code == 200
    # then the commands committed, and the projections (payments, bookings, balances) reach the head without Redis
    for name in (PAYMENTS, LEDGER_BOOKINGS, BALANCES, BALANCES):
        projection_run(name=name)
    account_id = Account.objects.get(owner_type="merchant", owner_id=merchant, currency="JPY").id
    balance_url = f"/api/v1/accounts/{account_id}/balance"
    assert client.get(url).json()["freshness"]["source"] == "table"
    assert client.get(balance_url).json()["source"] == "table"

    # when Redis is back, with nothing in it for the outage's writes
    _cache_at(settings, redis_db.cache_url)
    assert redis_db.client().get(payment_key(created.json()["id"])) is None
    # then a read answers from the table and puts what it read in the cache, so the next one is a cache hit,
    # with no operator running rebuild_cache
    from_table = client.get(url).json()
    from_cache = client.get(url).json()
    assert (from_table["freshness"]["source"], from_cache["freshness"]["source"]) == ("table", "cache")
    assert {k: v for k, v in from_cache.items() if k != "freshness"} == {
        k: v for k, v in from_table.items() if k != "freshness"
    }
    assert from_cache["status"] == "captured"
    balance_from_table = client.get(balance_url).json()
    balance_from_cache = client.get(balance_url).json()
    assert (balance_from_table["source"], balance_from_cache["source"]) == ("table", "cache")
    assert balance_from_cache["pending"] == balance_from_table["pending"] != {"amount": 0, "currency": "JPY"}


def test_broker_down_commands_commit_and_the_broker_is_not_tried_on_every_commit(
    broker_down, settings, monkeypatch, caplog
):
    # given the broker down, wake-ups on, and a record of every attempt to send one
    settings.PROJECTIONS_WAKE_ON_COMMIT = True
    monkeypatch.setattr(projection_services, "_quiet_until", 0.0)
    attempts = []
    real_delay = projections_wake_task.delay

    def counted_delay(*args, **kwargs):
        attempts.append(1)
        return real_delay(*args, **kwargs)

    monkeypatch.setattr(projections_wake_task, "delay", counted_delay)
    merchant = unique_merchant_id("broker")
    token = card_token(merchant)
    # when payments are made further apart than the wake-up interval, which would each send a wake-up
    made = []
    for _ in range(3):
        made.append(
            services.payment_initiate(
                merchant_id=merchant, amount=Money(1200, "JPY"), payment_method_token=token, actor=ACTOR
            )
        )
        time.sleep(settings.PROJECTIONS_WAKE_INTERVAL_SECONDS * 1.5)
    # then every command committed
    assert [eventstore.stream_version(payment.id) for payment in made] == [1, 1, 1]
    # and the broker was tried once: after a failed send the process backs off instead of making every
    # commit wait on a broker that is down (the failure is logged; beat's catch-up covers what is committed)
    assert len(attempts) == 1
    assert any("event subscriber" in record.getMessage() for record in caplog.records)
    # and the projections catch up from the log once run, as beat does when the broker is back
    projection_run(name=PAYMENTS)
    assert ProjectionState.objects.get(name=PAYMENTS).error == ""
    assert PaymentView.objects.filter(merchant_id=merchant).count() == 3


def test_redis_outage_missed_cache_writes_are_put_right_by_the_projections_once_it_returns(redis_db, settings):
    # given a funded customer account and a captured payment, projected with Redis up: both in the cache
    merchant = unique_merchant_id("outage")
    account = ledger_services.account_open(
        owner_type="customer", owner_id=unique_merchant_id("cust"), currency="JPY", kind="customer_balance", actor=ACTOR
    )
    ledger_services.account_deposit(account_id=account.id, amount=Money(2_000, "JPY"), actor=ACTOR)
    payment = services.payment_initiate(
        merchant_id=merchant, amount=Money(1_600, "JPY"), payment_method_token=card_token(merchant), actor=ACTOR
    )
    services.payment_authorize(payment_id=payment.id, actor=ACTOR)
    services.payment_capture(payment_id=payment.id, actor=ACTOR)
    for name in (PAYMENTS, LEDGER_BOOKINGS, BALANCES):
        projection_run(name=name)
    assert _cached_balance(redis_db, account.id)["available"]["amount"] == 2_000
    assert json.loads(redis_db.client().get(payment_key(payment.id)))["status"] == "captured"

    # when Redis cannot be reached (it keeps what it holds, as in a partition or a restart from its last save)
    # while the account takes a deposit, another account is opened, the payment is refunded, and the
    # projections apply all of it to their tables
    _cache_at(settings, DEAD_REDIS)
    ledger_services.account_deposit(account_id=account.id, amount=Money(500, "JPY"), actor=ACTOR)
    opened = ledger_services.account_open(
        owner_type="customer", owner_id=unique_merchant_id("cust"), currency="JPY", kind="customer_balance", actor=ACTOR
    )
    services.payment_refund(payment_id=payment.id, amount=Money(600, "JPY"), actor=ACTOR)
    for name in (PAYMENTS, LEDGER_BOOKINGS, BALANCES):
        projection_run(name=name)
    # and Redis is back, holding what it held before the outage
    _cache_at(settings, redis_db.cache_url)
    assert _cached_balance(redis_db, account.id)["available"]["amount"] == 2_000
    assert _cached_balance(redis_db, opened.id) is None

    # then the next run of each projection (the worker's, on a wake-up or beat's catch-up every few seconds)
    # puts the cache right with no operator: the new balance, the new account, the refunded payment
    for name in engine.projections():
        projection_run_task(name)
    ledger = Account.objects.get(id=account.id)
    cached = _cached_balance(redis_db, account.id)
    assert (cached["available"]["amount"], cached["version"]) == (2_500, ledger.version)
    assert _cached_balance(redis_db, opened.id) is not None
    cached_payment = json.loads(redis_db.client().get(payment_key(payment.id)))
    assert (cached_payment["status"], cached_payment["refunded_amount"]["amount"]) == ("partially_refunded", 600)
    # and the records of what was missed are gone: a later run has nothing to repair
    assert not CacheMiss.objects.exists()


def _cached_balance(redis_db, account_id) -> dict | None:
    fields = redis_db.client().hgetall(balance_key(account_id))
    return balance_from_hash(fields) if fields else None


def test_redis_that_lost_its_data_is_refilled_by_the_catch_up(redis_db, settings):
    # given funded accounts, projected while Redis answered, and a catch-up that saw that Redis
    accounts = []
    for funded in (700, 900):
        account = ledger_services.account_open(
            owner_type="customer",
            owner_id=unique_merchant_id("lost"),
            currency="JPY",
            kind="customer_balance",
            actor=ACTOR,
        )
        ledger_services.account_deposit(account_id=account.id, amount=Money(funded, "JPY"), actor=ACTOR)
        accounts.append(account)
    projection_run(name=BALANCES)
    projections_catch_up_task()
    assert _cached_balance(redis_db, accounts[0].id)["available"]["amount"] == 700

    # when Redis loses what it held (a restart without persistence, a flush, a failover to an empty replica), with
    # nothing for the projections to apply and nobody reading those balances
    redis_db.client().flushdb()

    # then beat's next catch-up puts every balance back, with no operator and no read
    projections_catch_up_task()
    assert [_cached_balance(redis_db, account.id)["available"]["amount"] for account in accounts] == [700, 900]
