"""Raw database access for the hot paths, and a connection of one's own for records that must outlive a
rollback.

`raw_cursor` is a cursor straight on the psycopg connection Django manages: same session and transactions as
the ORM (atomic blocks included), errors still mapped to Django's; what it saves is the ORM's query building
and Django's cursor wrapper, which together cost more client time than the statement itself on the paths every
payment takes (the event store, the vault's card reads).

`own_connection_execute` writes on a second, autocommit connection per thread: what it writes is committed at
once and stays whatever the caller's transaction does (the vault's detokenisation audit, the record of an
acquirer call).
"""

import threading
from collections.abc import Sequence
from typing import Any

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections


class _Spare(threading.local):
    cursor: Any = None


_spare = _Spare()


class raw_cursor:  # noqa: N801 - used as a function: `with raw_cursor() as cursor:`
    """A cursor on this thread's Django connection, Django's error mapping around its statements.

    A class, not a generator-based context manager: contextlib's machinery cost more than the rest of it, and
    it runs for every statement of every command."""

    __slots__ = ("_cursor", "_errors")

    def __enter__(self) -> Any:
        # One look-up of this thread's connection: each attribute read through django.db.connection (a proxy)
        # is another thread-local look-up.
        wrapper = connections[DEFAULT_DB_ALIAS]
        if wrapper.connection is None:
            wrapper.ensure_connection()
        connection = wrapper.connection
        self._errors = wrapper.wrap_database_errors
        # The thread's spare cursor, if it is on this connection: a new psycopg cursor costs about a third of a
        # small statement's client time. Taken while in use, so a raw_cursor opened inside this one gets its
        # own.
        cursor, _spare.cursor = _spare.cursor, None
        if cursor is None or cursor.connection is not connection or cursor.closed:
            with self._errors:
                cursor = connection.cursor()
        self._cursor = cursor
        return cursor

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        _spare.cursor = self._cursor
        if exc_type is not None:
            # Raises the Django error that maps a driver's error (DatabaseErrorWrapper); lets any other through.
            self._errors.__exit__(exc_type, exc_value, traceback)


def raw_cursor_forget() -> None:
    """Drop this thread's spare cursor: the next raw_cursor opens a new one from the connection's
    `cursor_factory` (the bench counts statements with a factory of its own)."""
    _spare.cursor = None


def advisory_xact_lock(key: str) -> None:
    """Wait for the advisory lock named `key`, then hold it until this transaction ends: what serialises the
    callers of one key (a payment's commands, an idempotency key, a merchant's endpoints, the settlement run)
    without a row to lock."""
    with raw_cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [key])


class _OwnConnection:
    """One thread's autocommit connection; closed when the thread ends and its thread-local goes away."""

    def __init__(self, connection: psycopg.Connection) -> None:
        self.connection = connection
        self.cursor = connection.cursor()  # one statement at a time: reused, as a new cursor costs

    def __del__(self) -> None:
        self.connection.close()


_own = threading.local()
# How the own connections show in pg_stat_activity.
OWN_CONNECTION_NAME = "fintech-own"


def _own_connection_new() -> psycopg.Connection:
    # The parameters of Django's own connection (server, user, database: the test database under tests).
    params = connections[DEFAULT_DB_ALIAS].get_connection_params()
    return psycopg.connect(**{**params, "application_name": OWN_CONNECTION_NAME, "autocommit": True})


def own_connection_execute(sql: str, params: Sequence[Any]) -> list[tuple]:
    """Run one statement on this thread's own autocommit connection: it is committed when this returns,
    whatever becomes of the caller's transaction (a record that must survive the caller's rollback). Returns
    the rows the statement returned, if any.

    The connection is opened on first use and kept for the thread; one that the server has dropped is replaced
    and the statement sent once more: a write may then land twice, so one that must not ignores a conflict on
    its key."""
    held = getattr(_own, "held", None)
    if held is not None and not held.connection.closed:
        try:
            return _rows(held.cursor, sql, params)
        except psycopg.OperationalError:
            # Dropped since its last use (server restart, idle timeout): sent again on a new connection.
            if not held.connection.closed and not held.connection.broken:
                raise
    _own.held = _OwnConnection(_own_connection_new())
    return _rows(_own.held.cursor, sql, params)


def _rows(cursor, sql: str, params: Sequence[Any]) -> list[tuple]:
    cursor.execute(sql, params)
    # pgresult's status, not cursor.description, which builds a Column object per column to answer.
    return cursor.fetchall() if cursor.pgresult.status == psycopg.pq.ExecStatus.TUPLES_OK else []


def own_connection_close() -> None:
    """Close this thread's own connection, if it has one (the test database cannot be dropped while it is
    open)."""
    held = getattr(_own, "held", None)
    if held is not None:
        _own.held = None
        held.connection.close()
