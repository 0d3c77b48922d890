"""Projection commands: wake, replay into fresh tables, rebuild the cache."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.db import connection, transaction

from fintech import eventstore
from fintech.eventstore import Checkpoint, RecordedEvent
from projections import engine
from projections.models import ProjectionState

logger = logging.getLogger(__name__)

# ruff: noqa: S608 - table names below are the projection's own, never input


# A run reads everything committed so far, so one wake-up per interval is as good as one per commit, and it
# keeps a broker round trip off every command: a projection is woken at once, and commits within the next
# interval share one delayed wake-up at its end, so the last of them is never left to the beat catch-up.
WAKE_INTERVAL_SECONDS = 0.2
_next_wake: dict[str, float] = {}
_delayed_wake: dict[str, float] = {}


def projections_wake(events: list[RecordedEvent]) -> None:
    """Event store subscriber: after a commit, ask the worker to run every projection (coalesced per process)."""
    if not settings.PROJECTIONS_WAKE_ON_COMMIT:
        return
    from projections.tasks import projection_run_task

    now = time.monotonic()
    for name in engine.projections():
        due = _next_wake.get(name, now)
        if now >= due:
            _next_wake[name] = now + WAKE_INTERVAL_SECONDS
            projection_run_task.delay(name)
        elif _delayed_wake.get(name, 0.0) < due:
            _delayed_wake[name] = due
            projection_run_task.apply_async((name,), countdown=due - now)


def projection_replay(
    *, name: str, batch_size: int = 2000, progress: Callable[[int, int, float], None] | None = None
) -> int:
    """Rebuild a read model from the first event into fresh tables while the old ones keep serving, then swap
    them in, with the checkpoint, in one transaction. Returns the number of events read."""
    projection = engine.projection_get(name)
    fresh = {table: f"{table}__replay" for table in projection.tables}
    with connection.cursor() as cursor:
        for table, new in fresh.items():
            cursor.execute(f"DROP TABLE IF EXISTS {new}")
            cursor.execute(f"CREATE TABLE {new} (LIKE {table} INCLUDING ALL)")
    total, started, checkpoint = 0, time.monotonic(), Checkpoint()
    head = eventstore.head()

    def catch_up() -> None:
        nonlocal total, checkpoint
        while True:
            events = eventstore.read_all(after=checkpoint, limit=batch_size)
            if not events:
                return
            with transaction.atomic():
                engine.apply_events(projection, fresh, events)
            checkpoint = events[-1].checkpoint
            total += len(events)
            if progress:
                progress(total, _position_distance(checkpoint, head), time.monotonic() - started)

    catch_up()
    with transaction.atomic():
        # The live projection waits while we take the last events and swap.
        engine.lock_wait(name)
        catch_up()
        with connection.cursor() as cursor:
            for table, new in fresh.items():
                cursor.execute(f"ALTER TABLE {table} RENAME TO {table}__old")
                cursor.execute(f"ALTER TABLE {new} RENAME TO {table}")
                cursor.execute(f"DROP TABLE {table}__old")
        ProjectionState.objects.update_or_create(
            name=name,
            defaults={
                "checkpoint_transaction": checkpoint.transaction_id,
                "checkpoint_position": checkpoint.position,
                "events_applied": total,
                "error": "",
                "error_event_id": None,
                "error_at": None,
            },
        )
    return total


def _position_distance(checkpoint: Checkpoint, head: Checkpoint) -> int:
    return max(0, head.position - checkpoint.position)


def cache_rebuild(*, name: str) -> int:
    """Refill Redis from a projection's read tables; returns the number of entries written."""
    projection = engine.projection_get(name)
    if projection.refresh is None:
        return 0
    from projections.models import PaymentView

    ids = [str(i) for i in PaymentView.objects.values_list("payment_id", flat=True)]
    for start in range(0, len(ids), 1000):
        projection.refresh(set(ids[start : start + 1000]))
    return len(ids)
