"""Monthly partitions of the event table: made ahead of time, and nothing lost when a month arrives late.

Partitions are DDL that outlives the test (these tests commit), and events are never removed: every test works
on months and streams of its own.
"""

from __future__ import annotations

import datetime as dt
import io
import uuid

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.db.utils import ProgrammingError

from fintech import eventstore
from fintech.partitions import DEFAULT, ensure_partitions, month_start, next_month, partition_name
from tests.fintech.helpers import new_stream, noted, read_everything, read_streams

ROW = (
    "SELECT tableoid::regclass::text, event_id, position, transaction_id::text, aggregate_id, aggregate_type, "
    "event_type, event_version, event_data::text, metadata::text, version, occurred_at, created_at FROM fintech_event"
)


def _partitions() -> dict[str, str]:
    """Each partition of fintech_event with its bound, straight from the catalog."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'fintech_event'::regclass"
        )
        return dict(cursor.fetchall())


def _bound(first: dt.date) -> str:
    return f"FOR VALUES FROM ('{first} 00:00:00+00') TO ('{next_month(first)} 00:00:00+00')"


def _months(first: dt.date, count: int) -> list[dt.date]:
    months = [first]
    for _ in range(count - 1):
        months.append(next_month(months[-1]))
    return months


def _this_month() -> dt.date:
    return month_start(dt.datetime.now(dt.UTC).date())


def _rows(stream: uuid.UUID) -> dict[uuid.UUID, tuple]:
    """The full rows of a stream by event id: (partition, *every column)."""
    with connection.cursor() as cursor:
        cursor.execute(f"{ROW} WHERE aggregate_id = %s ORDER BY version", [stream])  # noqa: S608 - fixed columns
        return {row[1]: row for row in cursor.fetchall()}


def _free_month() -> dt.date:
    """A far-future month that has no partition yet, nor the month before it, nor the two after it."""
    existing = set(_partitions())
    first = dt.date(2031, 1, 1)
    while any(partition_name(month) in existing for month in _months(first, 4)):
        first = next_month(first)
    return next_month(first)


# creating partitions --------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_migrate_creates_current_and_next_month_partitions():
    # given the test database, migrated at session start
    partitions = _partitions()
    this_month = _this_month()
    # then this month and the next are attached with their month's bounds, and a default catches the rest
    for first in _months(this_month, 2):
        assert partitions.get(partition_name(first)) == _bound(first)
    assert partitions.get(DEFAULT) == "DEFAULT"


@pytest.mark.django_db(transaction=True)
def test_ensure_partitions_command_creates_months_ahead_idempotently():
    # when
    first_run, second_run = io.StringIO(), io.StringIO()
    call_command("ensure_partitions", months_ahead=3, stdout=first_run)
    partitions = _partitions()
    call_command("ensure_partitions", months_ahead=3, stdout=second_run)
    # then this month and the three after it exist, with their bounds
    for first in _months(_this_month(), 4):
        assert partitions.get(partition_name(first)) == _bound(first)
    assert f"{len(partitions)} partitions in all" in first_run.getvalue()
    # and running it again creates nothing
    assert second_run.getvalue() == f"0 created, {len(partitions)} partitions in all\n"
    assert _partitions() == partitions


@pytest.mark.django_db(transaction=True)
def test_ensure_partitions_returns_only_new_partitions():
    # given a free month
    first = _free_month()
    # when
    created = ensure_partitions(months_ahead=1, today=first + dt.timedelta(days=20))
    again = ensure_partitions(months_ahead=2, today=first)
    # then
    assert created == [partition_name(first), partition_name(next_month(first))]
    assert again == [partition_name(_months(first, 3)[2])]
    partitions = _partitions()
    for month in _months(first, 3):
        assert partitions[partition_name(month)] == _bound(month)


@pytest.mark.django_db
@pytest.mark.parametrize("months_ahead", [-1, 121])
def test_ensure_partitions_command_with_out_of_range_months_rejected(months_ahead):
    before = _partitions()
    with pytest.raises(CommandError, match="between 0 and 120"):
        call_command("ensure_partitions", months_ahead=months_ahead, stdout=io.StringIO())
    assert _partitions() == before


@pytest.mark.django_db(transaction=True)
def test_new_partition_rejects_changes_like_the_others():
    # given a partition created after the migrations, holding an event
    first = _free_month()
    ensure_partitions(months_ahead=0, today=first)
    name = partition_name(first)
    stream = new_stream()
    [event] = eventstore.append(stream, [noted(occurred_at=dt.datetime.combine(first, dt.time(), tzinfo=dt.UTC))], 0)
    assert _rows(stream)[event.event_id][0] == name
    # when / then
    for sql, message in [
        (f"UPDATE {name} SET version = 7", "UPDATE rejected"),  # noqa: S608 - a partition name
        (f"DELETE FROM {name}", "DELETE rejected"),  # noqa: S608 - a partition name
        (f"TRUNCATE {name}", "TRUNCATE rejected"),
    ]:
        with pytest.raises(ProgrammingError, match=message), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    assert eventstore.load(stream) == [event]


# events that arrive before their month's partition --------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_ensure_partitions_moves_stranded_events_into_their_month():
    # given a far-future month without a partition, and events in it, at its edges and around it
    first = _free_month()
    name = partition_name(first)
    start = dt.datetime.combine(first, dt.time(), tzinfo=dt.UTC)
    end = dt.datetime.combine(next_month(first), dt.time(), tzinfo=dt.UTC)
    stream, neighbours = new_stream(), new_stream()
    appended = eventstore.append(
        stream,
        [
            noted("first instant", occurred_at=start),
            noted("mid month", occurred_at=start + dt.timedelta(days=14, hours=5, microseconds=17)),
            noted("last instant", occurred_at=end - dt.timedelta(microseconds=1)),
        ],
        0,
        metadata={"actor": "user:test"},
    )
    around = eventstore.append(
        neighbours,
        [
            noted("month before", occurred_at=start - dt.timedelta(microseconds=1)),
            noted("month after", occurred_at=end),
        ],
        0,
    )
    before = _rows(stream)
    assert {row[0] for row in [*before.values(), *_rows(neighbours).values()]} == {DEFAULT}
    log_before = read_streams(stream, neighbours, count=5)

    # when its partition is created
    created = ensure_partitions(months_ahead=0, today=first + dt.timedelta(days=3))

    # then the month's events moved into it, every column as it was (position and transaction id included)
    assert created == [name]
    after = _rows(stream)
    assert after.keys() == before.keys()
    for event_id, row in after.items():
        assert row == (name, *before[event_id][1:])
    # and the neighbours' events stayed in the default partition
    assert {row[0] for row in _rows(neighbours).values()} == {DEFAULT}
    # and each event exists once, loadable as it was appended
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(DISTINCT event_id) FROM fintech_event WHERE aggregate_id IN (%s, %s)",
            [stream, neighbours],
        )
        assert cursor.fetchone() == (5, 5)
    assert eventstore.load(stream) == appended
    assert eventstore.load(neighbours) == around
    # and the log still holds each exactly once, at the same checkpoints
    log_after = [e for e in read_everything()[0] if e.stream_id in (stream, neighbours)]
    assert log_after == log_before
    # and the stream goes on in its new partition
    [later] = eventstore.append(stream, [noted("later", occurred_at=start + dt.timedelta(days=20))], 3)
    assert _rows(stream)[later.event_id][0] == name
    assert [r.version for r in eventstore.load(stream)] == [1, 2, 3, 4]


@pytest.mark.django_db(transaction=True)
def test_default_partition_stays_guarded_after_move():
    # given an event moved out of the default partition, and one left in it
    first = _free_month()
    start = dt.datetime.combine(first, dt.time(), tzinfo=dt.UTC)
    stream = new_stream()
    moved, kept = eventstore.append(
        stream,
        [noted("moved", occurred_at=start), noted("kept", occurred_at=start - dt.timedelta(days=1))],
        0,
    )
    ensure_partitions(months_ahead=0, today=first)
    rows = _rows(stream)
    assert rows[moved.event_id][0] == partition_name(first)
    assert rows[kept.event_id][0] == DEFAULT
    # when / then the move's maintenance window is closed again: the default partition refuses changes
    for sql, message in [
        (f"UPDATE {DEFAULT} SET version = 7 WHERE event_id = %s", "UPDATE rejected"),  # noqa: S608
        (f"DELETE FROM {DEFAULT} WHERE event_id = %s", "DELETE rejected"),  # noqa: S608
    ]:
        with pytest.raises(ProgrammingError, match=message), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [kept.event_id])
    with pytest.raises(ProgrammingError, match="TRUNCATE rejected"), transaction.atomic(), connection.cursor() as c:
        c.execute(f"TRUNCATE {DEFAULT}")
    assert _rows(stream) == rows
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal AND tgenabled = 'D'",
            [DEFAULT],
        )
        assert cursor.fetchall() == []


@pytest.mark.django_db(transaction=True)
def test_ensure_partitions_for_existing_month_moves_nothing():
    # given a month whose partition exists, holding an event
    first = _free_month()
    ensure_partitions(months_ahead=0, today=first)
    stream = new_stream()
    eventstore.append(stream, [noted(occurred_at=dt.datetime.combine(first, dt.time(12), tzinfo=dt.UTC))], 0)
    before = _rows(stream)
    # when
    assert ensure_partitions(months_ahead=0, today=first) == []
    # then
    assert _rows(stream) == before
