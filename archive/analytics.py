"""Analytics from the database to Parquet: a whole month of merchant daily summaries, once older than the
analytics window, is sealed into the archive (verified as the events are) and removed from the read table in one
transaction; query_archive reads it back with DuckDB, beside the archived events, without restoring anything.

The summaries are a read model: a replay of the payments projection builds the archived days again from the
events (kept ten years); the next run of archive_analytics finds them and archives them again as a new object."""

from __future__ import annotations

import datetime as dt
import logging

import duckdb
import pyarrow as pa
from django.db import transaction
from django.utils import timezone

import archive.audit  # noqa: F401 - the audit logs' schemas
import archive.snapshots  # noqa: F401 - the balance snapshots' schema
from archive.events import (
    ANALYTICS_SCHEMA,
    SCHEMA,
    SCHEMAS,
    ArchiveCorrupt,
    ArchiveRefused,
    MonthResult,
    _exclusive,
    _write,
    object_table,
)
from archive.models import ArchiveObject
from archive.tables import query_table
from fintech import partitions
from fintech.db import raw_cursor
from projections.payments import DAILY_TABLE

logger = logging.getLogger(__name__)

# ruff: noqa: S608 - the table name is the read model's own constant

_COLUMNS = ", ".join(ANALYTICS_SCHEMA.names)


def _export(first: dt.date) -> pa.Table:
    return query_table(
        f"SELECT {_COLUMNS} FROM {DAILY_TABLE} WHERE day >= '{first.isoformat()}' "
        f"AND day < '{partitions.next_month(first).isoformat()}' ORDER BY merchant_id, day, currency",
        ANALYTICS_SCHEMA,
    )


def analytics_month_archive(*, first: dt.date, actor: str) -> MonthResult:
    """Archive one month of merchant daily summaries (a month with none is left alone)."""
    with _exclusive("analytics"):
        live = ArchiveObject.objects.filter(
            kind=ArchiveObject.ANALYTICS, period_start=first, state=ArchiveObject.WRITTEN
        ).first()
        table = _export(first)
        if not table.num_rows:
            return MonthResult(first, "nothing to archive", 0)
        obj = _write(first, table, actor, live, kind=ArchiveObject.ANALYTICS)
        if not object_table(obj).equals(table):
            raise ArchiveCorrupt(f"{obj.key}: read back, it differs from the summaries of {first:%Y-%m}")
        with transaction.atomic(), raw_cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {DAILY_TABLE} WHERE day >= %s AND day < %s", [first, partitions.next_month(first)]
            )
            if cursor.rowcount != table.num_rows:
                # Summaries written since the export: the next run archives the month again, whole.
                raise ArchiveRefused(f"summaries of {first:%Y-%m} changed while they were archived: run again")
            ArchiveObject.objects.filter(id=obj.id).update(state=ArchiveObject.ARCHIVED, archived_at=timezone.now())
    logger.info("archived %s merchant daily summaries of %s", table.num_rows, f"{first:%Y-%m}")
    return MonthResult(first, "archived", table.num_rows)


def analytics_months_before(before: dt.date) -> list[dt.date]:
    with raw_cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT date_trunc('month', day)::date FROM {DAILY_TABLE} WHERE day < %s", [before])
        return sorted(row[0] for row in cursor.fetchall())


# The archive's kinds as DuckDB sees them.
VIEWS = {
    "events": (ArchiveObject.EVENTS, SCHEMA),
    "merchant_daily": (ArchiveObject.ANALYTICS, ANALYTICS_SCHEMA),
    "staff_audit": (ArchiveObject.STAFF_AUDIT, SCHEMAS[ArchiveObject.STAFF_AUDIT]),
    "detokenization_audit": (ArchiveObject.DETOKENIZATION_AUDIT, SCHEMAS[ArchiveObject.DETOKENIZATION_AUDIT]),
    "balance_snapshots": (ArchiveObject.BALANCE_SNAPSHOTS, SCHEMAS[ArchiveObject.BALANCE_SNAPSHOTS]),
}


def archive_query(sql: str) -> tuple[list[str], list[tuple]]:
    """Run a query over every archived object (each verified against its manifest, decrypted in memory, never
    written out) with DuckDB: the views `events`, `merchant_daily`, `staff_audit`, `detokenization_audit` and
    `balance_snapshots`.
    DuckDB reaches no file or network (enable_external_access off), so a query reads the archive and nothing
    else."""
    connection = duckdb.connect(":memory:")
    try:
        for view, (kind, schema) in VIEWS.items():
            objects = ArchiveObject.objects.filter(kind=kind, state=ArchiveObject.ARCHIVED).order_by("period_start")
            tables = [object_table(obj) for obj in objects]
            connection.register(view, pa.concat_tables(tables) if tables else schema.empty_table())
        connection.execute("SET enable_external_access = false")
        connection.execute("SET lock_configuration = true")
        result = connection.execute(sql)
        columns = [column[0] for column in result.description or []]
        return columns, result.fetchall()
    finally:
        connection.close()
