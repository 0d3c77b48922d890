"""The database itself keeps events immutable and streams forward-only, whatever client sends the SQL.

Every rejected statement runs in its own savepoint (a failed statement aborts the transaction around it), and
every test checks afterwards that the row it attacked is still there, unchanged.
"""

from __future__ import annotations

import datetime as dt
import uuid

import psycopg
import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError, ProgrammingError

from fintech import eventstore
from fintech.models import Event, Stream
from fintech.partitions import DEFAULT, existing_partitions, month_start, partition_name
from tests.fintech.helpers import new_stream, noted

INSUFFICIENT_PRIVILEGE = "42501"


def _rejected(sql: str, params: list | None = None, *, match: str) -> DatabaseError:
    """Run one statement that the database must refuse; return the error."""
    with pytest.raises(ProgrammingError, match=match) as raised, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
    assert raised.value.__cause__.sqlstate == INSUFFICIENT_PRIVILEGE
    return raised.value


def _row(event_id: uuid.UUID) -> tuple | None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text, aggregate_id, version, event_data::text, metadata::text, occurred_at "
            "FROM fintech_event WHERE event_id = %s",
            [event_id],
        )
        return cursor.fetchone()


def _stream_row(stream_id: uuid.UUID) -> tuple | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT aggregate_type, version FROM fintech_stream WHERE stream_id = %s", [stream_id])
        return cursor.fetchone()


@pytest.fixture
def recorded(db):
    """A stream of two events in the current month's partition."""
    return eventstore.append(new_stream(), [noted("one"), noted("two")], 0, metadata={"actor": "user:test"})


@pytest.fixture
def current_partition(db) -> str:
    name = partition_name(month_start(dt.datetime.now(dt.UTC).date()))
    assert name in existing_partitions()
    return name


# events ---------------------------------------------------------------------------------------------------
def test_update_event_rejected(recorded):
    # given
    event_id = recorded[0].event_id
    before = _row(event_id)
    # when / then
    error = _rejected(
        'UPDATE fintech_event SET event_data = \'{"note": "forged"}\'::jsonb WHERE event_id = %s',
        [event_id],
        match="fintech_event is append-only: UPDATE rejected",
    )
    assert "append a new event instead" in str(error.__cause__.diag.message_hint)
    assert _row(event_id) == before


@pytest.mark.parametrize(
    "assignment",
    ["version = version + 100", "metadata = '{}'::jsonb", "aggregate_id = gen_random_uuid()", "created_at = now()"],
)
def test_update_any_event_column_rejected(recorded, assignment):
    event_id = recorded[1].event_id
    before = _row(event_id)
    _rejected(
        f"UPDATE fintech_event SET {assignment} WHERE event_id = %s",  # noqa: S608 - fixed test strings
        [event_id],
        match="append-only: UPDATE rejected",
    )
    assert _row(event_id) == before


def test_update_moving_event_to_another_month_rejected(recorded):
    # given an update that would move the row to another partition
    event_id = recorded[0].event_id
    before = _row(event_id)
    # when / then
    _rejected(
        "UPDATE fintech_event SET occurred_at = occurred_at - interval '400 days' WHERE event_id = %s",
        [event_id],
        match="append-only: UPDATE rejected",
    )
    assert _row(event_id) == before


def test_delete_event_rejected(recorded):
    stream = recorded[0].stream_id
    _rejected(
        "DELETE FROM fintech_event WHERE aggregate_id = %s", [stream], match="fintech_event is append-only: DELETE"
    )
    assert [r.event_id for r in eventstore.load(stream)] == [r.event_id for r in recorded]


def test_delete_event_through_orm_rejected(recorded):
    stream = recorded[0].stream_id
    with pytest.raises(ProgrammingError, match="append-only: DELETE rejected"), transaction.atomic():
        Event.objects.filter(aggregate_id=stream).delete()
    with pytest.raises(ProgrammingError, match="append-only: UPDATE rejected"), transaction.atomic():
        Event.objects.filter(aggregate_id=stream).update(event_type="Forged")
    assert Event.objects.filter(aggregate_id=stream).count() == 2
    assert set(Event.objects.filter(aggregate_id=stream).values_list("event_type", flat=True)) == {"KernelNoted"}


def test_truncate_event_table_rejected(recorded):
    _rejected("TRUNCATE fintech_event", match="fintech_event is append-only: TRUNCATE rejected")
    _rejected("TRUNCATE fintech_event CASCADE", match="append-only: TRUNCATE rejected")
    assert _row(recorded[0].event_id) is not None


def test_update_and_delete_in_month_partition_rejected(recorded, current_partition):
    # given the row sits in the current month's partition
    event_id = recorded[0].event_id
    before = _row(event_id)
    assert before[0] == current_partition
    # when / then the partition refuses as the parent does
    _rejected(
        f"UPDATE {current_partition} SET version = 99 WHERE event_id = %s",  # noqa: S608 - a partition name
        [event_id],
        match="append-only: UPDATE rejected",
    )
    _rejected(
        f"DELETE FROM {current_partition} WHERE event_id = %s",  # noqa: S608 - a partition name
        [event_id],
        match="append-only: DELETE rejected",
    )
    assert _row(event_id) == before


def test_truncate_month_partition_rejected(recorded, current_partition):
    _rejected(f"TRUNCATE {current_partition}", match="append-only: TRUNCATE rejected")
    assert _row(recorded[0].event_id) is not None


def test_truncate_every_partition_rejected(recorded):
    # given every partition that exists now, including the default one
    partitions = existing_partitions()
    assert DEFAULT in partitions
    # when / then each refuses TRUNCATE
    for name in partitions:
        _rejected(f"TRUNCATE {name}", match="append-only: TRUNCATE rejected")
    assert _row(recorded[0].event_id) is not None


@pytest.fixture
def stranded(db):
    """An event in the default partition: its month (2099-12) has no partition."""
    stream = new_stream()
    occurred_at = dt.datetime(2099, 12, 15, 12, 0, tzinfo=dt.UTC)
    assert partition_name(dt.date(2099, 12, 1)) not in existing_partitions()
    [event] = eventstore.append(stream, [noted("stranded", occurred_at=occurred_at)], 0)
    assert _row(event.event_id)[0] == DEFAULT
    return event


def test_update_delete_truncate_default_partition_rejected(stranded):
    before = _row(stranded.event_id)
    _rejected(
        f"UPDATE {DEFAULT} SET event_type = 'Forged' WHERE event_id = %s",  # noqa: S608 - a partition name
        [stranded.event_id],
        match="append-only: UPDATE rejected",
    )
    _rejected(
        f"DELETE FROM {DEFAULT} WHERE event_id = %s",  # noqa: S608 - a partition name
        [stranded.event_id],
        match="append-only: DELETE rejected",
    )
    _rejected(f"TRUNCATE {DEFAULT}", match="append-only: TRUNCATE rejected")
    assert _row(stranded.event_id) == before


def test_insert_event_still_allowed(recorded):
    # the guard only stops changes: appending stays possible
    eventstore.append(recorded[0].stream_id, [noted("three")], 2)
    assert len(eventstore.load(recorded[0].stream_id)) == 3


# streams --------------------------------------------------------------------------------------------------
DIRECT = "fintech_stream moves only by appending events"


def test_stream_version_decrease_rejected(recorded):
    stream = recorded[0].stream_id
    _rejected("UPDATE fintech_stream SET version = 1 WHERE stream_id = %s", [stream], match=DIRECT)
    _rejected("UPDATE fintech_stream SET version = 0 WHERE stream_id = %s", [stream], match=DIRECT)
    assert _stream_row(stream) == ("kernel_test", 2)
    assert eventstore.stream_version(stream) == 2


def test_stream_aggregate_type_change_rejected(recorded):
    stream = recorded[0].stream_id
    _rejected(
        "UPDATE fintech_stream SET aggregate_type = 'payment' WHERE stream_id = %s",
        [stream],
        match=DIRECT,
    )
    _rejected(
        "UPDATE fintech_stream SET stream_id = gen_random_uuid() WHERE stream_id = %s",
        [stream],
        match=DIRECT,
    )
    assert _stream_row(stream) == ("kernel_test", 2)


def test_stream_delete_rejected(recorded):
    stream = recorded[0].stream_id
    _rejected(
        "DELETE FROM fintech_stream WHERE stream_id = %s", [stream], match="fintech_stream rows are never removed"
    )
    with pytest.raises(ProgrammingError, match="never removed"), transaction.atomic():
        Stream.objects.filter(stream_id=stream).delete()
    assert _stream_row(stream) == ("kernel_test", 2)


def test_stream_truncate_rejected(recorded):
    _rejected("TRUNCATE fintech_stream", match="fintech_stream rows are never removed: TRUNCATE rejected")
    assert _stream_row(recorded[0].stream_id) == ("kernel_test", 2)


def test_stream_version_forward_written_directly_rejected(recorded):
    # a stream moved without its event would make the next append skip a version
    stream = recorded[0].stream_id
    _rejected("UPDATE fintech_stream SET version = version + 1 WHERE stream_id = %s", [stream], match=DIRECT)
    _rejected(
        "INSERT INTO fintech_stream (stream_id, aggregate_type, version) VALUES (gen_random_uuid(), 'x', 0)",
        match=DIRECT,
    )
    assert _stream_row(stream) == ("kernel_test", 2)


def test_raw_event_insert_with_taken_or_skipped_version_rejected(recorded):
    # given a stream at version 2, a writer bypassing the event store
    stream = recorded[0].stream_id
    for version in (1, 2, 4):
        with pytest.raises(DatabaseError, match="is not at version") as raised, transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO fintech_event (event_id, aggregate_id, aggregate_type, event_type, event_data, "
                    "version, occurred_at) VALUES (gen_random_uuid(), %s, 'kernel_test', 'KernelNoted', '{}', %s, "
                    "now())",
                    [stream, version],
                )
        # then the database refuses with the event store's conflict code, and nothing changed
        assert raised.value.__cause__.sqlstate == eventstore.STREAM_MOVED
    assert [e.version for e in eventstore.load(stream)] == [1, 2]
    assert _stream_row(stream) == ("kernel_test", 2)


# another client -------------------------------------------------------------------------------------------
def test_raw_client_changes_rejected(raw_connect):
    # given committed events, and a plain psycopg client outside Django, in autocommit
    stream = new_stream()
    events = eventstore.append(stream, [noted("one"), noted("two")], 0)
    client = raw_connect(autocommit=True)
    # when / then every change it tries is refused by the database
    statements = [
        ("UPDATE fintech_event SET event_type = 'Forged' WHERE aggregate_id = %s", [stream], "UPDATE rejected"),
        ("DELETE FROM fintech_event WHERE aggregate_id = %s", [stream], "DELETE rejected"),
        ("TRUNCATE fintech_event", None, "TRUNCATE rejected"),
        ("UPDATE fintech_stream SET version = 0 WHERE stream_id = %s", [stream], "moves only by appending"),
        ("DELETE FROM fintech_stream WHERE stream_id = %s", [stream], "never removed"),
    ]
    for sql, params, message in statements:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match=message):
            client.execute(sql, params)
    # and everything is still there, as seen by that client too
    rows = client.execute(
        "SELECT event_id, event_type FROM fintech_event WHERE aggregate_id = %s ORDER BY version", [stream]
    ).fetchall()
    assert rows == [(e.event_id, "KernelNoted") for e in events]
    assert client.execute("SELECT version FROM fintech_stream WHERE stream_id = %s", [stream]).fetchone() == (2,)
    assert eventstore.load(stream) == events


def test_raw_client_delete_in_transaction_rejected_and_nothing_changes(raw_connect):
    # given a client that deletes inside an explicit transaction and then tries to commit
    stream = new_stream()
    events = eventstore.append(stream, [noted()], 0)
    client = raw_connect()
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        client.execute("DELETE FROM fintech_event WHERE event_id = %s", [events[0].event_id])
    client.rollback()
    assert client.execute("SELECT count(*) FROM fintech_event WHERE aggregate_id = %s", [stream]).fetchone() == (1,)
    assert eventstore.load(stream) == events
