"""The event store's contract suite, against real PostgreSQL.

Events outlive every test (the table is unmanaged and append-only), so each test works on streams of its own
and scopes its assertions to them.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid

import psycopg
import pytest
from django.db import connection, transaction

from fintech import eventstore
from fintech.eventstore import Checkpoint, ConcurrencyConflict, RecordedEvent
from fintech.money import Money
from payments import services
from payments.domain import INITIATED, PaymentInitiated, PaymentMethod
from tests.fintech.helpers import (
    AGGREGATE_TYPE,
    KernelAmountRecorded,
    KernelOrphaned,
    event_count,
    event_rows,
    new_stream,
    noted,
    now,
    read_everything,
    read_streams,
    wait_for,
)

THREAD_TIMEOUT = 30


def _mine(events: list[RecordedEvent], *streams: uuid.UUID) -> list[RecordedEvent]:
    return [event for event in events if event.stream_id in streams]


def _append_then_fail(stream: uuid.UUID) -> None:
    """A caller's transaction that appends, then fails and rolls back."""
    with transaction.atomic():
        eventstore.append(stream, [noted()], 0)
        raise RuntimeError("the caller fails after appending")


def _notes(events: list[RecordedEvent]) -> list[str]:
    return [event.event.note for event in events]


# append and load ------------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_append_then_load_returns_recorded_events():
    # given
    stream = new_stream()
    first = KernelAmountRecorded(
        occurred_at=dt.datetime(2024, 5, 17, 10, 30, 15, 123456, tzinfo=dt.UTC),
        amount=Money(1234, "KWD"),
        reference=uuid.uuid4(),
        value_date=dt.date(2024, 5, 20),
        recorded_at=dt.datetime(2024, 5, 17, 10, 30, tzinfo=dt.timezone(dt.timedelta(hours=9))),
        tags=("card", "refund"),
        details={"acquirer": {"code": "00"}},
        counterparty=uuid.uuid4(),
    )
    second = noted("second")
    # when
    appended = eventstore.append(stream, [first, second], 0, metadata={"actor": "user:ada", "trace_id": "t-1"})
    loaded = eventstore.load(stream)
    # then
    assert loaded == appended
    assert [r.event for r in loaded] == [first, second]
    assert [r.version for r in loaded] == [1, 2]
    assert all(r.stream_id == stream and r.aggregate_type == AGGREGATE_TYPE for r in loaded)
    assert all(r.metadata == {"actor": "user:ada", "trace_id": "t-1"} for r in loaded)
    assert [r.event_type for r in loaded] == ["KernelAmountRecorded", "KernelNoted"]
    assert loaded[0].occurred_at == first.occurred_at
    assert loaded[0].created_at is not None
    assert len({r.event_id for r in loaded}) == 2
    assert loaded[0].checkpoint < loaded[1].checkpoint
    assert eventstore.stream_version(stream) == 2


@pytest.mark.django_db
def test_append_stores_json_columns_as_sent():
    # given
    stream = new_stream()
    # when
    [recorded] = eventstore.append(stream, [noted("n")], 0, metadata={"actor": "a"})
    # then the row holds plain JSON, readable by any client
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT event_id, aggregate_type, event_type, event_version, event_data::text, metadata::text, version "
            "FROM fintech_event WHERE aggregate_id = %s",
            [stream],
        )
        event_id, aggregate_type, event_type, event_version, data, metadata, version = cursor.fetchone()
    assert (event_id, aggregate_type, event_type, event_version, version) == (
        recorded.event_id,
        AGGREGATE_TYPE,
        "KernelNoted",
        1,
        1,
    )
    assert json.loads(data) == {"note": "n"}
    assert json.loads(metadata) == {"actor": "a"}


@pytest.mark.django_db
def test_load_unknown_stream_returns_nothing():
    assert eventstore.load(new_stream()) == []
    assert eventstore.stream_version(new_stream()) is None


@pytest.mark.django_db
def test_load_after_version_returns_later_events_only():
    stream = new_stream()
    eventstore.append(stream, [noted("1"), noted("2"), noted("3")], 0)
    assert _notes(eventstore.load(stream, after_version=1)) == ["2", "3"]
    assert eventstore.load(stream, after_version=3) == []


@pytest.mark.django_db
def test_append_in_batches_keeps_versions_gap_free():
    # given
    stream = new_stream()
    # when
    eventstore.append(stream, [noted("1"), noted("2"), noted("3")], 0)
    eventstore.append(stream, [noted("4")], 3)
    eventstore.append(stream, [noted("5"), noted("6")], 4)
    # then
    assert [version for version, _ in event_rows(stream)] == [1, 2, 3, 4, 5, 6]
    assert _notes(eventstore.load(stream)) == ["1", "2", "3", "4", "5", "6"]
    assert eventstore.stream_version(stream) == 6


@pytest.mark.django_db
def test_append_streams_are_independent():
    a, b = new_stream(), new_stream()
    eventstore.append(a, [noted("a1")], 0)
    eventstore.append(b, [noted("b1"), noted("b2")], 0)
    eventstore.append(a, [noted("a2")], 1)
    assert _notes(eventstore.load(a)) == ["a1", "a2"]
    assert _notes(eventstore.load(b)) == ["b1", "b2"]


@pytest.mark.django_db
def test_append_nothing_writes_nothing():
    stream = new_stream()
    before = event_count()
    assert eventstore.append(stream, [], 0) == []
    assert event_count() == before
    assert eventstore.stream_version(stream) is None


@pytest.mark.django_db
def test_append_with_negative_expected_version_rejected():
    stream = new_stream()
    with pytest.raises(ValueError, match="expected_version"):
        eventstore.append(stream, [noted()], -1)
    assert eventstore.stream_version(stream) is None


@pytest.mark.django_db
def test_append_without_aggregate_type_rejected():
    stream = new_stream()
    with pytest.raises(ValueError, match="aggregate type"):
        eventstore.append(stream, [KernelOrphaned(occurred_at=now())], 0)
    assert eventstore.stream_version(stream) is None
    assert event_rows(stream) == []


@pytest.mark.django_db
def test_append_with_explicit_aggregate_type_overrides_event_default():
    stream = new_stream()
    [recorded] = eventstore.append(stream, [KernelOrphaned(occurred_at=now())], 0, aggregate_type="kernel_other")
    assert recorded.aggregate_type == "kernel_other"
    assert eventstore.load(stream)[0].aggregate_type == "kernel_other"
    with connection.cursor() as cursor:
        cursor.execute("SELECT aggregate_type FROM fintech_stream WHERE stream_id = %s", [stream])
        assert cursor.fetchone() == ("kernel_other",)


@pytest.mark.django_db
def test_append_float_in_event_rejected_and_writes_nothing():
    # given
    stream = new_stream()
    event = KernelAmountRecorded(
        occurred_at=now(),
        amount=Money(1, "USD"),
        reference=uuid.uuid4(),
        value_date=dt.date(2024, 1, 1),
        recorded_at=now(),
        details={"rate": 0.5},
    )
    before = event_count()
    # when / then
    with pytest.raises(TypeError, match="floats"):
        eventstore.append(stream, [noted(), event], 0)
    assert event_count() == before
    assert eventstore.stream_version(stream) is None


# optimistic concurrency -----------------------------------------------------------------------------------
@pytest.mark.django_db
def test_append_at_stale_version_raises_conflict_and_writes_nothing():
    # given a stream at version 2
    stream = new_stream()
    eventstore.append(stream, [noted("1"), noted("2")], 0)
    before = event_count()
    # when a writer that read version 1 appends
    with pytest.raises(ConcurrencyConflict) as raised:
        eventstore.append(stream, [noted("stale-a"), noted("stale-b")], 1)
    # then nothing was written and the stream did not move
    assert raised.value.stream_id == stream
    assert raised.value.expected_version == 1
    assert event_count() == before
    assert event_rows(stream) == [(1, "KernelNoted"), (2, "KernelNoted")]
    assert eventstore.stream_version(stream) == 2


@pytest.mark.django_db
def test_append_at_future_version_raises_conflict_and_writes_nothing():
    stream = new_stream()
    eventstore.append(stream, [noted("1")], 0)
    before = event_count()
    with pytest.raises(ConcurrencyConflict):
        eventstore.append(stream, [noted("ahead")], 5)
    assert event_count() == before
    assert eventstore.stream_version(stream) == 1


@pytest.mark.django_db
def test_append_to_missing_stream_at_nonzero_version_raises_conflict():
    stream = new_stream()
    with pytest.raises(ConcurrencyConflict):
        eventstore.append(stream, [noted()], 1)
    assert event_rows(stream) == []
    assert eventstore.stream_version(stream) is None


@pytest.mark.django_db
def test_append_new_stream_twice_second_raises_conflict():
    # given a new stream created at expected version 0
    stream = new_stream()
    eventstore.append(stream, [noted("first")], 0)
    before = event_count()
    # when another writer also believes the stream is new
    with pytest.raises(ConcurrencyConflict):
        eventstore.append(stream, [noted("second")], 0)
    # then only the first one's event exists
    assert event_count() == before
    assert _notes(eventstore.load(stream)) == ["first"]
    assert eventstore.stream_version(stream) == 1


@pytest.mark.django_db
def test_conflict_inside_caller_transaction_leaves_it_usable():
    # given a caller's transaction that appended to one stream, then conflicts on another
    ok, taken = new_stream(), new_stream()
    eventstore.append(taken, [noted("taken")], 0)
    with transaction.atomic():
        eventstore.append(ok, [noted("ok")], 0)
        with pytest.raises(ConcurrencyConflict):
            eventstore.append(taken, [noted("late")], 0)
        # then the transaction goes on: the conflict rolled back only the failed append
        eventstore.append(ok, [noted("ok-2")], 1)
    assert _notes(eventstore.load(ok)) == ["ok", "ok-2"]
    assert _notes(eventstore.load(taken)) == ["taken"]


@pytest.mark.django_db
def test_append_rolled_back_with_caller_transaction_leaves_nothing():
    stream = new_stream()
    with pytest.raises(RuntimeError, match="after appending"):
        _append_then_fail(stream)
    assert event_rows(stream) == []
    assert eventstore.stream_version(stream) is None


def _race(stream: uuid.UUID, expected_version: int, notes: list[str]) -> list[tuple[str, object]]:
    """Append one event per note from its own thread and connection, all inside their transaction at once."""
    barrier = threading.Barrier(len(notes))
    results: list[tuple[str, object] | None] = [None] * len(notes)

    def writer(index: int, note: str) -> None:
        try:
            with transaction.atomic():
                # Each writer has read the stream and holds an open transaction when the barrier lets them go.
                assert eventstore.stream_version(stream) == (expected_version or None)
                barrier.wait(timeout=THREAD_TIMEOUT)
                recorded = eventstore.append(stream, [noted(note)], expected_version)
                # The winner holds its row lock a moment so the loser really waits on it.
                time.sleep(0.3)
            results[index] = ("ok", recorded)
        except Exception as exc:  # noqa: BLE001 - reported to the test, which asserts on it
            results[index] = ("error", exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(i, note), daemon=True) for i, note in enumerate(notes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=THREAD_TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), "a writer did not finish"
    return results


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_at_same_version_exactly_one_wins():
    # given a committed stream at version 1
    stream = new_stream()
    eventstore.append(stream, [noted("v1")], 0)
    # when two connections append at version 1 at the same time
    results = _race(stream, 1, ["left", "right"])
    # then one wins, the other gets a conflict, and the stream has one event at version 2
    outcomes = sorted(kind for kind, _ in results)
    assert outcomes == ["error", "ok"], results
    [error] = [value for kind, value in results if kind == "error"]
    [winner] = [value for kind, value in results if kind == "ok"]
    assert isinstance(error, ConcurrencyConflict)
    assert event_rows(stream) == [(1, "KernelNoted"), (2, "KernelNoted")]
    assert _notes(eventstore.load(stream)) == ["v1", winner[0].event.note]
    assert eventstore.stream_version(stream) == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_of_same_stream_exactly_one_wins():
    # given a stream nobody has written
    stream = new_stream()
    # when three connections create it at once
    results = _race(stream, 0, ["a", "b", "c"])
    # then exactly one wins
    assert sorted(kind for kind, _ in results) == ["error", "error", "ok"], results
    assert all(isinstance(value, ConcurrencyConflict) for kind, value in results if kind == "error")
    assert [version for version, _ in event_rows(stream)] == [1]
    assert eventstore.stream_version(stream) == 1


# the global log -------------------------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_read_all_returns_committed_events_in_checkpoint_order():
    # given events of two streams committed in separate transactions
    a, b = new_stream(), new_stream()
    eventstore.append(a, [noted("a1"), noted("a2")], 0)
    eventstore.append(b, [noted("b1")], 0)
    eventstore.append(a, [noted("a3")], 2)
    # when
    mine = read_streams(a, b, count=4)
    # then each event once, in append order, each stream in version order
    assert _notes(mine) == ["a1", "a2", "b1", "a3"]
    assert [c.checkpoint for c in mine] == sorted(c.checkpoint for c in mine)
    assert [r.version for r in mine if r.stream_id == a] == [1, 2, 3]


@pytest.mark.django_db(transaction=True)
def test_read_all_in_small_pages_returns_each_event_once():
    # given
    stream = new_stream()
    appended = eventstore.append(stream, [noted(str(i)) for i in range(7)], 0)
    wait_for(lambda: eventstore.head() >= appended[-1].checkpoint)
    # when
    paged, last = read_everything(limit=2)
    whole, _ = read_everything()
    # then
    assert [r.event_id for r in paged] == [r.event_id for r in whole]
    assert len({r.checkpoint for r in paged}) == len(paged)
    assert [r.event_id for r in _mine(paged, stream)] == [r.event_id for r in appended]
    assert last == whole[-1].checkpoint
    assert read_everything(after=last)[0] == []


@pytest.mark.django_db(transaction=True)
def test_read_all_after_checkpoint_returns_only_later_events():
    stream = new_stream()
    first = eventstore.append(stream, [noted("1"), noted("2")], 0)
    eventstore.append(stream, [noted("3")], 2)
    assert len(read_streams(stream, count=3)) == 3
    after_first = read_everything(after=first[0].checkpoint)[0]
    assert _notes(_mine(after_first, stream)) == ["2", "3"]
    assert eventstore.read_all(after=tuple(first[1].checkpoint), limit=1)[0].event.note == "3"


@pytest.mark.django_db(transaction=True)
def test_head_returns_checkpoint_of_newest_readable_event():
    # given
    [recorded] = eventstore.append(new_stream(), [noted()], 0)
    # when
    head = wait_for(lambda: eventstore.head() >= recorded.checkpoint and eventstore.head())
    # then
    assert head, "the committed event never became readable"
    assert isinstance(head, Checkpoint)
    assert head == read_everything()[1]


@pytest.mark.django_db
def test_read_all_holds_back_events_of_current_transaction():
    # given an event appended in the test's own, still open, transaction
    stream = new_stream()
    [recorded] = eventstore.append(stream, [noted()], 0)
    # and a later transaction that has committed since (so the snapshot's xmax is past our own transaction)
    with psycopg.connect(**connection.get_connection_params()) as later:
        later.execute("SELECT pg_current_xact_id()")
    # then it is not in the log yet (its transaction id is not below the horizon)
    assert _mine(read_everything()[0], stream) == []
    assert eventstore.head() < recorded.checkpoint


@pytest.mark.django_db(transaction=True)
def test_read_all_with_out_of_order_commits_skips_nothing():
    # given a reader that has read the log up to an event C of its own and stored its checkpoint
    c_stream, a_stream, b_stream = new_stream(), new_stream(), new_stream()
    [c] = eventstore.append(c_stream, [noted("C")], 0)
    assert read_streams(c_stream, count=1), "C never became readable"
    seen, checkpoint = read_everything()
    assert checkpoint >= c.checkpoint

    # and a transaction A that appended first (lower position) and stays open
    a_appended = threading.Event()
    a_may_commit = threading.Event()
    a_result: dict[str, object] = {}

    def transaction_a() -> None:
        try:
            with transaction.atomic():
                a_result["recorded"] = eventstore.append(a_stream, [noted("A")], 0)
                a_appended.set()
                assert a_may_commit.wait(timeout=THREAD_TIMEOUT)
        except BaseException as exc:  # noqa: BLE001 - reported to the test, which asserts on it
            a_result["error"] = exc
            a_appended.set()
        finally:
            connection.close()

    thread = threading.Thread(target=transaction_a, daemon=True)
    thread.start()
    try:
        assert a_appended.wait(timeout=THREAD_TIMEOUT)
        assert "error" not in a_result, a_result
        [a] = a_result["recorded"]

        # when B appends later (higher position) and commits first
        [b] = eventstore.append(b_stream, [noted("B")], 0)
        assert a.checkpoint.position < b.checkpoint.position
        assert a.checkpoint.transaction_id < b.checkpoint.transaction_id

        # then B is committed and visible to a naive "position > last seen" reader, which would step over A
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT aggregate_id FROM fintech_event WHERE position >= %s ORDER BY position",
                [a.checkpoint.position],
            )
            naive = [row[0] for row in cursor.fetchall()]
        assert b_stream in naive
        assert a_stream not in naive
        # but read_all holds B back while A is open, from the start and from the stored checkpoint
        assert _mine(read_everything()[0], a_stream, b_stream) == []
        page, checkpoint = read_everything(after=checkpoint)
        seen += page
        assert _mine(page, a_stream, b_stream) == []
        assert eventstore.head() < b.checkpoint
    finally:
        # when A commits
        a_may_commit.set()
        thread.join(timeout=THREAD_TIMEOUT)
    assert not thread.is_alive()
    assert "error" not in a_result, a_result

    # then read_all returns both, A before B
    from_start = read_streams(a_stream, b_stream, count=2)
    assert _notes(from_start) == ["A", "B"]
    assert [r.checkpoint for r in from_start] == [a.checkpoint, b.checkpoint]
    # and the reader resuming from its stored checkpoint sees both, nothing skipped, nothing twice
    page, _ = read_everything(after=checkpoint)
    seen += page
    assert _notes(_mine(seen, a_stream, b_stream, c_stream)) == ["C", "A", "B"]
    assert len({r.event_id for r in seen}) == len(seen)


@pytest.mark.django_db(transaction=True)
def test_read_all_not_held_back_by_a_transaction_of_another_database():
    # given a transaction open in another database of the same cluster, older than what we append next
    # (another application, or a test run beside this one: transaction ids are cluster-wide)
    other = psycopg.connect(**{**connection.get_connection_params(), "dbname": "postgres"})
    try:
        other.execute("SELECT pg_current_xact_id()")
        # when an event is appended and committed here
        stream = new_stream()
        [recorded] = eventstore.append(stream, [noted("here")], 0)
        # then it is readable at once, and the head reaches it (only this database's transactions can write
        # this log; the cluster-wide snapshot xmin held it back until the other transaction ended)
        assert _notes(_mine(read_everything()[0], stream)) == ["here"]
        assert eventstore.head() >= recorded.checkpoint
        assert eventstore.backlog(after=Checkpoint())[0] >= 1
    finally:
        other.rollback()
        other.close()


# publishing after commit ----------------------------------------------------------------------------------
@pytest.mark.django_db
def test_append_publishes_to_subscribers_only_on_commit(heard, django_capture_on_commit_callbacks):
    # given
    stream = new_stream()
    # when
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        appended = eventstore.append(stream, [noted("1"), noted("2")], 0)
        # then nothing is heard before the commit
        assert heard == []
    # and the whole batch once after it
    assert len(callbacks) == 1
    assert heard == [appended]


@pytest.mark.django_db
def test_append_rolled_back_publishes_nothing(heard, django_capture_on_commit_callbacks):
    stream = new_stream()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError, match="after appending"):
            _append_then_fail(stream)
        eventstore.append(new_stream(), [noted("kept")], 0)
    assert len(callbacks) == 1
    assert [[r.event.note for r in batch] for batch in heard] == [["kept"]]
    assert all(r.stream_id != stream for batch in heard for r in batch)


@pytest.mark.django_db
def test_conflicting_append_publishes_nothing(heard, django_capture_on_commit_callbacks):
    stream = new_stream()
    eventstore.append(stream, [noted()], 0)
    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(ConcurrencyConflict):
        eventstore.append(stream, [noted()], 0)
    assert callbacks == []
    assert heard == []


@pytest.mark.django_db(transaction=True)
def test_append_publishes_after_real_commit_not_before(heard):
    # given a transaction of the caller's that appends twice
    a, b = new_stream(), new_stream()
    with transaction.atomic():
        first = eventstore.append(a, [noted("a")], 0)
        second = eventstore.append(b, [noted("b")], 0)
        # then nothing is published while it is open
        assert heard == []
    # when it commits, each append's batch is published
    assert heard == [first, second]


@pytest.mark.django_db(transaction=True)
def test_append_rolled_back_for_real_publishes_nothing(heard):
    with pytest.raises(RuntimeError, match="after appending"):
        _append_then_fail(new_stream())
    assert heard == []


@pytest.mark.django_db
def test_failing_subscriber_does_not_stop_others(django_capture_on_commit_callbacks, caplog):
    # given a subscriber that fails, registered before one that works
    heard = []

    def broken(events):
        raise RuntimeError("subscriber down")

    def working(events):
        heard.append(events)

    eventstore.subscribe(broken)
    eventstore.subscribe(working)
    try:
        # when
        with django_capture_on_commit_callbacks(execute=True):
            appended = eventstore.append(new_stream(), [noted()], 0)
    finally:
        eventstore.unsubscribe(broken)
        eventstore.unsubscribe(working)
    # then the append stands, the working subscriber heard it, and the failure was logged
    assert heard == [appended]
    assert eventstore.load(appended[0].stream_id) == appended
    [record] = [r for r in caplog.records if r.exc_info and r.exc_info[1].args == ("subscriber down",)]
    assert (record.name, record.levelname) == ("fintech.eventstore", "ERROR")


def test_subscribe_twice_registers_once():
    calls = []

    def listener(events):
        calls.append(events)

    assert eventstore.subscribe(listener) is listener
    eventstore.subscribe(listener)
    try:
        assert eventstore._subscribers.count(listener) == 1
    finally:
        eventstore.unsubscribe(listener)
    assert listener not in eventstore._subscribers
    eventstore.unsubscribe(listener)


# command metadata -----------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_command_metadata_merges_into_event_metadata():
    stream = new_stream()
    # when
    with eventstore.command_metadata(trace_id="t-1", correlation_id="c-1", actor="user:ada"):
        with eventstore.command_metadata(causation_id="e-9", actor="user:bob", ignored=None) as merged:
            assert merged == {"trace_id": "t-1", "correlation_id": "c-1", "actor": "user:bob", "causation_id": "e-9"}
            [recorded] = eventstore.append(stream, [noted()], 0, metadata={"actor": "user:explicit", "reason": "x"})
        [outer] = eventstore.append(stream, [noted()], 1)
    [after] = eventstore.append(stream, [noted()], 2)
    # then the innermost block wins, the explicit metadata wins over both, and nothing leaks out of a block
    expected_inner = {
        "trace_id": "t-1",
        "correlation_id": "c-1",
        "causation_id": "e-9",
        "actor": "user:explicit",
        "reason": "x",
    }
    assert recorded.metadata == expected_inner
    assert outer.metadata == {"trace_id": "t-1", "correlation_id": "c-1", "actor": "user:ada"}
    assert after.metadata == {}
    assert [r.metadata for r in eventstore.load(stream)] == [expected_inner, outer.metadata, {}]


@pytest.mark.django_db
def test_command_metadata_reset_after_exception():
    stream = new_stream()
    with pytest.raises(RuntimeError), eventstore.command_metadata(trace_id="t-err"):
        raise RuntimeError("command failed")
    [recorded] = eventstore.append(stream, [noted()], 0)
    assert recorded.metadata == {}


# upcasting stored rows ------------------------------------------------------------------------------------
def _insert_v1_payment_initiated(payment_id: uuid.UUID, *, token: str, merchant_id: str) -> None:
    """Write a row of the seed's v1 shape straight into the table, as an old deployment left it (the database
    opens the stream row itself)."""
    data = {
        "payment_id": str(payment_id),
        "merchant_id": merchant_id,
        "amount": {"amount": 1500, "currency": "JPY"},
        "payment_method": token,
        "initiated_by": "user:legacy",
    }
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO fintech_event (event_id, aggregate_id, aggregate_type, event_type, event_version, "
            "event_data, metadata, version, occurred_at) "
            "VALUES (%s, %s, 'payment', 'PaymentInitiated', 1, %s::jsonb, %s::jsonb, 1, %s)",
            [uuid.uuid4(), payment_id, json.dumps(data), json.dumps({"actor": "user:legacy"}), now()],
        )


@pytest.mark.django_db
def test_load_v1_payment_initiated_upcasts_to_v2():
    # given a v1 PaymentInitiated row with a bare token and no description
    payment_id = uuid.uuid4()
    _insert_v1_payment_initiated(payment_id, token="tok_legacy", merchant_id="m-legacy")
    # when
    [recorded] = eventstore.load(payment_id)
    # then it reads as the current v2 event
    event = recorded.event
    assert isinstance(event, PaymentInitiated)
    assert event.event_version == 2
    assert event.payment_method == {"token": "tok_legacy", "brand": "unknown", "last4": ""}
    assert event.description == ""
    assert event.payment_id == payment_id
    assert event.amount == Money(1500, "JPY")
    assert recorded.metadata == {"actor": "user:legacy"}
    # and the stored row is untouched
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT event_version, event_data->>'payment_method' FROM fintech_event WHERE aggregate_id = %s",
            [payment_id],
        )
        assert cursor.fetchone() == (1, "tok_legacy")


@pytest.mark.django_db
def test_payment_load_of_v1_payment_rebuilds_aggregate():
    # given
    payment_id = uuid.uuid4()
    _insert_v1_payment_initiated(payment_id, token="tok_legacy", merchant_id="m-legacy")
    # when
    payment = services.payment_load(payment_id=payment_id, merchant_id="m-legacy")
    # then
    assert payment.status == INITIATED
    assert payment.version == 1
    assert payment.amount == Money(1500, "JPY")
    assert payment.payment_method == PaymentMethod(token="tok_legacy", brand="unknown", last4="")
    assert payment.description == ""
    assert payment.initiated_by == "user:legacy"


@pytest.mark.django_db
def test_payment_cancel_of_v1_payment_appends_after_it():
    # given a v1 payment
    payment_id = uuid.uuid4()
    _insert_v1_payment_initiated(payment_id, token="tok_legacy", merchant_id="m-legacy")
    # when a command runs on it
    payment = services.payment_cancel(payment_id=payment_id, reason="legacy cleanup", actor="user:test")
    # then the new event follows the old one
    assert payment.version == 2
    assert event_rows(payment_id) == [(1, "PaymentInitiated"), (2, "PaymentCancelled")]
    assert services.payment_load(payment_id=payment_id).status == "cancelled"
