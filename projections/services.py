"""Projection commands: wake, replay into fresh tables, rebuild the cache."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator

import redis
from django.conf import settings
from django.db import DatabaseError, connection, transaction

from fintech import eventstore
from fintech.db_roles import privileges_copy
from fintech.eventstore import Checkpoint, RecordedEvent
from projections import cache, engine
from projections.models import CacheMiss, ProjectionState

logger = logging.getLogger(__name__)

# ruff: noqa: S608 - table names below are the projection's own, never input


# A run reads everything committed so far, so one wake-up per interval (PROJECTIONS_WAKE_INTERVAL_SECONDS) is as
# good as one per commit, and it keeps broker sends off the commands' path. The first commit of an interval, in
# any process, takes a short Redis gate and sends one fan-out wake-up; the worker that runs it sends itself
# another for the interval's end, which covers every commit made meanwhile by every process (a send costs about
# a millisecond of CPU, better the worker's than a command's). The others only learn, in the same round trip,
# how long the gate still holds, and skip Redis until then. Beat's catch-up remains the safety net for anything
# lost.
WAKE_GATE_KEY = "projections:wake"
BROKER_DOWN_PAUSE_SECONDS = 5.0
_quiet_until = 0.0


def projections_wake(events: list[RecordedEvent]) -> None:
    """Event store subscriber: after a commit, make sure the worker runs every projection soon."""
    global _quiet_until  # noqa: PLW0603 - a per-process note of the gate, to spare Redis round trips
    if not settings.PROJECTIONS_WAKE_ON_COMMIT:
        return
    now = time.monotonic()
    if now < _quiet_until:
        return
    interval_ms = int(settings.PROJECTIONS_WAKE_INTERVAL_SECONDS * 1000)
    try:
        pipe = cache.client().pipeline(transaction=False)
        pipe.set(WAKE_GATE_KEY, "1", nx=True, px=interval_ms)
        pipe.pttl(WAKE_GATE_KEY)
        won, remaining_ms = pipe.execute()
    except redis.RedisError:
        won, remaining_ms = True, interval_ms
    _quiet_until = now + max(remaining_ms, 0) / 1000
    if won:
        from projections.tasks import projections_wake_task

        try:
            projections_wake_task.delay(trail=True)
        except Exception:
            # The broker is down: this process stops trying for a while rather than make every commit wait on
            # it; the events wait in the log for beat's catch-up or the first wake-up after the pause. The
            # failure still reaches the event store's log.
            _quiet_until = time.monotonic() + BROKER_DOWN_PAUSE_SECONDS
            raise


def projections_wake_prepare() -> None:
    """Send one wake-up now, for a process about to serve commands: its first send pays the Celery app's
    finalisation and the broker connection (about 60 ms of CPU here), which would otherwise fall on whichever
    command's commit first wins the wake-up gate."""
    if not settings.PROJECTIONS_WAKE_ON_COMMIT:
        return
    from projections.tasks import projections_wake_task

    projections_wake_task.delay()


class NotReplayable(Exception):
    pass


class ReplayRunning(Exception):
    """Another replay of the same projection runs now: both would build the same fresh tables."""


@contextlib.contextmanager
def _replay_lock(name: str) -> Iterator[None]:
    # Session-level: held across the replay's own transactions, released by a killed process's disconnect.
    key = f"projection-replay:{name}"
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", [key])
        if not cursor.fetchone()[0]:
            raise ReplayRunning(f"a replay of {name} is already running")
    try:
        yield
    finally:
        # A connection lost meanwhile took the lock with it.
        with contextlib.suppress(DatabaseError), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [key])


def projection_replay(
    *, name: str, batch_size: int = 2000, progress: Callable[[int, int, float], None] | None = None
) -> int:
    """Rebuild a read model from the first event into fresh tables while the old ones keep serving, then swap
    them in, with the checkpoint, in one transaction. Returns the number of events read. When a handler fails
    or an event cannot be decoded, the fresh tables are dropped, the live ones are untouched, and it raises.
    Raises ReplayRunning while another replay of it runs (the command, the console)."""
    projection = engine.projection_get(name)
    if not projection.replayable:
        raise NotReplayable(f"{name} is a process manager, not a read model: it is never replayed")
    with _replay_lock(name):
        return _replay(projection, batch_size=batch_size, progress=progress)


def _replay(
    projection: engine.Projection, *, batch_size: int, progress: Callable[[int, int, float], None] | None
) -> int:
    name = projection.name
    fresh = {table: f"{table}__replay" for table in projection.tables}
    with connection.cursor() as cursor:
        for table, new in fresh.items():
            cursor.execute(f"DROP TABLE IF EXISTS {new}")
            cursor.execute(f"CREATE TABLE {new} (LIKE {table} INCLUDING ALL)")
    total, started, end, last_created = 0, time.monotonic(), Checkpoint(), None
    expected, _ = eventstore.backlog(event_types=projection.handlers)

    def catch_up() -> None:
        nonlocal total, end, last_created
        while True:
            batch = eventstore.read_batch(after=end, limit=batch_size, event_types=projection.handlers)
            if not batch.read:
                return
            engine.apply_located(projection, fresh, batch.events)
            end, total = batch.end, total + len(batch.events)
            if batch.events:
                last_created = batch.events[-1].created_at
            if progress:
                progress(total, max(0, expected - total), time.monotonic() - started)

    try:
        catch_up()
        with transaction.atomic():
            # The live projection waits while we take the last events and swap.
            engine.lock_wait(name)
            catch_up()
            with connection.cursor() as cursor:
                for table, new in fresh.items():
                    _swap(cursor, table, new)
            ProjectionState.objects.update_or_create(
                name=name,
                defaults={
                    "checkpoint_transaction": end.transaction_id,
                    "checkpoint_position": end.position,
                    "events_applied": total,
                    "last_event_at": last_created,
                    "error": "",
                    "error_event_id": None,
                    "error_at": None,
                },
            )
    except BaseException:
        with connection.cursor() as cursor:
            for new in fresh.values():
                cursor.execute(f"DROP TABLE IF EXISTS {new}")
        raise
    return total


def _index_names(cursor, table: str) -> dict[str, str]:
    """The table's index names by their definition without the index and table names."""
    cursor.execute(
        "SELECT c.relname, i.indisunique, pg_get_indexdef(i.indexrelid) "
        "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %s::regclass",
        [table],
    )
    return {f"{unique} {definition.split(' USING ', 1)[1]}": name for name, unique, definition in cursor.fetchall()}


def _id_sequence(cursor, table: str) -> str | None:
    cursor.execute(
        "SELECT pg_get_serial_sequence(%s, 'id') FROM pg_attribute "
        "WHERE attrelid = %s::regclass AND attname = 'id' AND NOT attisdropped",
        [table, table],
    )
    row = cursor.fetchone()
    return row[0] if row else None


def _swap(cursor, table: str, new: str) -> None:
    """Put `new` in the place of `table` under the same index, constraint and sequence names, so that later
    migrations still find them."""
    old_indexes, new_indexes = _index_names(cursor, table), _index_names(cursor, new)
    old_sequence, new_sequence = _id_sequence(cursor, table), _id_sequence(cursor, new)
    # The replay runs as the tables' owner: the application's role keeps on the new table what it had on the old.
    privileges_copy(cursor, source=table, target=new)
    cursor.execute(f"DROP TABLE {table}")
    cursor.execute(f"ALTER TABLE {new} RENAME TO {table}")
    for definition, name in new_indexes.items():
        # Renaming the index behind a primary key or unique constraint renames the constraint too.
        cursor.execute(f'ALTER INDEX "{name}" RENAME TO "{old_indexes[definition]}"')
    if old_sequence and new_sequence:
        cursor.execute(f"ALTER SEQUENCE {new_sequence} RENAME TO {old_sequence.rsplit('.', 1)[-1]}")


def cache_repair(*, name: str, batch_size: int = 1000) -> int:
    """Write to Redis the entries a projection could not while Redis was unreachable (engine.cache_misses_record),
    from the read tables, and drop their records; returns how many were written. While Redis still does not
    answer it writes nothing and the records wait for the next run. Run after every projection run: without
    misses it is one indexed query."""
    projection = engine.projection_get(name)
    if projection.refresh is None:
        return 0
    repaired = 0
    while True:
        misses = list(
            CacheMiss.objects.filter(projection=name)
            .order_by("pk")
            .values_list("pk", "entity_id", "missed_at")[:batch_size]
        )
        if not misses:
            return repaired
        try:
            projection.refresh({entity_id for _, entity_id, _ in misses})
        except redis.RedisError:
            logger.info("Redis still unavailable: %s cache entries of %s wait for repair", len(misses), name)
            return repaired
        with connection.cursor() as cursor:
            # Only the records as read: an entry missed again meanwhile (a later missed_at) stays for the next run.
            cursor.execute(
                "DELETE FROM projections_cache_miss m USING unnest(%s::bigint[], %s::timestamptz[]) AS d(pk, at) "
                "WHERE m.id = d.pk AND m.missed_at = d.at",
                [[pk for pk, _, _ in misses], [at for _, _, at in misses]],
            )
        repaired += len(misses)
        if len(misses) < batch_size:
            return repaired


# Beside the entries, in the same Redis database: the run id of the server the caches were filled on. A restart
# (without persistence, or from a save older than the entries), a flush or a failover changes or removes it.
CACHE_SERVER_KEY = "projections:cache:server"


def caches_refill_if_lost() -> list[str]:
    """Refill every projection's cache from its read tables when Redis is not the server they were filled on or
    lost the note of it: then its entries are missing or older than the tables, and nothing else would put back
    a balance nobody reads or changes. Beat's catch-up runs it; returns the projections refilled (none while
    Redis does not answer)."""
    try:
        client = cache.client()
        server = client.info("server")["run_id"]
        noted = client.get(CACHE_SERVER_KEY)
        if noted is not None and noted.decode() == server:
            return []
        names = sorted(name for name, projection in engine.projections().items() if projection.cached_ids)
        for name in names:
            cache_rebuild(name=name)
        # Noted last: a refill cut short by another outage is done again by the next catch-up.
        client.set(CACHE_SERVER_KEY, server)
    except redis.RedisError:
        logger.info("Redis unavailable: the caches' server not checked")
        return []
    logger.warning("Redis %s did not hold the caches' entries: refilled %s", server, ", ".join(names))
    return names


def cache_rebuild(*, name: str, progress: Callable[[int, int], None] | None = None) -> int:
    """Refill Redis from a projection's read tables; returns the number of entries written. `progress` hears
    (written, left) after each thousand."""
    projection = engine.projection_get(name)
    if projection.refresh is None or projection.cached_ids is None:
        return 0
    ids = [str(i) for i in projection.cached_ids()]
    for start in range(0, len(ids), 1000):
        projection.refresh(set(ids[start : start + 1000]))
        if progress:
            done = min(start + 1000, len(ids))
            progress(done, len(ids) - done)
    return len(ids)
