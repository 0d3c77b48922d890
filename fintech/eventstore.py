"""The event store: append with per-stream optimistic concurrency, load a stream, read the global log.

- `append` inserts events numbered from the expected version; a trigger advances the stream's row in
  `fintech_stream` by compare-and-set as each row goes in, so the database rejects a stale expected version
  (ConcurrencyConflict, nothing written) whoever the writer is.
- `read_all` is gap-safe: it returns only events of transactions older than every transaction of this
  database still running (`fintech_log_horizon()`, read in a statement before the events), ordered by
  (transaction id, position), which is also the checkpoint. An event that commits late can therefore never be
  stepped over, and a transaction open in another database of the cluster holds nothing back.
- After commit, the appended events go to the subscribers registered with `subscribe` (projections wake
  their Celery task there).
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import functools
import json
import logging
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction

from fintech.db import raw_cursor
from fintech.events import DomainEvent, EventSchemaError, decode_event

logger = logging.getLogger(__name__)


class ConcurrencyConflict(Exception):
    """The stream moved since the caller read it; nothing was written."""

    def __init__(self, stream_id: uuid.UUID, expected_version: int) -> None:
        super().__init__(f"stream {stream_id} is no longer at version {expected_version}")
        self.stream_id = stream_id
        self.expected_version = expected_version


class PreconditionFailed(Exception):
    """The caller pinned a version (If-Match) that the stream is no longer at; nothing was written."""

    code = "precondition_failed"


class Checkpoint(NamedTuple):
    """A place in the global log: (transaction id, position), the order read_all returns events in."""

    transaction_id: int = 0
    position: int = 0


class UndecodableEvent(EventSchemaError):
    """A reader met an event this code cannot decode. `decoded` holds the events before it, in order, and
    `before` the checkpoint just before it (safe to store: nothing after it was stepped over)."""

    def __init__(self, event_id: uuid.UUID, before: Checkpoint, decoded: list[RecordedEvent], reason: str):
        super().__init__(f"event {event_id} cannot be decoded: {reason}")
        self.event_id = event_id
        self.before = before
        self.decoded = decoded


@dataclass(frozen=True)
class RecordedEvent:
    event_id: uuid.UUID
    stream_id: uuid.UUID
    aggregate_type: str
    version: int
    event: DomainEvent
    metadata: dict[str, Any]
    occurred_at: dt.datetime
    created_at: dt.datetime | None = None
    checkpoint: Checkpoint = field(default_factory=Checkpoint)

    @property
    def event_type(self) -> str:
        return self.event.event_type


# Metadata of the command being handled (trace, correlation, causation, actor), set by the API layer and
# management commands, merged into every event appended while it is set.
_command_metadata: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "command_metadata", default=None
)


@contextlib.contextmanager
def command_metadata(**values: Any) -> Iterator[dict[str, Any]]:
    """Attach trace/correlation/causation ids and the actor to the events appended inside the block."""
    merged = {**(_command_metadata.get() or {}), **{k: v for k, v in values.items() if v is not None}}
    token = _command_metadata.set(merged)
    try:
        yield merged
    finally:
        _command_metadata.reset(token)


_subscribers: list[Callable[[list[RecordedEvent]], None]] = []


def subscribe(callback: Callable[[list[RecordedEvent]], None]) -> Callable[[list[RecordedEvent]], None]:
    """Call `callback(events)` after each commit that appended events. Usable as a decorator."""
    if callback not in _subscribers:
        _subscribers.append(callback)
    return callback


def unsubscribe(callback: Callable[[list[RecordedEvent]], None]) -> None:
    if callback in _subscribers:
        _subscribers.remove(callback)


def _publish(events: list[RecordedEvent]) -> None:
    for callback in list(_subscribers):
        try:
            callback(events)
        except Exception:
            # A subscriber is a wake-up, never the truth: the periodic catch-up reads what it missed.
            logger.exception("event subscriber %r failed", callback)


# Raised by the database (fintech_event_advance_stream) when an event's version is not its stream's next one.
STREAM_MOVED = "FE409"

_INSERT_COLUMNS = (
    "event_id, aggregate_id, aggregate_type, event_type, event_version, event_data, metadata, version, occurred_at"
)


class StreamAppend(NamedTuple):
    """Events for one stream that must be at `expected_version` (0: a new stream)."""

    stream_id: uuid.UUID
    events: Sequence[DomainEvent]
    expected_version: int
    aggregate_type: str | None = None


def append(
    stream_id: uuid.UUID,
    events: Sequence[DomainEvent],
    expected_version: int,
    *,
    aggregate_type: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> list[RecordedEvent]:
    """Append `events` to a stream that must be at `expected_version` (0: a new stream).

    Raises ConcurrencyConflict, writing nothing, when the stream is elsewhere. Joins the caller's
    transaction if there is one; subscribers hear of the events once it commits.
    """
    return append_streams([StreamAppend(stream_id, events, expected_version, aggregate_type)], metadata=metadata)


def append_streams(
    appends: Sequence[StreamAppend], *, metadata: dict[str, Any] | None = None, savepoint: bool = True
) -> list[RecordedEvent]:
    """Append to several streams in one statement, each at its expected version; all or nothing.

    Raises ConcurrencyConflict (naming the first stream that moved) when one is elsewhere. Inside a caller's
    transaction a savepoint keeps that transaction usable after a conflict; `savepoint=False` spares its two
    round trips to a caller whose streams cannot move under it (it holds their rows locked)."""
    meta = {**(_command_metadata.get() or {}), **(metadata or {})}
    params, pending = _insert_rows(appends, json.dumps(meta, sort_keys=True))
    if not pending:
        return []
    sql = _insert_sql(len(pending))
    # One look-up of this thread's connection for the whole append (each through django.db.connection or
    # transaction.on_commit is another).
    wrapper = connections[DEFAULT_DB_ALIAS]
    # One statement is one transaction on its own.
    scope = transaction.atomic() if savepoint and wrapper.in_atomic_block else contextlib.nullcontext()
    try:
        with scope, raw_cursor() as cursor:
            cursor.execute(sql, params, binary=True)
            returned = cursor.fetchall()
    except DatabaseError as error:
        if getattr(error.__cause__, "sqlstate", None) == STREAM_MOVED:
            raise _conflict(appends, str(error.__cause__)) from None
        raise

    result = [
        RecordedEvent(
            event_id=event_id,
            stream_id=stream_id,
            aggregate_type=aggregate_type,
            version=version,
            event=event,
            metadata=meta,
            occurred_at=event.occurred_at,
            created_at=created_at,
            checkpoint=Checkpoint(transaction_id, position),
        )
        for (event_id, stream_id, aggregate_type, version, event), (position, transaction_id, created_at) in zip(
            pending, returned, strict=True
        )
    ]
    wrapper.on_commit(lambda: _publish(result), robust=True)
    return result


@functools.lru_cache(maxsize=64)
def _insert_sql(rows: int) -> str:
    """The INSERT of `rows` events, RETURNING what each RecordedEvent needs of the server. Only placeholders are
    joined into it; every value is a parameter."""
    values = ", ".join(["(%s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s, %s)"] * rows)
    return (
        f"INSERT INTO fintech_event ({_INSERT_COLUMNS}) VALUES {values} "  # noqa: S608
        "RETURNING position, transaction_id::text::bigint, created_at"
    )


def _insert_rows(appends: Sequence[StreamAppend], meta_json: str) -> tuple[list, list[tuple]]:
    """The parameters of every event to append, and (event id, stream, aggregate type, version, event) of each,
    in the same order."""
    params: list[Any] = []
    pending: list[tuple] = []
    for row, event in _event_rows(appends, meta_json):
        params += row
        pending.append((row[0], row[1], row[2], row[7], event))
    return params, pending


def _event_rows(appends: Sequence[StreamAppend], meta_json: str) -> Iterator[tuple[tuple, DomainEvent]]:
    """Each event to append as a row of _INSERT_COLUMNS, with the event."""
    for stream_id, events, expected_version, aggregate_type in appends:
        if expected_version < 0:
            raise ValueError("expected_version must be >= 0")
        aggregate_type = aggregate_type or (events[0].aggregate_type if events else "")
        if events and not aggregate_type:
            raise ValueError("events need an aggregate type")
        for offset, event in enumerate(events, start=1):
            data = json.dumps(event.to_data(), sort_keys=True)
            version = expected_version + offset
            row = (uuid.uuid4(), stream_id, aggregate_type, event.event_type, event.event_version, data, meta_json)
            yield (*row, version, event.occurred_at), event


def append_copy(appends: Sequence[StreamAppend], *, metadata: dict[str, Any]) -> int:
    """Append to streams in bulk by COPY, in the caller's transaction: the rows go in as append_streams writes
    them, and the log's trigger checks each stream's versions the same way (a stream elsewhere than expected
    fails the COPY). Returns how many events were written. Subscribers are not told: readers of the log (the
    projections' catch-up) find the events there (a bulk load: import_payments)."""
    meta_json = json.dumps(metadata, sort_keys=True)
    written = 0
    with raw_cursor() as cursor, cursor.copy(f"COPY fintech_event ({_INSERT_COLUMNS}) FROM STDIN") as copy:
        for row, _ in _event_rows(appends, meta_json):
            copy.write_row(row)
            written += 1
    return written


def _conflict(appends: Sequence[StreamAppend], message: str) -> ConcurrencyConflict:
    for stream_id, _, expected_version, _ in appends:
        if str(stream_id) in message:
            return ConcurrencyConflict(stream_id, expected_version)
    return ConcurrencyConflict(appends[0].stream_id, appends[0].expected_version)


_SELECT = (
    "SELECT event_id, aggregate_id, aggregate_type, event_type, event_version, event_data, metadata, version, "
    "occurred_at, created_at, transaction_id::text::bigint, position FROM fintech_event"
)


def _decode_row(row: tuple) -> RecordedEvent:
    (
        event_id,
        stream_id,
        aggregate_type,
        event_type,
        event_version,
        data,
        metadata,
        version,
        occurred_at,
        created_at,
        transaction_id,
        position,
    ) = row
    return RecordedEvent(
        event_id=event_id,
        stream_id=stream_id,
        aggregate_type=aggregate_type,
        version=version,
        event=decode_event(event_type, event_version, _json(data), occurred_at=occurred_at),
        metadata=_json(metadata),
        occurred_at=occurred_at,
        created_at=created_at,
        checkpoint=Checkpoint(transaction_id, position),
    )


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


class EventsMissing(Exception):
    """A stream's versions are not all in the database nor in the archive: its history cannot be told whole."""


class ArchiveReader(Protocol):
    """What the archive (an app above the kernel) tells the event store about archived events."""

    def stream_rows(self, stream_id: uuid.UUID, versions: set[int]) -> list[tuple]:
        """The archived rows (in _SELECT's column order) of these versions of the stream."""

    def rows_after(self, after: Checkpoint, limit: int) -> list[tuple]:
        """The first `limit` archived rows after a checkpoint, in (transaction id, position) order."""

    def months(self) -> set[dt.date]:
        """The first days of the months whose partitions are archived (and dropped)."""


_archive: ArchiveReader | None = None


def archived_months() -> set[dt.date]:
    """The months whose events left the database for the archive: nothing may be appended into them."""
    return _archive.months() if _archive is not None else set()


def archive_reader_set(reader: ArchiveReader | None) -> None:
    global _archive  # noqa: PLW0603 - one reader per process, set by the archive app
    _archive = reader


# Only the partitions between the stream's first and last occurred_at (kept by fintech_event_advance_stream)
# are read; the stream's version comes in the same snapshot, so a missing version is seen, never skipped.
_LOAD = (
    "SELECT event_id, aggregate_id, aggregate_type, event_type, event_version, event_data, metadata, version, "
    "occurred_at, created_at, transaction_id::text::bigint, position, "
    "(SELECT version FROM fintech_stream WHERE stream_id = %s) AS stream_head FROM fintech_event "
    "WHERE aggregate_id = %s AND version > %s "
    "AND occurred_at >= coalesce((SELECT first_occurred_at FROM fintech_stream WHERE stream_id = %s), '-infinity') "
    "AND occurred_at <= coalesce((SELECT last_occurred_at FROM fintech_stream WHERE stream_id = %s), 'infinity') "
    "ORDER BY version"
)


def load(stream_id: uuid.UUID, *, after_version: int = 0) -> list[RecordedEvent]:
    """The events of one stream in version order (empty for an unknown stream), archived ones included: a
    version missing from the database is read from the archive, and a version found in neither raises
    EventsMissing rather than tell part of the story."""
    with raw_cursor() as cursor:
        # Binary results: psycopg's C loaders read the timestamps (Django's text loader for timestamptz is Python).
        cursor.execute(_LOAD, [stream_id, stream_id, after_version, stream_id, stream_id], binary=True)
        rows = cursor.fetchall()
        if rows:
            head = rows[-1][12]
        else:
            cursor.execute("SELECT version FROM fintech_stream WHERE stream_id = %s", [stream_id])
            found = cursor.fetchone()
            head = found[0] if found else 0
    rows = [row[:12] for row in rows]
    expected = range(after_version + 1, head + 1)
    if len(rows) != len(expected):
        have = {row[7] for row in rows}
        missing = {version for version in expected if version not in have}
        if _archive is not None:
            rows = sorted(rows + _archive.stream_rows(stream_id, missing), key=lambda row: row[7])
        if [row[7] for row in rows] != list(expected):
            raise EventsMissing(
                f"stream {stream_id}: versions {sorted(missing)} are in neither the database nor the archive"
            )
    return [_decode_row(row) for row in rows]


def stream_version(stream_id: uuid.UUID) -> int | None:
    with raw_cursor() as cursor:
        cursor.execute("SELECT version FROM fintech_stream WHERE stream_id = %s", [stream_id])
        row = cursor.fetchone()
    return row[0] if row else None


_START = Checkpoint()


def read_all(*, after: Checkpoint | tuple[int, int] = _START, limit: int = 500) -> list[RecordedEvent]:
    """Committed events after a checkpoint, in (transaction id, position) order, never skipping a late commit.

    Events of transactions that may still be running (at or above the oldest running transaction id) are held
    back until every older transaction has finished, so the checkpoint of the last event returned is safe to
    store.
    """
    return read_batch(after=after, limit=limit).events


@dataclass
class Batch:
    """What read_batch read: the decoded events of the asked types, where to read on from (`end`, the last row
    read of any type) and how many rows were read."""

    events: list[RecordedEvent]
    end: Checkpoint
    read: int


def _horizon(cursor) -> int:
    # Its own statement, before the read: see migration 0003 for why the read must come after it.
    cursor.execute("SELECT fintech_log_horizon()::text::bigint")
    return cursor.fetchone()[0]


# Ordered by the table's columns, not by the select list's transaction_id::text::bigint of the same name: ordered
# by that, PostgreSQL sorted every remaining event for each batch (catch-up quadratic in the log) and the whole
# log for the head, where the log index gives both in order.
_READ_AFTER = (
    f"{_SELECT} WHERE (transaction_id, position) > (%s::text::xid8, %s) AND transaction_id < %s::text::xid8 "
    "ORDER BY fintech_event.transaction_id, fintech_event.position LIMIT %s"
)
_HEAD = (
    "SELECT transaction_id::text::bigint, position FROM fintech_event WHERE transaction_id < %s::text::xid8 "
    "ORDER BY fintech_event.transaction_id DESC, fintech_event.position DESC LIMIT 1"
)


def read_batch(
    *, after: Checkpoint | tuple[int, int] = _START, limit: int = 500, event_types: Collection[str] | None = None
) -> Batch:
    """Like read_all over the next `limit` rows, decoding only the events of `event_types` (all when None):
    a reader moves past the events it does not handle without paying for them. An event of an asked type that
    this code cannot decode raises UndecodableEvent with the events before it."""
    after = Checkpoint(*after)
    with raw_cursor() as cursor:
        horizon = _horizon(cursor)
        cursor.execute(_READ_AFTER, [after.transaction_id, after.position, horizon, limit])
        rows = cursor.fetchall()
    if _archive is not None:
        # Archived months hold events of every age: merged in, the first `limit` of both are the next ones.
        archived = _archive.rows_after(after, limit)
        if archived:
            rows = sorted(rows + archived, key=lambda row: (row[10], row[11]))[:limit]
    events: list[RecordedEvent] = []
    previous = after
    for row in rows:
        if event_types is None or row[3] in event_types:
            try:
                events.append(_decode_row(row))
            except EventSchemaError as error:
                raise UndecodableEvent(row[0], previous, events, str(error)) from error
        previous = Checkpoint(row[10], row[11])
    return Batch(events=events, end=previous, read=len(rows))


@dataclass(frozen=True)
class EventKey:
    """What a set-based reader needs to know of an event without its data: a projection that applies a range
    of the log in SQL (projections.engine) reads these, and the server reads the data itself."""

    checkpoint: Checkpoint
    event_type: str
    event_version: int
    stream_id: str
    created_at: str  # as the server writes it: dt.datetime.fromisoformat reads it, for the one key that needs it


@dataclass(frozen=True)
class KeyBatch:
    """The keys of the next rows (all types), where to read on from, and whether archived rows lie among them
    (the server cannot read those: the caller must take read_batch's way)."""

    keys: list[EventKey]
    end: Checkpoint
    archived: bool


_KEYS_AFTER = (
    # Text, not UUIDs and datetimes: parsed, they cost more than the rest of the read.
    "SELECT transaction_id::text::bigint, position, event_type, event_version, aggregate_id::text, created_at::text "
    "FROM fintech_event WHERE (transaction_id, position) > (%s::text::xid8, %s) AND transaction_id < %s::text::xid8 "
    "ORDER BY fintech_event.transaction_id, fintech_event.position LIMIT %s"
)


def read_keys(*, after: Checkpoint | tuple[int, int] = _START, limit: int = 500) -> KeyBatch:
    """The keys of the rows read_batch would read next, below the same horizon, without their data."""
    after = Checkpoint(*after)
    with raw_cursor() as cursor:
        horizon = _horizon(cursor)
        cursor.execute(_KEYS_AFTER, [after.transaction_id, after.position, horizon, limit])
        rows = cursor.fetchall()
    keys = [EventKey(Checkpoint(tx, position), *rest) for tx, position, *rest in rows]
    archived = _archive is not None and bool(_archive.rows_after(after, limit))
    return KeyBatch(keys=keys, end=keys[-1].checkpoint if keys else after, archived=archived)


def backlog(
    *, after: Checkpoint | tuple[int, int] = _START, event_types: Collection[str] | None = None
) -> tuple[int, dt.datetime | None]:
    """How many committed events (of `event_types`, or all) read_all would still return after a checkpoint, and
    when the oldest of them was written; counted in SQL, so an undecodable event is counted too."""
    after = Checkpoint(*after)
    with raw_cursor() as cursor:
        horizon = _horizon(cursor)
        cursor.execute(
            "SELECT count(*), min(created_at) FROM fintech_event "
            "WHERE (transaction_id, position) > (%s::text::xid8, %s) "
            "AND transaction_id < %s::text::xid8 "
            "AND (%s::text[] IS NULL OR event_type = ANY(%s::text[]))",
            [
                after.transaction_id,
                after.position,
                horizon,
                *[None if event_types is None else list(event_types)] * 2,
            ],
        )
        count, oldest = cursor.fetchone()
    return count, oldest


_OLDEST_PENDING = (
    "SELECT created_at FROM fintech_event WHERE (transaction_id, position) > (%s::text::xid8, %s) "
    "AND transaction_id < %s::text::xid8 AND (%s::text[] IS NULL OR event_type = ANY(%s::text[])) "
    "ORDER BY fintech_event.transaction_id, fintech_event.position LIMIT 1"
)


def oldest_pending(
    *, after: Checkpoint | tuple[int, int] = _START, event_types: Collection[str] | None = None
) -> dt.datetime | None:
    """When the first committed event (of `event_types`, or any) after a checkpoint was written, None when there
    is none: backlog's age, read by the log's index however far behind the checkpoint is (a health probe)."""
    after = Checkpoint(*after)
    with raw_cursor() as cursor:
        horizon = _horizon(cursor)
        types = None if event_types is None else list(event_types)
        cursor.execute(_OLDEST_PENDING, [after.transaction_id, after.position, horizon, types, types])
        row = cursor.fetchone()
    return row[0] if row else None


def head() -> Checkpoint:
    """The checkpoint of the newest event read_all can return now."""
    with raw_cursor() as cursor:
        horizon = _horizon(cursor)
        cursor.execute(_HEAD, [horizon])
        row = cursor.fetchone()
    return Checkpoint(*row) if row else Checkpoint()
