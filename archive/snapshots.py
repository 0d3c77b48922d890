"""Balance snapshots beyond the database's year: every whole year of daily snapshots that ended more than a year
ago is sealed into the archive (verified as the events are) and removed from the table in one transaction. They
are kept for ever: no policy purges them."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
from django.db import transaction
from django.utils import timezone

from archive import retention
from archive.events import SCHEMAS, ArchiveCorrupt, ArchiveRefused, MonthResult, _exclusive, _write, object_table
from archive.models import ArchiveObject
from archive.tables import query_table
from fintech.db import raw_cursor

# ruff: noqa: S608 - the table name is the ledger's own constant

TABLE = "ledger_balance_snapshot"
SCHEMA = pa.schema(
    [
        ("account_id", pa.string()),
        ("day", pa.date32()),
        ("currency", pa.string()),
        ("available", pa.int64()),
        ("pending", pa.int64()),
        ("taken_at", pa.timestamp("us", tz="UTC")),
    ]
)
SCHEMAS[ArchiveObject.BALANCE_SNAPSHOTS] = SCHEMA


def _export(first: dt.date) -> pa.Table:
    return query_table(
        f"SELECT {', '.join(SCHEMA.names)} FROM {TABLE} WHERE day >= '{first.isoformat()}' "
        f"AND day < '{first.replace(year=first.year + 1).isoformat()}' ORDER BY day, account_id",
        SCHEMA,
    )


POLICY = "balance_snapshots"  # the retention policy's kind


def last_archivable_year(now: dt.datetime) -> int | None:
    """The database keeps the policy's window of snapshots (P1Y): a year is archived once it ended before it."""
    return retention.last_archivable_year(POLICY, now)


def snapshots_year_archive(*, year: int, actor: str) -> MonthResult:
    first = dt.date(year, 1, 1)
    last = last_archivable_year(dt.datetime.now(dt.UTC))
    if last is None or year > last:
        raise ArchiveRefused(f"the snapshots of {year} are within the database's year")
    with _exclusive(ArchiveObject.BALANCE_SNAPSHOTS):
        live = ArchiveObject.objects.filter(
            kind=ArchiveObject.BALANCE_SNAPSHOTS, period_start=first, state=ArchiveObject.WRITTEN
        ).first()
        table = _export(first)
        if not table.num_rows:
            return MonthResult(first, "nothing to archive", 0)
        obj = _write(
            first, table, actor, live, kind=ArchiveObject.BALANCE_SNAPSHOTS, period_end=dt.date(year + 1, 1, 1)
        )
        if not object_table(obj).equals(table):
            raise ArchiveCorrupt(f"{obj.key}: read back, it differs from the snapshots of {year}")
        with transaction.atomic(), raw_cursor() as cursor:
            cursor.execute(f"DELETE FROM {TABLE} WHERE day >= %s AND day < %s", [first, dt.date(year + 1, 1, 1)])
            if cursor.rowcount != table.num_rows:
                raise ArchiveRefused(f"the snapshots of {year} changed while they were archived: run again")
            ArchiveObject.objects.filter(id=obj.id).update(state=ArchiveObject.ARCHIVED, archived_at=timezone.now())
    return MonthResult(first, "archived", table.num_rows)


def snapshot_years_before(year: int) -> list[int]:
    with raw_cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT extract(year FROM day)::int FROM {TABLE} WHERE day < %s", [dt.date(year + 1, 1, 1)]
        )
        return sorted(row[0] for row in cursor.fetchall())
