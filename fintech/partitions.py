"""Monthly partitions of the event table, created ahead of time.

The default partition catches any event whose month has no partition yet, so an append never fails for want
of one. Creating a month whose events already sit in the default partition moves them there first, in one
transaction, so nothing is lost (PostgreSQL refuses the partition otherwise).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from django.db import connection, transaction

logger = logging.getLogger(__name__)

PARENT = "fintech_event"
DEFAULT = "fintech_event_default"


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def next_month(first: dt.date) -> dt.date:
    return (first + dt.timedelta(days=32)).replace(day=1)


def partition_name(first: dt.date) -> str:
    return f"{PARENT}_y{first.year:04d}m{first.month:02d}"


def existing_partitions() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname FROM pg_inherits i
            JOIN pg_class c ON c.oid = i.inhrelid
            JOIN pg_class p ON p.oid = i.inhparent
            WHERE p.relname = %s ORDER BY c.relname
            """,
            [PARENT],
        )
        return [row[0] for row in cursor.fetchall()]


def partition_create(*, first: dt.date, fill: Callable[[Any, str], None] | None = None) -> bool:
    """Create the partition of the month starting on `first`; False when it already exists. `fill(cursor,
    table)` writes rows into the new table before it is attached, in the same transaction (a restore)."""
    name = partition_name(first)
    lower, upper = f"{first.isoformat()} 00:00:00+00", f"{next_month(first).isoformat()} 00:00:00+00"
    with transaction.atomic(), connection.cursor() as cursor:
        # Serialises concurrent creators (migrate in two processes) and appends into the default partition.
        cursor.execute(f"LOCK TABLE {DEFAULT} IN SHARE ROW EXCLUSIVE MODE")
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        if cursor.fetchone()[0]:
            return False
        cursor.execute(f"SELECT count(*) FROM {DEFAULT} WHERE occurred_at >= %s AND occurred_at < %s", [lower, upper])
        stranded = cursor.fetchone()[0]
        cursor.execute(f"CREATE TABLE {name} (LIKE {PARENT} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        # The month's bounds as a CHECK while rows go in: each row is checked as it arrives, and ATTACH, which
        # would otherwise scan the whole table to prove them, trusts it.
        cursor.execute(
            f"ALTER TABLE {name} ADD CONSTRAINT {name}_bounds "
            f"CHECK (occurred_at >= '{lower}' AND occurred_at < '{upper}')"
        )
        if fill is not None:
            fill(cursor, name)
        if stranded:
            # A maintenance move inside one transaction: the rows leave the default partition only as they
            # arrive in their month's. Disabling the guard needs table ownership, not just write access.
            cursor.execute(f"ALTER TABLE {DEFAULT} DISABLE TRIGGER USER")
            cursor.execute(
                f"INSERT INTO {name} SELECT * FROM {DEFAULT} WHERE occurred_at >= %s AND occurred_at < %s",
                [lower, upper],
            )
            cursor.execute(f"DELETE FROM {DEFAULT} WHERE occurred_at >= %s AND occurred_at < %s", [lower, upper])
            cursor.execute(f"ALTER TABLE {DEFAULT} ENABLE TRIGGER USER")
            logger.warning("moved %s events from %s into %s", stranded, DEFAULT, name)
        # DDL takes no bind parameters; the bounds are ISO dates formatted above, never input.
        cursor.execute(f"ALTER TABLE {PARENT} ATTACH PARTITION {name} FOR VALUES FROM ('{lower}') TO ('{upper}')")
        cursor.execute(f"ALTER TABLE {name} DROP CONSTRAINT {name}_bounds")
        cursor.execute(
            f"CREATE TRIGGER fintech_event_no_truncate BEFORE TRUNCATE ON {name} "
            "FOR EACH STATEMENT EXECUTE FUNCTION fintech_event_append_only()"
        )
    return True


def ensure_partitions(*, months_ahead: int, today: dt.date | None = None) -> list[str]:
    """Make sure the current month and the next `months_ahead` months have partitions; returns the new ones."""
    first = month_start(today or dt.datetime.now(dt.UTC).date())
    created = []
    for _ in range(months_ahead + 1):
        if partition_create(first=first):
            created.append(partition_name(first))
        first = next_month(first)
    return created


def ensure_partitions_after_migrate(sender, using="default", **kwargs) -> None:
    """post_migrate: every migrate leaves the current and the next month partitioned."""
    if using != "default" or PARENT not in connection.introspection.table_names():
        return
    for name in ensure_partitions(months_ahead=1):
        logger.info("created partition %s", name)
