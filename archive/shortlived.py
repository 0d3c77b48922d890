"""Short-lived operational rows deleted past their policy's total (`keep`): console operations, staff login
records (django-axes) and expired sessions. Nothing of them is archived; nothing of them is money or audit."""

from __future__ import annotations

import datetime as dt
import logging

from archive import retention
from fintech.db import raw_cursor

logger = logging.getLogger(__name__)

# ruff: noqa: S608 - table and column names below are this module's constants

BATCH = 10_000
# Per policy kind: (table, time column, what must also hold). An open console operation is never deleted.
TABLES = {
    "console_operations": [("console_operation", "requested_at", "state NOT IN ('queued', 'running')")],
    "staff_login_records": [
        ("axes_accessattempt", "attempt_time", "TRUE"),
        ("axes_accesslog", "attempt_time", "TRUE"),
        ("axes_accessfailurelog", "attempt_time", "TRUE"),
    ],
    "expired_sessions": [("django_session", "expire_date", "TRUE")],
}


def short_lived_purge(now: dt.datetime) -> dict[str, int]:
    """Delete, a batch per statement, every row older than its kind's `keep`; the rows deleted per table."""
    deleted: dict[str, int] = {}
    for kind, tables in TABLES.items():
        before = retention.cutoff(retention.policy_get(kind).keep, now)
        if before is None:
            continue
        for table, column, condition in tables:
            total = 0
            while True:
                with raw_cursor() as cursor:
                    cursor.execute(
                        f"DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table} "
                        f"WHERE {column} < %s AND {condition} LIMIT {BATCH}))",
                        [before],
                    )
                    total += cursor.rowcount
                    if cursor.rowcount < BATCH:
                        break
            deleted[table] = total
            if total:
                logger.info("deleted %s rows of %s older than %s (%s)", total, table, before, kind)
    return deleted
