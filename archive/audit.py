"""Audit logs from hot to warm: the staff audit trail and the vault's detokenisation audit keep the audit_logs
policy's hot window (P30D) in the database; every whole month that ended before that is sealed into the archive
(verified as the events are) and then removed from its table in one transaction. The tables refuse DELETE to
everyone (a trigger): the archiver, as their owner, lifts that refusal inside its own transaction only, for
exactly the rows it archived; a count that differs rolls everything back. purge_archives deletes them after the
policy's seven years."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from archive import retention
from archive.events import SCHEMAS, ArchiveRefused, MonthResult
from archive.models import ArchiveObject
from archive.periods import DatedRows, period_archive, period_starts
from fintech import partitions

_TEXT = pa.string()
_AT = pa.timestamp("us", tz="UTC")
LOGS = {
    log.kind: log
    for log in (
        DatedRows(
            kind=ArchiveObject.STAFF_AUDIT,
            table="fintech_staffaudit",
            column="occurred_at",
            order="id",
            guard="fintech_staffaudit_no_update_delete",
            schema=pa.schema(
                [
                    ("id", pa.int64()),
                    ("occurred_at", _AT),
                    ("user_id", pa.int32()),
                    ("username", _TEXT),
                    ("action", _TEXT),
                    ("object", _TEXT),
                    ("detail", _TEXT),
                    ("ip", _TEXT),
                    ("user_agent", _TEXT),
                ]
            ),
        ),
        DatedRows(
            kind=ArchiveObject.DETOKENIZATION_AUDIT,
            table="vault_detokenizationaudit",
            column="occurred_at",
            order="id",
            guard="vault_audit_no_update_delete",
            schema=pa.schema(
                [
                    ("id", pa.int64()),
                    ("occurred_at", _AT),
                    ("actor", _TEXT),
                    ("user_id", pa.int32()),
                    ("token", _TEXT),
                    ("purpose", _TEXT),
                    ("outcome", _TEXT),
                    ("channel", _TEXT),
                ]
            ),
        ),
    )
}
SCHEMAS.update({kind: log.schema for kind, log in LOGS.items()})


POLICY = "audit_logs"  # the retention policy's kind


def hot_boundary(now: dt.datetime) -> dt.date:
    """The first month still hot: every month before it ended longer ago than the policy's hot window (P30D)."""
    return retention.days_hot_boundary(POLICY, now)


def audit_month_archive(*, kind: str, first: dt.date, actor: str) -> MonthResult:
    """Archive one whole month of an audit log (a month with no rows is left alone)."""
    log = LOGS[kind]
    if first >= hot_boundary(dt.datetime.now(dt.UTC)):
        raise ArchiveRefused(f"{log.table} {first:%Y-%m} is still within the audit logs' hot window")
    end = partitions.next_month(first)
    return period_archive(log, first=first, end=end, actor=actor, label=f"{log.table} {first:%Y-%m}")


def audit_months_before(kind: str, before: dt.date) -> list[dt.date]:
    return period_starts(LOGS[kind], before=before)
