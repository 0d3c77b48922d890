"""Retention as data: the policy table holds the seed's lifecycle table, changes only through retention_set (who,
what, why recorded in an append-only history, in the same transaction), refuses nonsense, and archive_events takes
its hot window from it. Auditors read it in the admin; support does not."""

from __future__ import annotations

import datetime as dt
import getpass
import io
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.db import DatabaseError, transaction
from django.test import Client
from django.utils import timezone

from archive import retention
from archive.management.commands.archive_events import hot_boundary
from archive.models import PurgeRecord, RetentionChange, RetentionPolicy
from fintech import partitions
from fintech.db import raw_cursor
from tests.staff import staff_login
from vault import services as vault

pytestmark = pytest.mark.django_db

# The seed's "Data lifecycle" table: (hot, warm until, cold until, kept); None is forever.
SEED = {
    "payment_events": ("P3M", "P1Y", "P10Y", "P10Y"),
    "balance_snapshots": ("P0D", "P1Y", None, None),
    "audit_logs": ("P30D", "P1Y", "P7Y", "P7Y"),
    "kyc_documents": ("P0D", "P5Y", None, None),
    "analytics": ("P6M", "P5Y", "P5Y", "P5Y"),
    "idempotency_records": ("PT24H", "PT24H", "PT24H", "PT24H"),
}


def _set(*args: str) -> str:
    out = io.StringIO()
    call_command("retention_set", *args, stdout=out)
    return out.getvalue()


def _policy(kind: str) -> tuple[str | None, ...]:
    policy = RetentionPolicy.objects.get(kind=kind)
    return tuple(getattr(policy, bound) for bound in retention.BOUNDS)


def test_the_seeded_policy_is_the_seeds_table(settings):
    rows = {p.kind: tuple(getattr(p, b) for b in retention.BOUNDS) for p in RetentionPolicy.objects.all()}
    assert {kind: rows[kind] for kind in SEED} == SEED
    # and the short-lived operational rows have a policy of their own
    assert {"console_operations", "staff_login_records", "expired_sessions"} <= set(rows)
    # the idempotency records' 24 hours are the setting's
    assert retention.duration_parse(rows["idempotency_records"][3]).minutes == settings.IDEMPOTENCY_KEY_TTL_HOURS * 60
    assert "No KYC documents exist" in RetentionPolicy.objects.get(kind="kyc_documents").description
    # where each tier is, as the seed says
    events = RetentionPolicy.objects.get(kind="payment_events")
    assert "database" in events.hot_where
    assert "warm/" in events.warm_where
    assert "cold/" in events.cold_where
    assert RetentionPolicy.objects.get(kind="balance_snapshots").hot_where.startswith("Redis")
    # and the seed itself is the first entry of each kind's history
    seeded = RetentionChange.objects.filter(kind="payment_events").order_by("id").first()
    assert (seeded.os_user, seeded.by_name, seeded.before) == ("migration", "archive.0003_retention", None)


def test_retention_set_records_who_what_and_why(policy_kept):
    before = _policy("audit_logs")
    out = _set("audit_logs", "--cold-until", "P8Y", "--keep", "P8Y", "--reason", "regulator letter 42", "--by", "alice")
    assert "audit_logs keep: P8Y (was P7Y)" in out
    assert _policy("audit_logs") == ("P30D", "P1Y", "P8Y", "P8Y")
    change = RetentionChange.objects.filter(kind="audit_logs").order_by("-id").first()
    assert (change.os_user, change.by_name, change.reason) == (getpass.getuser(), "alice", "regulator letter 42")
    assert tuple(change.before[b] for b in retention.BOUNDS) == before
    assert tuple(change.after[b] for b in retention.BOUNDS) == ("P30D", "P1Y", "P8Y", "P8Y")
    # "forever" is NULL
    _set("audit_logs", "--cold-until", "forever", "--keep", "forever", "--reason", "legal hold")
    assert _policy("audit_logs")[2:] == (None, None)


def test_the_history_and_the_policy_refuse_writes_in_the_database(policy_kept):
    _set("analytics", "--keep", "P6Y", "--reason", "audit")
    PurgeRecord.objects.create(
        purged_at=timezone.now(),
        purged_by="test",
        archive_object_id=0,
        kind="events",
        period_start=dt.date(2016, 1, 1),
        period_end=dt.date(2016, 2, 1),
        key="cold/events/2016-01/x.parquet.enc",
        row_count=1,
        sha256_plaintext="0" * 64,
        sha256_object="0" * 64,
        manifest={},
        policy={},
    )
    for statement in (
        "UPDATE archive_retention_change SET reason = 'nothing happened'",
        "DELETE FROM archive_retention_change",
        "TRUNCATE archive_retention_change",
        "UPDATE archive_purge_record SET row_count = 0",
        "DELETE FROM archive_purge_record",
        "TRUNCATE archive_purge_record",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), raw_cursor() as cursor:
            cursor.execute(statement)
    # the policy itself changes only with its change recorded in the same transaction
    for statement in (
        "UPDATE archive_retention_policy SET keep = 'P1D' WHERE kind = 'payment_events'",
        "DELETE FROM archive_retention_policy WHERE kind = 'payment_events'",
        "TRUNCATE archive_retention_policy",
    ):
        with pytest.raises(DatabaseError, match="retention_set"), transaction.atomic(), raw_cursor() as cursor:
            cursor.execute(statement)
    assert _policy("payment_events") == SEED["payment_events"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["payment_events", "--hot=-P1M"], "cannot be negative"),
        (["payment_events", "--hot", "3 months"], "not a duration"),
        (["payment_events", "--warm-until", "P1M"], r"warm until \(P1M\) is shorter than hot \(P3M\)"),
        (["payment_events", "--keep", "P5Y"], r"kept \(P5Y\) is shorter than cold until \(P10Y\)"),
        (["payment_events", "--hot", "forever"], "hot needs a duration"),
        (["balance_snapshots", "--keep", "P2Y"], r"kept \(P2Y\) is shorter than cold until \(forever\)"),
        (["invoices", "--keep", "P1Y"], "no retention policy for 'invoices'"),
        (["payment_events"], "nothing to change"),
        (["payment_events", "--keep", "P11Y", "--reason", "  "], "needs a --reason"),
    ],
)
def test_nonsense_is_refused_with_a_clear_error(args, message):
    before = RetentionChange.objects.count()
    if "--reason" not in args:
        args = [*args, "--reason", "test"]
    with pytest.raises(CommandError, match=message):
        _set(*args)
    assert _policy("payment_events") == SEED["payment_events"]
    assert RetentionChange.objects.count() == before


def test_durations_count_calendar_months_back():
    moment = dt.datetime(2026, 3, 31, 12, tzinfo=dt.UTC)
    assert retention.cutoff("P1M", moment) == dt.datetime(2026, 2, 28, 12, tzinfo=dt.UTC)
    assert retention.cutoff("P1Y2M3DT4H5M", moment) == dt.datetime(2025, 1, 28, 7, 55, tzinfo=dt.UTC)
    assert retention.cutoff("forever", moment) is None


def test_archive_events_takes_its_hot_window_from_the_policy(policy_kept):
    today = dt.date(2026, 11, 28)
    assert hot_boundary(today) == dt.date(2026, 9, 1)  # P3M: November, October, September stay
    _set("payment_events", "--hot", "P1M", "--reason", "shorter hot window")
    assert hot_boundary(today) == dt.date(2026, 11, 1)
    _set("payment_events", "--hot", "P0D", "--reason", "nothing hot")
    # the month being written is never archived
    assert hot_boundary(today) == partitions.month_start(today)


@pytest.fixture
def staff():
    def login(role: str | None, *, superuser: bool = False):
        vault.role_groups_ensure()
        user = get_user_model().objects.create_user(
            f"{role or 'root'}-{uuid.uuid4().hex[:8]}", password="x-test-only", is_staff=True, is_superuser=superuser
        )
        if role:
            user.groups.add(Group.objects.get(name=role))
        return staff_login(Client(), user)

    return login


@pytest.mark.parametrize(
    "page", ["retentionpolicy", "retentionchange", "purgerecord", "archiveobject"], ids=lambda page: page
)
def test_auditors_read_the_lifecycle_pages_and_support_does_not(staff, page):
    url = f"/admin/archive/{page}/"
    assert staff("auditor").get(url).status_code == 200
    assert staff(None, superuser=True).get(url).status_code == 200
    assert staff("support").get(url).status_code == 403
    assert staff("finance").get(url).status_code == 403
