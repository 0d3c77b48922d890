import datetime as dt

from django.core.management.base import BaseCommand
from django.db.models import Count, Max, Min, Sum
from django.utils import timezone

from archive import events, lifecycle, retention
from archive.models import ArchiveObject, RetentionPolicy
from fintech import partitions
from fintech.db import raw_cursor

# ruff: noqa: S608 - the table and column names below are this module's own constants, never input

# The database tables that hold each kind, and the column that dates a row.
TABLES = {
    "audit_logs": [("fintech_staffaudit", "occurred_at"), ("vault_detokenizationaudit", "occurred_at")],
    "analytics": [("projections_merchant_daily", "day")],
    "idempotency_records": [("fintech_idempotency", "created_at")],
    "console_operations": [("console_operation", "requested_at")],
    "staff_login_records": [
        ("axes_accessattempt", "attempt_time"),
        ("axes_accesslog", "attempt_time"),
        ("axes_accessfailurelog", "attempt_time"),
    ],
    "expired_sessions": [("django_session", "expire_date")],
    "balance_snapshots": [("projections_balance", "updated_at")],
}


def _when(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, dt.datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    return f"{value:%Y-%m-%d}"


class Command(BaseCommand):
    help = (
        "Per data kind: its policy, what sits in each tier (payment events: the hot partitions and their rows, the "
        "warm and cold archive objects and theirs), the oldest record, and what is due to move or be purged now."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--exact",
            action="store_true",
            help="count the rows of each hot partition (default: PostgreSQL's estimate, ~, free on a big table)",
        )

    def handle(self, *args, exact, **options):
        now = timezone.now()
        for policy in RetentionPolicy.objects.order_by("kind"):
            self.stdout.write(f"{policy.kind} (kept {policy.keep or 'forever'})")
            self._policy(policy)
            if policy.kind == RetentionPolicy.PAYMENT_EVENTS:
                self._events(policy, now, exact=exact)
            elif policy.kind in TABLES:
                self._tables(policy, now)
            else:
                self.stdout.write("  held nowhere in this system yet")
            self.stdout.write("")

    def _policy(self, policy: RetentionPolicy) -> None:
        tiers = [f"hot {policy.hot} ({policy.hot_where})"]
        if policy.warm_where:
            tiers.append(f"warm until {policy.warm_until or 'forever'} ({policy.warm_where})")
        if policy.cold_where:
            tiers.append(f"cold until {policy.cold_until or 'forever'} ({policy.cold_where})")
        self.stdout.write(f"  policy: {'; '.join(tiers)}")
        self.stdout.write(f"  applied by: {policy.applied_by or 'no job yet (informational)'}")

    def _events(self, policy: RetentionPolicy, now: dt.datetime, *, exact: bool) -> None:
        hot = []
        with raw_cursor() as cursor:
            for name in partitions.existing_partitions():
                if exact:
                    cursor.execute(f"SELECT count(*) FROM {name}")
                    rows = f"{cursor.fetchone()[0]} rows"
                else:
                    cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)", [name])
                    estimate = cursor.fetchone()[0]
                    rows = f"~{max(estimate, 0)} rows" if estimate >= 0 else "rows not counted yet (--exact)"
                hot.append(f"{name} {rows}")
            cursor.execute(f"SELECT min(occurred_at) FROM {partitions.PARENT}")
            oldest_hot = cursor.fetchone()[0]
        self.stdout.write(f"  hot: {len(hot)} partition(s): {', '.join(hot) or 'none'}")
        archived = ArchiveObject.objects.filter(kind=ArchiveObject.EVENTS, state=ArchiveObject.ARCHIVED)
        for tier in (ArchiveObject.WARM, ArchiveObject.COLD):
            agg = archived.filter(tier=tier).aggregate(
                n=Count("id"), rows=Sum("row_count"), first=Min("period_start"), last=Max("period_start")
            )
            if agg["n"]:
                self.stdout.write(
                    f"  {tier}: {agg['n']} object(s), {agg['rows']} rows, {agg['first']:%Y-%m} .. {agg['last']:%Y-%m}"
                )
            else:
                self.stdout.write(f"  {tier}: none")
        purged = ArchiveObject.objects.filter(kind=ArchiveObject.EVENTS, state=ArchiveObject.PURGED).count()
        if purged:
            self.stdout.write(f"  purged: {purged} object(s) (their purge records are kept)")
        first_archived = archived.aggregate(first=Min("period_start"))["first"]
        oldest = min((d for d in (oldest_hot.date() if oldest_hot else None, first_archived) if d), default=None)
        self.stdout.write(f"  oldest record: {_when(oldest)}")
        due = []
        boundary = retention.events_hot_boundary(now.date(), now)
        to_archive = events.months_before(boundary)
        if to_archive:
            due.append("archive " + ", ".join(f"{m:%Y-%m}" for m in to_archive) + " (hot -> warm)")
        to_move = lifecycle.due_to_move(now)
        if to_move:
            due.append("move " + ", ".join(f"{o.period_start:%Y-%m}" for o in to_move) + " (warm -> cold)")
        to_purge = lifecycle.due_to_purge(now)
        if to_purge:
            due.append("purge " + ", ".join(f"{o.period_start:%Y-%m}" for o in to_purge) + " (past retention)")
        self.stdout.write(f"  due now: {'; '.join(due) or 'nothing'}")

    def _tables(self, policy: RetentionPolicy, now: dt.datetime) -> None:
        past_hot = retention.cutoff(policy.hot, now)
        past_keep = retention.cutoff(policy.keep, now)
        oldest = []
        due = []
        with raw_cursor() as cursor:
            for table, column in TABLES[policy.kind]:
                cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [table])
                if not cursor.fetchone()[0]:
                    continue
                cursor.execute(
                    f"SELECT count(*), min({column}), count(*) FILTER (WHERE {column} < %s), "
                    f"count(*) FILTER (WHERE {column} < %s) FROM {table}",
                    [past_hot, past_keep],
                )
                rows, first, beyond_hot, beyond_keep = cursor.fetchone()
                self.stdout.write(f"  database: {table}: {rows} rows")
                if first is not None:
                    oldest.append(first.date() if isinstance(first, dt.datetime) else first)
                if past_keep is not None and beyond_keep:
                    due.append(f"{beyond_keep} rows of {table} past retention ({policy.keep})")
                elif beyond_hot and policy.keep != policy.hot:
                    due.append(f"{beyond_hot} rows of {table} older than the hot window ({policy.hot})")
        self.stdout.write(f"  oldest record: {_when(min(oldest, default=None))}")
        self.stdout.write(f"  due now: {'; '.join(due) or 'nothing'}")
