"""The projection engine: read the global log after a checkpoint, apply handlers, move the checkpoint in the
same transaction (exactly once for the read tables), refresh Redis after commit.

Only one process runs a given projection at a time (a transaction-level advisory lock); different projections
run in parallel. A handler that raises stops its projection at that event: the events before it are kept, the
checkpoint stays just before it, and the error is recorded until a later run gets past it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import psycopg
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from fintech import eventstore
from fintech.db import raw_cursor
from fintech.eventstore import Checkpoint, RecordedEvent
from projections.models import ProjectionState

logger = logging.getLogger(__name__)

Handler = Callable[[object, dict[str, str], RecordedEvent], Iterable[str] | None]


@dataclass
class Projection:
    """A named set of handlers over some read tables. Handlers get a raw cursor, the table names to write (the
    live ones, or the fresh ones of a replay) and the event; they return the ids whose cache to refresh."""

    name: str
    tables: tuple[str, ...]
    handlers: dict[str, Handler]
    refresh: Callable[[set[str]], None] | None = None
    # Every id of the read tables, for rebuild_cache to refresh.
    cached_ids: Callable[[], Iterable[str]] | None = None
    after_batch: Callable[[], None] | None = None
    # A process manager (it writes entries, not a read model) is never rebuilt from the first event.
    replayable: bool = True
    # Handlers that only write, one statement each, never reading an answer: a batch goes to the server in
    # pipeline mode, without a round trip per event.
    pipelined: bool = False
    # A set-based twin of the handlers: applies every handled event of a range of the log, (after, end], in a few
    # statements that read the events' data on the server. Used for the event versions named in range_versions;
    # a batch holding any other, or archived rows, or that fails, takes the handlers' way.
    apply_range: Callable[..., None] | None = None
    range_versions: dict[str, frozenset[int]] = field(default_factory=dict)
    # Called once the handlers have applied a batch, before its checkpoint commits: what it raises rolls the batch
    # back, checkpoint included (the event bus publishes there, and its checkpoint moves only once confirmed).
    before_commit: Callable[[], None] | None = None
    live_tables: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.live_tables = {table: table for table in self.tables}


_REGISTRY: dict[str, Projection] = {}


def projection_register(projection: Projection) -> Projection:
    _REGISTRY[projection.name] = projection
    return projection


def projections() -> dict[str, Projection]:
    return dict(_REGISTRY)


def projection_get(name: str) -> Projection:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise LookupError(f"no projection {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


class HandlerFailed(Exception):
    def __init__(self, index: int, recorded: RecordedEvent) -> None:
        super().__init__(f"handler failed at event {recorded.event_id}")
        self.index = index
        self.event_id = recorded.event_id


def _lock(name: str, *, wait: bool) -> bool:
    with raw_cursor() as cursor:
        function = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
        cursor.execute(f"SELECT {function}(hashtextextended(%s, 0))::text", [f"projection:{name}"])
        return cursor.fetchone()[0] in ("true", "")


def lock_wait(name: str) -> None:
    """Take the projection's lock for the rest of the caller's transaction, waiting for a running worker."""
    _lock(name, wait=True)


def apply_events(
    projection: Projection, tables: dict[str, str], events: list[RecordedEvent], *, pipelined: bool = False
) -> set[str]:
    """Run the handlers over events inside the caller's transaction; HandlerFailed names the failing one
    (pipelined, a database error is only known at the end: apply_located finds its event)."""
    touched: set[str] = set()
    with raw_cursor() as cursor:
        pipeline = connection.connection.pipeline() if pipelined else contextlib.nullcontext()
        with pipeline:
            for index, recorded in enumerate(events):
                handler = projection.handlers.get(recorded.event_type)
                if handler is None:
                    continue
                try:
                    touched.update(handler(cursor, tables, recorded) or ())
                except Exception as error:
                    if pipelined and isinstance(error, psycopg.Error | DatabaseError):
                        # A pipelined statement's error may surface in a later event's statement, so this event
                        # is not necessarily the one that failed: apply_located replays the batch to find it.
                        raise
                    raise HandlerFailed(index, recorded) from error
    return touched


def apply_located(projection: Projection, tables: dict[str, str], events: list[RecordedEvent]) -> set[str]:
    """apply_events in a savepoint, pipelined when the projection allows; a database error in a pipeline is
    located by applying the batch again one event at a time, so HandlerFailed always names its event."""
    if projection.pipelined:
        try:
            with transaction.atomic():
                return apply_events(projection, tables, events, pipelined=True)
        except HandlerFailed:
            raise
        except DatabaseError:
            pass
    with transaction.atomic():
        return apply_events(projection, tables, events)


def projection_run(*, name: str, batch_size: int = 500, wait: bool = False) -> int:
    """Apply every committed event after the projection's checkpoint; returns how many were applied. Returns at
    once when another process holds the projection (unless `wait`)."""
    projection = projection_get(name)
    ProjectionState.objects.get_or_create(name=name)
    done = 0
    while True:
        failure: HandlerFailed | eventstore.UndecodableEvent | None = None
        with transaction.atomic():
            if not _lock(name, wait=wait):
                return done
            state = ProjectionState.objects.select_for_update().get(name=name)
            after = Checkpoint(state.checkpoint_transaction, state.checkpoint_position)
            ranged = _range_apply(projection, after, batch_size) if projection.apply_range else None
            if ranged is not None:
                read, applied, end, touched = ranged
                if read == 0:
                    return done
                last = dt.datetime.fromisoformat(applied[-1].created_at) if applied else None
                _advance(state, end, len(applied), last)
            else:
                try:
                    batch = eventstore.read_batch(after=after, limit=batch_size, event_types=projection.handlers)
                except eventstore.UndecodableEvent as undecodable:
                    failure = undecodable
                    batch = eventstore.Batch(events=undecodable.decoded, end=undecodable.before, read=0)
                if batch.read == 0 and failure is None:
                    return done
                read, events, end = batch.read, batch.events, batch.end
                try:
                    touched = apply_located(projection, projection.live_tables, events)
                except HandlerFailed as failed:
                    failure = failed
                    # Keep what came before the failing event; stop just before it.
                    events = events[: failed.index]
                    end = events[-1].checkpoint if events else after
                    touched = apply_events(projection, projection.live_tables, events, pipelined=projection.pipelined)
                if projection.before_commit is not None:
                    projection.before_commit()
                _advance(state, end, len(events), events[-1].created_at if events else None)
                applied = events
                if failure is not None:
                    _record_failure(state, failure)
            state.save()
        if projection.refresh and touched:
            _refresh(projection, touched)
        if projection.after_batch:
            projection.after_batch()
        done += len(applied)
        if failure is not None:
            logger.error("projection %s stopped at event %s", name, failure.event_id, exc_info=failure)
            return done
        if read < batch_size:
            return done


def _range_apply(
    projection: Projection, after: Checkpoint, limit: int
) -> tuple[int, list[eventstore.EventKey], Checkpoint, set[str]] | None:
    """(rows read, keys of the events applied, the new checkpoint, the ids to refresh) of the next batch applied
    by the projection's apply_range in the caller's transaction; None when the handlers must take it instead."""
    batch = eventstore.read_keys(after=after, limit=limit)
    if batch.archived:
        return None
    handled = [key for key in batch.keys if key.event_type in projection.handlers]
    if any(key.event_version not in projection.range_versions.get(key.event_type, ()) for key in handled):
        return None
    if handled:
        try:
            with transaction.atomic():
                projection.apply_range(tables=projection.live_tables, after=after, end=batch.end, keys=handled)
        except DatabaseError:
            # The handlers apply the batch again, event by event, and name the one that fails.
            logger.warning("projection %s: a range failed in SQL, applied by its handlers", projection.name)
            return None
    return len(batch.keys), handled, batch.end, {key.stream_id for key in handled}


def _advance(state: ProjectionState, end: Checkpoint, count: int, last_created_at) -> None:
    state.checkpoint_transaction, state.checkpoint_position = end
    state.events_applied += count
    if last_created_at is not None:
        state.last_event_at = last_created_at
    state.error, state.error_event_id, state.error_at = "", None, None


def _record_failure(state: ProjectionState, failure: HandlerFailed | eventstore.UndecodableEvent) -> None:
    cause = failure.__cause__ or failure
    state.error = "".join(traceback.format_exception(cause))[-4000:]
    state.error_event_id = failure.event_id
    state.error_at = timezone.now()


def _refresh(projection: Projection, touched: set[str]) -> None:
    try:
        projection.refresh(touched)
    except Exception:
        # Redis is a cache of the read tables: queries fall back to them meanwhile. What it missed is recorded,
        # for the next run once Redis answers (services.cache_repair): else an entry it kept from before the
        # outage would be served, stale, until its entity changes again (a balance: for ever).
        logger.warning("projection %s could not refresh its cache; recorded for repair", projection.name, exc_info=True)
        cache_misses_record(projection.name, touched)


def cache_misses_record(name: str, entity_ids: Iterable[str]) -> None:
    """Record cache entries of a projection that Redis did not take (CacheMiss)."""
    with raw_cursor() as cursor:
        cursor.execute(
            "INSERT INTO projections_cache_miss (projection, entity_id, missed_at) "
            "SELECT %s, entity_id, clock_timestamp() FROM unnest(%s::text[]) AS entity_id "
            "ON CONFLICT (projection, entity_id) DO UPDATE SET missed_at = EXCLUDED.missed_at",
            [name, sorted(entity_ids)],
        )
