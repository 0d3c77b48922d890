"""Balance snapshots beyond the database's year: every whole year of daily snapshots that ended more than a year
ago is sealed into the archive (verified as the events are) and removed from the table in one transaction. They
are kept for ever: no policy purges them."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from archive import retention
from archive.events import SCHEMAS, ArchiveRefused, MonthResult
from archive.models import ArchiveObject
from archive.periods import DatedRows, period_archive, period_starts

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


SNAPSHOTS = DatedRows(
    kind=ArchiveObject.BALANCE_SNAPSHOTS, table=TABLE, column="day", schema=SCHEMA, order="day, account_id"
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
    end = dt.date(year + 1, 1, 1)
    return period_archive(SNAPSHOTS, first=first, end=end, actor=actor, label=f"the snapshots of {year}")


def snapshot_years_before(year: int) -> list[int]:
    """The years up to `year` that hold snapshots."""
    return [first.year for first in period_starts(SNAPSHOTS, before=dt.date(year + 1, 1, 1), unit="year")]
