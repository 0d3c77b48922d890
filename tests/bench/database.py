"""The bench database: `<name>_bench` on the server the Django settings point at, dropped and re-created.

The server comes from the settings (DATABASE_URL, or the embedded server fintech.devservices starts when it is
unset). The parent process points both the settings and the environment (which the spawned clients inherit) at
the bench database before Django connects anywhere, so neither the developer's nor the tests' data is touched.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
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


def verify(url: str, payment_ids: list[uuid.UUID]) -> None:
    """Every payment is one stream at version 3 with exactly initiated, authorized, captured at versions 1..3."""
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
    if (streams, events, well_formed) != (expected, 3 * expected, expected):
        raise AssertionError(
            f"{expected} payments: {streams} streams at version 3, {events} events (want {3 * expected}), "
            f"{well_formed} with initiated/authorized/captured at versions 1..3"
        )


def verify_through_service(payment_ids: list[uuid.UUID]) -> None:
    """The event store reads the payments back as captured (hand-written rows included)."""
    from fintech.money import Money
    from payments.domain import CAPTURED
    from payments.services import payment_load

    for payment_id in payment_ids:
        payment = payment_load(payment_id=payment_id)
        if (payment.status, payment.version, payment.captured_amount) != (CAPTURED, 3, Money(5000, "JPY")):
            raise AssertionError(f"payment {payment_id} loads as {payment.status} v{payment.version}")
