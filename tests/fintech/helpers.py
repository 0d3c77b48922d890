"""Test-only events and plain helpers of the shared-kernel tests (fixtures live in conftest.py).

The event types here are registered in the process-wide registry like real ones; their names start with
`Kernel` so that no application event can claim them.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from django.db import connection

from fintech import eventstore
from fintech.events import DomainEvent
from fintech.eventstore import Checkpoint, RecordedEvent
from fintech.money import Money

AGGREGATE_TYPE = "kernel_test"

T = TypeVar("T")

START = Checkpoint()


@dataclass(frozen=True, kw_only=True)
class KernelEvent(DomainEvent):
    aggregate_type = AGGREGATE_TYPE


@dataclass(frozen=True, kw_only=True)
class KernelNoted(KernelEvent):
    """A small event carrying one string."""

    note: str


@dataclass(frozen=True, kw_only=True)
class KernelAmountRecorded(KernelEvent):
    """An event using every type the codec knows."""

    amount: Money
    reference: uuid.UUID
    value_date: dt.date
    recorded_at: dt.datetime
    tags: tuple[str, ...] = ()
    details: dict | None = None
    counterparty: uuid.UUID | None = None


@dataclass(frozen=True, kw_only=True)
class KernelOrphaned(DomainEvent):
    """An event that names no aggregate type."""


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def noted(note: str = "x", *, occurred_at: dt.datetime | None = None) -> KernelNoted:
    return KernelNoted(occurred_at=occurred_at or now(), note=note)


def new_stream() -> uuid.UUID:
    return uuid.uuid4()


def event_rows(stream_id: uuid.UUID) -> list[tuple[int, str]]:
    """(version, event_type) of the rows of one stream, read straight from the table."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT version, event_type FROM fintech_event WHERE aggregate_id = %s ORDER BY version", [stream_id]
        )
        return list(cursor.fetchall())


def event_count() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM fintech_event")
        return cursor.fetchone()[0]


def read_everything(after: Checkpoint = START, *, limit: int = 500) -> tuple[list[RecordedEvent], Checkpoint]:
    """Page through read_all like a projection does; returns the events and the checkpoint to store."""
    events: list[RecordedEvent] = []
    while True:
        page = eventstore.read_all(after=after, limit=limit)
        if not page:
            return events, after
        events += page
        after = page[-1].checkpoint


def read_streams(*streams: uuid.UUID, count: int, timeout: float = 30.0) -> list[RecordedEvent]:
    """The log's events of these streams, once `count` of them are readable (fewer when it times out)."""

    def probe() -> list[RecordedEvent]:
        mine = [event for event in read_everything()[0] if event.stream_id in streams]
        return mine if len(mine) >= count else []

    return wait_for(probe, timeout=timeout) or [e for e in read_everything()[0] if e.stream_id in streams]


def wait_for(probe: Callable[[], T], *, timeout: float = 30.0) -> T:
    """Call `probe` until it returns something truthy.

    read_all holds back events above the oldest running transaction id of this database: an event committed
    here becomes readable once this database's older transactions (another thread's, a worker's) have ended.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.05)
