"""The bench database: `<name>_bench` on the server the Django settings point at, dropped and re-created.

The server comes from the settings (DATABASE_URL, or the embedded server fintech.devservices starts when it is
unset). The parent process points both the settings and the environment (which the spawned clients inherit) at
the bench database before Django connects anywhere, so neither the developer's nor the tests' data is touched.
"""

from __future__ import annotations

import collections
import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import quote, urlparse

import psycopg
from psycopg import sql

SUFFIX = "_bench"
EXPECTED_TYPES = ["PaymentInitiated", "PaymentAuthorized", "PaymentCaptured"]


@dataclass(frozen=True)
class BenchDatabase:
    name: str
    url: str
    server: str


def _with_database(url: str, name: str) -> str:
    return urlparse(url)._replace(path="/" + quote(name)).geturl()


def prepare() -> BenchDatabase:
    """Resolve the server from the settings, re-create `<name>_bench`, point Django and the env at it, migrate."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fintech.settings")
    import django
    from django.conf import settings

    source_url, redis_url = settings.DATABASE_URL, settings.REDIS_URL
    database = settings.DATABASES["default"]
    name = database["NAME"] + SUFFIX
    bench = BenchDatabase(
        name=name,
        url=_with_database(source_url, name),
        server=database["HOST"] + (f":{database['PORT']}" if database["PORT"] else ""),
    )
    _recreate(source_url, name)

    # Before the first connection: this process and every client it spawns now see only the bench database.
    database["NAME"] = name
    os.environ["DATABASE_URL"] = bench.url
    os.environ["REDIS_URL"] = redis_url
    django.setup()
    from django.core.management import call_command
    from django.db import connection

    if connection.settings_dict["NAME"] != name:
        raise RuntimeError(f"Django is not connected to {name}")
    call_command("migrate", interactive=False, verbosity=0)
    connection.close()
    return bench


def _recreate(source_url: str, name: str) -> None:
    """DROP and CREATE the bench database from a maintenance connection to the same server."""
    source_name = urlparse(source_url).path.lstrip("/")
    last_error: Exception | None = None
    for maintenance in ("postgres", source_name, "template1"):
        try:
            conn = psycopg.connect(_with_database(source_url, maintenance), autocommit=True)
        except psycopg.OperationalError as error:
            last_error = error
            continue
        with conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return
    raise RuntimeError(f"cannot reach a maintenance database on the server: {last_error}")


def server_version(url: str) -> str:
    with psycopg.connect(url) as conn:
        return conn.execute("SHOW server_version").fetchone()[0]


def audit_high_water(url: str) -> int:
    """The last detokenisation audit row so far: `verify` counts the rows after it."""
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT coalesce(max(id), 0) FROM vault_detokenizationaudit").fetchone()[0]


def verify(url: str, payment_ids: list[uuid.UUID], *, audits_after: int, tokens: tuple[str, ...]) -> None:
    """Every payment is one stream at version 3 with exactly initiated, authorized, captured at versions 1..3,
    and the run left one granted detokenisation audit row per payment, by the gateway, for the run's cards.

    Audit rows are counted by run, not matched to payments by purpose: the vault masks whatever looks like a
    card number in the purpose, and that includes some payment ids (the digits and dashes of a UUID)."""
    expected = len(payment_ids)
    if len(set(payment_ids)) != expected:
        raise AssertionError("a payment id was reported twice")
    with psycopg.connect(url) as conn:
        streams = conn.execute(
            "SELECT count(*) FROM fintech_stream WHERE stream_id = ANY(%s) AND version = 3 AND aggregate_type = %s",
            [payment_ids, "payment"],
        ).fetchone()[0]
        events = conn.execute(
            "SELECT count(*) FROM fintech_event WHERE aggregate_id = ANY(%s)", [payment_ids]
        ).fetchone()[0]
        well_formed = conn.execute(
            "SELECT count(*) FROM (SELECT aggregate_id FROM fintech_event WHERE aggregate_id = ANY(%s) "
            "GROUP BY aggregate_id HAVING array_agg(event_type::text ORDER BY version) = %s "
            "AND array_agg(version ORDER BY version) = ARRAY[1, 2, 3]) AS payments",
            [payment_ids, EXPECTED_TYPES],
        ).fetchone()[0]
        audits, granted = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE outcome = 'granted' AND channel = 'gateway' "
            "AND actor = 'system:acquirer-gateway' AND token = ANY(%s) AND purpose LIKE 'authorization of payment %%') "
            "FROM vault_detokenizationaudit WHERE id > %s",
            [list(tokens), audits_after],
        ).fetchone()
    if (streams, events, well_formed, audits, granted) != (expected, 3 * expected, expected, expected, expected):
        raise AssertionError(
            f"{expected} payments: {streams} streams at version 3, {events} events (want {3 * expected}), "
            f"{well_formed} with initiated/authorized/captured at versions 1..3, {audits} detokenisation audit "
            f"rows ({granted} granted to the gateway for the run's cards; want one per payment)"
        )


def verify_through_service(payment_ids: list[uuid.UUID]) -> None:
    """The event store reads the payments back as captured (hand-written rows included)."""
    from fintech.money import Money
    from payments.domain import CAPTURED
    from payments.services import payment_load

    for payment_id in payment_ids:
        payment = payment_load(payment_id=payment_id)
        method = payment.payment_method
        if (payment.status, payment.version, payment.captured_amount, method.brand, method.last4) != (
            CAPTURED,
            3,
            Money(5000, "JPY"),
            "visa",
            "4242",
        ):
            raise AssertionError(f"payment {payment_id} loads as {payment.status} v{payment.version} with {method}")


# What one payment costs the database ------------------------------------------------------------------------
@dataclass
class Work:
    """Statements a client sent (by first keyword, and their text in order), and what the server did for them:
    transactions, and per table (partitions under their parent) scans, rows inserted, rows updated."""

    statements: collections.Counter[str] = field(default_factory=collections.Counter)
    texts: list[str] = field(default_factory=list)
    transactions: int | None = None
    tables: dict[str, tuple[int, int, int]] = field(default_factory=dict)

    def totals(self) -> tuple[int, int, int]:
        return tuple(sum(column) for column in zip(*self.tables.values(), strict=True)) or (0, 0, 0)


def _text(query: object, conn: psycopg.Connection) -> str:
    if isinstance(query, sql.Composable):
        query = query.as_string(conn)
    if isinstance(query, bytes | bytearray | memoryview):
        query = bytes(query).decode()
    return str(query)


@contextlib.contextmanager
def _statements_sent(conn: psycopg.Connection) -> Iterator[Work]:
    """Count every statement sent on a psycopg connection. Every cursor comes from `conn.cursor_factory`,
    Django's cursor wrapper, the event store's raw cursor and `conn.execute` alike, and every BEGIN and COMMIT
    from `conn._exec_command`, Django's atomic and psycopg's commit alike, so both implementations are counted
    the same way."""
    work = Work()
    base = conn.cursor_factory

    def count(query: object, times: int = 1) -> None:
        text = _text(query, conn)
        work.statements[text.split(None, 1)[0].upper()] += times
        work.texts.extend([text] * times)

    class Counting(base):
        def execute(self, query, params=None, **kwargs):
            count(query)
            return super().execute(query, params, **kwargs)

        def executemany(self, query, params_seq, **kwargs):
            params_seq = list(params_seq)
            count(query, len(params_seq))
            return super().executemany(query, params_seq, **kwargs)

    # Transaction control (the BEGIN psycopg sends before a statement when autocommit is off, COMMIT, ROLLBACK)
    # takes the connection's internal command path, not a cursor: count it there.
    exec_command = conn._exec_command

    def counting_command(command, *args, **kwargs):
        count(command)
        return exec_command(command, *args, **kwargs)

    conn.cursor_factory = Counting
    conn._exec_command = counting_command
    try:
        yield work
    finally:
        conn.cursor_factory = base
        del conn._exec_command


_SERVER_STATS = """
SELECT (SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()),
       coalesce(parent.relname, t.relname),
       sum(coalesce(t.seq_scan, 0) + coalesce(t.idx_scan, 0)), sum(t.n_tup_ins), sum(t.n_tup_upd)
FROM pg_stat_user_tables t
LEFT JOIN pg_inherits i ON i.inhrelid = t.relid LEFT JOIN pg_class parent ON parent.oid = i.inhparent
GROUP BY 2
"""


def _server_stats(conn: psycopg.Connection) -> tuple[int, dict[str, tuple[int, int, int]]]:
    # This backend's counters reach the shared statistics when it next goes idle after a forced flush
    # (PostgreSQL 15+), before it answers: read them in the following statement.
    # Never prepared: psycopg's PREPARE is a server round trip, and a transaction, of its own.
    conn.execute("SELECT pg_stat_force_next_flush()", prepare=False)
    rows = conn.execute(_SERVER_STATS, prepare=False).fetchall()
    return rows[0][0], {table: (int(scans), int(ins), int(upd)) for _, table, scans, ins, upd in rows}


_OTHERS = (
    "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
    "AND datid = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


def _wait_alone(conn: psycopg.Connection, timeout: float = 5.0) -> None:
    """Until no other backend is in the database: one that is leaving flushes its counters before it goes."""
    deadline = time.monotonic() + timeout
    while conn.execute(_OTHERS, prepare=False).fetchone()[0] and time.monotonic() < deadline:
        time.sleep(0.02)


def _measure_once(conn: psycopg.Connection, action: Callable[[], object]) -> Work:
    server = conn.info.server_version >= 150000
    if server:
        _wait_alone(conn)
        transactions_before, tables_before = _server_stats(conn)
    with _statements_sent(conn) as work:
        action()
    if server:
        transactions_after, tables_after = _server_stats(conn)
        # Between the two reads: the first read's statement and the second flush are transactions too.
        work.transactions = transactions_after - transactions_before - 2
        for table, after in tables_after.items():
            before = tables_before.get(table, (0, 0, 0))
            delta = tuple(a - b for a, b in zip(after, before, strict=True))
            if any(delta):
                work.tables[table] = delta
    return work


def measure_work(conn: psycopg.Connection, action: Callable[[], object], *, repeat: int = 3) -> Work:
    """Run `action` (which must use only `conn`, in autocommit) `repeat` times and return the work it cost
    the database. Server-side figures need PostgreSQL 15+ and count every backend of the database: the least
    of the repeats is kept (autovacuum workers visit each database now and then), after waiting for other
    connections to have gone. A statement psycopg prepares during `action` (at its 5th run) adds a
    transaction of its own."""
    works = [_measure_once(conn, action) for _ in range(repeat)]
    if any(work.texts != works[0].texts for work in works):
        raise RuntimeError(f"the same action sent different statements: {[dict(w.statements) for w in works]}")
    return min(works, key=lambda work: (work.transactions or 0, work.totals()))


def describe(work: Work) -> str:
    counter = work.statements
    text = f"{sum(counter.values())} ({', '.join(f'{kind} {n}' for kind, n in sorted(counter.items()))})"
    if work.transactions is not None:
        scans, inserted, updated = work.totals()
        text += f"; server: {work.transactions} transactions, {scans} scans, {inserted} rows in, {updated} updated"
    return text


def describe_tables(work: Work) -> str:
    return ", ".join(
        f"{table} {scans}/{inserted}/{updated}" for table, (scans, inserted, updated) in sorted(work.tables.items())
    )
