"""Fixtures of the shared-kernel tests: subscribers that record what they hear, raw database connections."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import psycopg
import pytest
from django.db import connection

from fintech import eventstore
from fintech.eventstore import RecordedEvent


@pytest.fixture
def heard() -> Iterator[list[list[RecordedEvent]]]:
    """A subscriber of the event store for the test's duration; each call it receives is one list here."""
    calls: list[list[RecordedEvent]] = []

    def listener(events: list[RecordedEvent]) -> None:
        calls.append(list(events))

    eventstore.subscribe(listener)
    yield calls
    eventstore.unsubscribe(listener)


@pytest.fixture
def raw_connect(transactional_db) -> Iterator[Callable[..., psycopg.Connection]]:
    """Open plain psycopg connections to the test database, outside Django; all closed at teardown."""
    opened: list[psycopg.Connection] = []

    def connect(*, autocommit: bool = False) -> psycopg.Connection:
        settings = connection.settings_dict
        conn = psycopg.connect(
            dbname=settings["NAME"],
            user=settings["USER"] or None,
            password=settings["PASSWORD"] or None,
            host=settings["HOST"] or None,
            port=settings["PORT"] or None,
            autocommit=autocommit,
        )
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        conn.close()
