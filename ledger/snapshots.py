"""Daily balance snapshots: every account's available and pending balances as they stood at the end of a day,
computed exactly whenever the job runs (today's balances less everything posted since the day ended). A day is
taken once (ledger_snapshot_day, in the same transaction): taking it again changes nothing."""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from fintech.db import raw_cursor

# A transaction still open when the day ended commits its postings with their own created_at: the day is taken
# once such a transaction cannot still be running (a statement never runs that long here).
SETTLE_SECONDS = 600

_TAKE = """
INSERT INTO ledger_balance_snapshot (account_id, day, currency, available, pending, taken_at)
SELECT a.id, %(day)s, a.currency,
       a.available - coalesce(later.available, 0), a.pending - coalesce(later.pending, 0), now()
FROM accounts_account a
LEFT JOIN (
    SELECT account_id,
           sum(amount) FILTER (WHERE bucket = 'available') AS available,
           sum(amount) FILTER (WHERE bucket = 'pending') AS pending
    FROM accounts_posting WHERE created_at >= %(end)s GROUP BY account_id
) later ON later.account_id = a.id
WHERE a.created_at < %(end)s
ON CONFLICT (account_id, day) DO NOTHING
"""


def day_end(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)


def balance_snapshots_take(*, day: dt.date, now: dt.datetime | None = None) -> int:
    """Snapshot every account at the end of `day`; returns the snapshots written (0 when the day was taken).
    Refuses a day that has not ended, or ended less than SETTLE_SECONDS ago."""
    now = now or dt.datetime.now(dt.UTC)
    if now < day_end(day) + dt.timedelta(seconds=SETTLE_SECONDS):
        raise ValueError(f"{day} has not ended long enough ago to be snapshotted")
    with transaction.atomic(), raw_cursor() as cursor:
        cursor.execute(
            "INSERT INTO ledger_snapshot_day (day, accounts, taken_at) VALUES (%s, 0, now()) "
            "ON CONFLICT (day) DO NOTHING RETURNING day",
            [day],
        )
        if cursor.fetchone() is None:
            return 0
        cursor.execute(_TAKE, {"day": day, "end": day_end(day)})
        written = cursor.rowcount
        cursor.execute("UPDATE ledger_snapshot_day SET accounts = %s WHERE day = %s", [written, day])
        return written


def balance_snapshots_catch_up(*, days: int = 7, now: dt.datetime | None = None) -> list[dt.date]:
    """Take each of the last `days` ended days that has no snapshot yet (a day is taken in one statement, so it
    has all its accounts or none); returns the days taken. Celery beat runs it hourly."""
    now = now or dt.datetime.now(dt.UTC)
    taken = []
    for back in range(days, 0, -1):
        day = now.date() - dt.timedelta(days=back)
        if now < day_end(day) + dt.timedelta(seconds=SETTLE_SECONDS):
            continue
        with raw_cursor() as cursor:
            cursor.execute("SELECT EXISTS (SELECT 1 FROM ledger_snapshot_day WHERE day = %s)", [day])
            if cursor.fetchone()[0]:
                continue
        balance_snapshots_take(day=day, now=now)
        taken.append(day)
    return taken
