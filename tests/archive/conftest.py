"""Fixtures of the archive's tests: an archive directory of the test's own, and payments whose events were
written into a month long past (the store accepts an old occurred_at), in a partition of their own."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator

import pytest
from django.utils import timezone

from archive import events as archive_events
from archive import retention
from archive.models import ArchiveObject, RetentionPolicy
from fintech import partitions
from fintech.money import Money
from payments import services as payments
from projections.engine import projection_run, projections
from vault import services as vault

ACTOR = "user:archive-test"


def months_back(count: int) -> dt.date:
    first = partitions.month_start(dt.datetime.now(dt.UTC).date())
    for _ in range(count):
        first = partitions.month_start(first - dt.timedelta(days=1))
    return first


def project_all() -> None:
    for name in projections():
        projection_run(name=name)


@pytest.fixture
def archive_dir(settings, tmp_path):
    settings.FINTECH_ARCHIVE_URL = ""
    settings.FINTECH_ARCHIVE_DIR = str(tmp_path / "archive")
    return tmp_path / "archive"


@pytest.fixture
def archive_location(archive_dir):
    """Where old_month's months are archived: the test's own directory. A module overrides it to archive
    elsewhere (test_s3_store: a bucket on an S3 server of its own); it is set up before old_month and torn down
    after it, so old_month's teardown restores from there."""
    return archive_dir


@pytest.fixture
def old_month(transactional_db, archive_location, monkeypatch) -> Iterator[Callable[..., object]]:
    """`old_month(n)`: the first day of the month n months back, with its partition, and `pay(first)` making a
    captured payment there through the services (their clock set to that month). Whatever the test archived is
    restored after it: the partition outlives the test, its archive record does not."""
    used: list[dt.date] = []

    def month(count: int) -> dt.date:
        first = months_back(count)
        partitions.partition_create(first=first)
        used.append(first)
        return first

    yield month
    # Every month archived meanwhile (the command archives all months before its --before) goes back; a purged
    # one cannot (nothing is kept past its time): only state "archived" is restored.
    for first in ArchiveObject.objects.filter(kind="events", state="archived").values_list("period_start", flat=True):
        archive_events.events_month_restore(first=first, actor="test teardown")


@pytest.fixture
def pay_in(monkeypatch) -> Callable[..., object]:
    merchant = f"m-archive-{uuid.uuid4().hex[:8]}"
    token = vault.card_tokenize(card_number="4242424242424242", exp_month=12, exp_year=2035, merchant_id=merchant).token

    def pay(first: dt.date, minor: int = 7000):
        moment = dt.datetime(first.year, first.month, 10, 12, 0, tzinfo=dt.UTC)
        monkeypatch.setattr(timezone, "now", lambda: moment)
        try:
            payment = payments.payment_initiate(
                merchant_id=merchant, amount=Money(minor, "JPY"), payment_method_token=token, actor=ACTOR
            )
            payments.payment_authorize(payment_id=payment.id, actor=ACTOR)
            return payments.payment_capture(payment_id=payment.id, actor=ACTOR)
        finally:
            monkeypatch.undo()

    pay.merchant = merchant
    return pay


@pytest.fixture
def policy_kept() -> Iterator[None]:
    """The retention policies as they were before the test, put back after it through the same recorded change
    (the policy table outlives transactional tests, which flush only managed tables, and refuses a direct write)."""
    saved = {p.kind: {b: getattr(p, b) for b in retention.BOUNDS} for p in RetentionPolicy.objects.all()}
    yield
    for policy in RetentionPolicy.objects.all():
        now = {b: getattr(policy, b) for b in retention.BOUNDS}
        if now != saved[policy.kind]:
            retention.policy_change(
                kind=policy.kind,
                changes={b: saved[policy.kind][b] or "forever" for b in retention.BOUNDS},
                reason="test teardown: the policy as it was",
                os_user="pytest",
            )
