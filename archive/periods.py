"""Rows that leave their table by period (merchant daily summaries, audit logs, balance snapshots): sealed into
the archive, read back and compared, then removed in one transaction, as the events' months are, except that
rows are deleted where an event month's partition is dropped."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import pyarrow as pa
from django.db import transaction
from django.utils import timezone

from archive.events import ArchiveCorrupt, ArchiveRefused, MonthResult, _exclusive, _write, object_table
from archive.models import ArchiveObject
from archive.tables import query_table
from fintech.db import raw_cursor

logger = logging.getLogger(__name__)

# ruff: noqa: S608 - table, column and trigger names are the DatedRows constants of the archive's modules


@dataclass(frozen=True)
class DatedRows:
    """A table whose rows leave the database by period: its archive kind, the column that dates a row, the
    columns archived (the schema) and their order in the object. `guard` names the trigger refusing DELETE that
    the archiver, as the table's owner, lifts inside its own transaction (an append-only audit table)."""

    kind: str
    table: str
    column: str
    schema: pa.Schema
    order: str
    guard: str = ""


def period_archive(rows: DatedRows, *, first: dt.date, end: dt.date, actor: str, label: str) -> MonthResult:
    """Seal the rows dated in [first, end) into the archive, read the object back and compare it, then remove
    them from their table in one transaction (a count that differs from what was sealed rolls it back: the next
    run archives the period again, whole). A period with no rows is left alone. `label` names it in messages."""
    with _exclusive(rows.kind):
        live = ArchiveObject.objects.filter(kind=rows.kind, period_start=first, state=ArchiveObject.WRITTEN).first()
        table = query_table(
            f"SELECT {', '.join(rows.schema.names)} FROM {rows.table} WHERE {rows.column} >= '{first.isoformat()}' "
            f"AND {rows.column} < '{end.isoformat()}' ORDER BY {rows.order}",
            rows.schema,
        )
        if not table.num_rows:
            return MonthResult(first, "nothing to archive", 0)
        obj = _write(first, table, actor, live, kind=rows.kind, period_end=end)
        if not object_table(obj).equals(table):
            raise ArchiveCorrupt(f"{obj.key}: read back, it differs from {label}")
        with transaction.atomic(), raw_cursor() as cursor:
            if rows.guard:
                cursor.execute("SET LOCAL lock_timeout = '5s'")
                cursor.execute(f"ALTER TABLE {rows.table} DISABLE TRIGGER {rows.guard}")
            cursor.execute(f"DELETE FROM {rows.table} WHERE {rows.column} >= %s AND {rows.column} < %s", [first, end])
            if cursor.rowcount != table.num_rows:
                raise ArchiveRefused(f"{label} changed while being archived: run again")
            if rows.guard:
                cursor.execute(f"ALTER TABLE {rows.table} ENABLE TRIGGER {rows.guard}")
            ArchiveObject.objects.filter(id=obj.id).update(state=ArchiveObject.ARCHIVED, archived_at=timezone.now())
    logger.info("archived %s rows of %s into %s", table.num_rows, label, obj.key)
    return MonthResult(first, "archived", table.num_rows)


def period_starts(rows: DatedRows, *, before: dt.date, unit: str = "month") -> list[dt.date]:
    """The first days of the periods (`month` or `year`, UTC) that hold rows dated before `before`."""
    dated = rows.column
    if pa.types.is_timestamp(rows.schema.field(rows.column).type):
        dated = f"{rows.column} AT TIME ZONE 'UTC'"
    with raw_cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT date_trunc(%s, {dated})::date FROM {rows.table} WHERE {rows.column} < %s",
            [unit, before],
        )
        return sorted(row[0] for row in cursor.fetchall())
