"""Analytics from the database to Parquet: a whole month of merchant daily summaries, once older than the
analytics window, is sealed into the archive (verified as the events are) and removed from the read table in one
transaction; query_archive reads it back with DuckDB, beside the archived events, without restoring anything.

The summaries are a read model: a replay of the payments projection builds the archived days again from the
events (kept ten years); the next run of archive_analytics finds them and archives them again as a new object."""

from __future__ import annotations

import datetime as dt

import duckdb
import pyarrow as pa

import archive.audit  # noqa: F401 - the audit logs' schemas
import archive.snapshots  # noqa: F401 - the balance snapshots' schema
from archive.events import ANALYTICS_SCHEMA, SCHEMA, SCHEMAS, MonthResult, object_table
from archive.models import ArchiveObject
from archive.periods import DatedRows, period_archive, period_starts
from fintech import partitions
from projections.payments import DAILY_TABLE

SUMMARIES = DatedRows(
    kind=ArchiveObject.ANALYTICS,
    table=DAILY_TABLE,
    column="day",
    schema=ANALYTICS_SCHEMA,
    order="merchant_id, day, currency",
)


def analytics_month_archive(*, first: dt.date, actor: str) -> MonthResult:
    """Archive one month of merchant daily summaries (a month with none is left alone)."""
    end = partitions.next_month(first)
    return period_archive(SUMMARIES, first=first, end=end, actor=actor, label=f"summaries of {first:%Y-%m}")


def analytics_months_before(before: dt.date) -> list[dt.date]:
    return period_starts(SUMMARIES, before=before)


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
