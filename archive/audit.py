"""Audit logs from hot to warm: the staff audit trail and the vault's detokenisation audit keep the audit_logs
policy's hot window (P30D) in the database; every whole month that ended before that is sealed into the archive
(verified as the events are) and then removed from its table in one transaction. The tables refuse DELETE to
everyone (a trigger): the archiver, as their owner, lifts that refusal inside its own transaction only, for
exactly the rows it archived; a count that differs rolls everything back. purge_archives deletes them after the
policy's seven years."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import pyarrow as pa
from django.db import transaction
from django.utils import timezone

from archive import retention
from archive.events import SCHEMAS, ArchiveCorrupt, ArchiveRefused, MonthResult, _exclusive, _write, object_table
from archive.models import ArchiveObject
from archive.tables import query_table
from fintech import partitions
from fintech.db import raw_cursor

logger = logging.getLogger(__name__)

# ruff: noqa: S608 - table, column and trigger names below are constants of this module, never input


@dataclass(frozen=True)
class AuditLog:
    kind: str
    table: str
    guard: str  # the trigger refusing UPDATE and DELETE
    schema: pa.Schema


_TEXT = pa.string()
_AT = pa.timestamp("us", tz="UTC")
LOGS = {
    log.kind: log
    for log in (
        AuditLog(
            ArchiveObject.STAFF_AUDIT,
            "fintech_staffaudit",
            "fintech_staffaudit_no_update_delete",
            pa.schema(
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
        AuditLog(
            ArchiveObject.DETOKENIZATION_AUDIT,
            "vault_detokenizationaudit",
            "vault_audit_no_update_delete",
            pa.schema(
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


def _range(first: dt.date) -> tuple[str, str]:
    return first.isoformat(), partitions.next_month(first).isoformat()


def _export(log: AuditLog, first: dt.date) -> pa.Table:
    lower, upper = _range(first)
    return query_table(
        f"SELECT {', '.join(log.schema.names)} FROM {log.table} WHERE occurred_at >= '{lower}' "
        f"AND occurred_at < '{upper}' ORDER BY id",
        log.schema,
    )


POLICY = "audit_logs"  # the retention policy's kind


def hot_boundary(now: dt.datetime) -> dt.date:
    """The first month still hot: every month before it ended longer ago than the policy's hot window (P30D)."""
    return retention.days_hot_boundary(POLICY, now)


def audit_month_archive(*, kind: str, first: dt.date, actor: str) -> MonthResult:
    """Archive one whole month of an audit log (a month with no rows is left alone)."""
    log = LOGS[kind]
    if first >= hot_boundary(dt.datetime.now(dt.UTC)):
        raise ArchiveRefused(f"{log.table} {first:%Y-%m} is still within the audit logs' hot window")
    with _exclusive(kind):
        live = ArchiveObject.objects.filter(kind=kind, period_start=first, state=ArchiveObject.WRITTEN).first()
        table = _export(log, first)
        if not table.num_rows:
            return MonthResult(first, "nothing to archive", 0)
        obj = _write(first, table, actor, live, kind=kind)
        if not object_table(obj).equals(table):
            raise ArchiveCorrupt(f"{obj.key}: read back, it differs from {log.table} {first:%Y-%m}")
        lower, upper = _range(first)
        with transaction.atomic(), raw_cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '5s'")
            cursor.execute(f"ALTER TABLE {log.table} DISABLE TRIGGER {log.guard}")
            cursor.execute(f"DELETE FROM {log.table} WHERE occurred_at >= %s AND occurred_at < %s", [lower, upper])
            if cursor.rowcount != table.num_rows:
                raise ArchiveRefused(f"{log.table} {first:%Y-%m} changed while it was archived: run again")
            cursor.execute(f"ALTER TABLE {log.table} ENABLE TRIGGER {log.guard}")
            ArchiveObject.objects.filter(id=obj.id).update(state=ArchiveObject.ARCHIVED, archived_at=timezone.now())
    logger.info("archived %s rows of %s %s", table.num_rows, log.table, f"{first:%Y-%m}")
    return MonthResult(first, "archived", table.num_rows)


def audit_months_before(kind: str, before: dt.date) -> list[dt.date]:
    log = LOGS[kind]
    with raw_cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date FROM {log.table} "
            "WHERE occurred_at < %s",
            [before],
        )
        return sorted(row[0] for row in cursor.fetchall())
