"""The retention policy applied to the archive, with real partitions: a warm object past the warm window moves to
cold (and a move cut off half-way is repaired by the next run), an object past retention is purged with a purge
record kept, and its payment then no longer loads (nothing is kept past its time); retention_status shows each
tier; the beat job archives, moves and purges, and a month that fails does not stop the others. Months 14 to 19
back are this module's."""

from __future__ import annotations

import io
import json
import threading
import time

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from archive import events as archive_events
from archive import lifecycle, reader
from archive.models import ArchiveObject, PurgeRecord
from archive.store import archive_store
from archive.tasks import lifecycle_apply_task
from fintech import eventstore, partitions
from fintech.db import raw_cursor
from tests.archive.conftest import project_all

pytestmark = pytest.mark.django_db(transaction=True)


def _run(command: str, *args: str) -> str:
    out = io.StringIO()
    call_command(command, *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def _archived(first) -> ArchiveObject:
    _run("archive_events", f"--month={first:%Y-%m}")
    return ArchiveObject.objects.get(kind="events", period_start=first, state="archived")


def test_a_warm_object_past_the_warm_window_moves_to_cold(old_month, pay_in):
    # given a month 15 back archived (warm), its data older than the policy's warm window (P1Y)
    first = old_month(15)
    payment = pay_in(first)
    before = [(e.version, e.event_id) for e in eventstore.load(payment.id)]
    project_all()
    obj = _archived(first)
    old_key = obj.key
    assert old_key.startswith("warm/")
    # when move_archives runs
    out = _run("move_archives")
    # then the object, its row and its manifest are in cold
    assert f"-> cold/{old_key.removeprefix('warm/')}" in out
    obj.refresh_from_db()
    assert (obj.tier, obj.key, obj.state) == ("cold", "cold/" + old_key.removeprefix("warm/"), "archived")
    store = archive_store()
    assert store.exists(obj.key)
    assert not store.exists(old_key)
    assert not store.exists(f"{old_key}.manifest.json")
    manifest = json.loads(store.get(f"{obj.key}.manifest.json"))
    assert (manifest["tier"], manifest["key"], manifest["sha256_object"]) == ("cold", obj.key, obj.sha256_object)
    # and it still verifies and reads: the payment loads whole
    assert _run("verify_archives").startswith("1 archive object(s) match")
    assert [(e.version, e.event_id) for e in eventstore.load(payment.id)] == before
    # and a second run finds nothing to do
    assert _run("move_archives").endswith("0 object(s) moved to cold\n")


def test_a_move_cut_off_after_the_store_is_repaired_by_the_next_run(old_month, pay_in):
    first = old_month(16)
    pay_in(first)
    project_all()
    obj = _archived(first)
    old_key, new_key = obj.key, lifecycle.cold_key(obj.key)
    # given a run cut off after moving the object, before its row changed
    archive_store().move(old_key, new_key)
    # when the next run comes
    out = _run("move_archives")
    # then it only updates the row, and writes the manifest beside the new key
    assert "found moved by a run cut off, row updated" in out
    obj.refresh_from_db()
    assert (obj.tier, obj.key) == ("cold", new_key)
    assert archive_store().exists(f"{new_key}.manifest.json")
    assert _run("verify_archives").startswith("1 archive object(s) match")


def test_an_object_past_retention_is_purged_and_leaves_a_purge_record(old_month, pay_in, policy_kept):
    # given a month 18 back archived, and a policy that keeps payment events 17 months
    first = old_month(18)
    payment = pay_in(first)
    project_all()
    obj = _archived(first)
    manifest = json.loads(archive_store().get(f"{obj.key}.manifest.json"))
    _run("retention_set", "payment_events", "--cold-until", "P17M", "--keep", "P17M", "--reason", "test: shrink")
    # when purge_archives runs
    out = _run("purge_archives")
    # then the object and its manifest are gone from the store, its row says so
    assert f"{first:%Y-%m}: purged {obj.row_count} rows" in out
    assert not archive_store().exists(obj.key)
    assert not archive_store().exists(f"{obj.key}.manifest.json")
    obj.refresh_from_db()
    assert obj.state == "purged"
    assert obj.purged_at is not None
    # and a purge record says what, when, under which policy and by whom
    record = PurgeRecord.objects.get(archive_object_id=obj.id)
    assert (record.kind, record.period_start, record.key, record.row_count) == (
        "events",
        first,
        obj.key,
        obj.row_count,
    )
    assert (record.sha256_object, record.sha256_plaintext) == (obj.sha256_object, obj.sha256_plaintext)
    assert record.manifest == manifest
    assert (record.policy["kind"], record.policy["keep"]) == ("payment_events", "P17M")
    assert record.purged_by.startswith("purge_archives (")
    # and the record is kept: the database refuses to change or delete it
    for statement in ("UPDATE archive_purge_record SET row_count = 0", "DELETE FROM archive_purge_record"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), raw_cursor() as cursor:
            cursor.execute(statement)
    # and nothing is kept past its time: the payment whose events were purged no longer loads
    with pytest.raises(eventstore.EventsMissing):
        eventstore.load(payment.id)
    # and a second run purges nothing more
    assert _run("purge_archives").endswith("0 object(s) purged\n")
    assert PurgeRecord.objects.filter(archive_object_id=obj.id).count() == 1


def test_retention_status_shows_each_tier_and_what_is_due(old_month, pay_in):
    first = old_month(19)
    pay_in(first)
    project_all()
    obj = _archived(first)
    out = _run("retention_status", "--exact")
    blocks = {b.split(" ")[0]: b for b in out.split("\n\n") if b}
    block = blocks["payment_events"]
    assert block.startswith("payment_events (kept P10Y)\n  policy: hot P3M (database")
    assert f"{partitions.partition_name(partitions.month_start(first.today()))} " in block
    assert f"  warm: 1 object(s), {obj.row_count} rows, {first:%Y-%m} .. {first:%Y-%m}\n" in block
    assert "  cold: none\n" in block
    assert f"move {first:%Y-%m} (warm -> cold)" in block
    # every kind has its block, the ones held nowhere say so
    for kind in ("audit_logs", "analytics", "idempotency_records", "balance_snapshots", "expired_sessions"):
        assert blocks[kind].startswith(f"{kind} (kept ")
        assert "\n  oldest record: " in blocks[kind]
        assert "\n  due now: " in blocks[kind]
    assert "  database: fintech_idempotency: " in blocks["idempotency_records"]
    assert blocks["kyc_documents"].startswith("kyc_documents (kept forever)\n")
    assert "held nowhere in this system yet" in blocks["kyc_documents"]


def test_the_beat_job_archives_moves_and_a_failed_month_does_not_stop_the_others(old_month, pay_in, monkeypatch):
    assert settings.CELERY_BEAT_SCHEDULE["archive-lifecycle-apply"] == {
        "task": "archive.tasks.lifecycle_apply_task",
        "schedule": 86400.0,
    }
    assert lifecycle_apply_task.name == "archive.tasks.lifecycle_apply_task"
    failing, working = old_month(17), old_month(14)
    pay_in(failing)
    pay_in(working)
    project_all()
    real = archive_events.events_month_archive

    def archive(*, first, actor):
        if first == failing:
            raise RuntimeError("the store fell over")
        return real(first=first, actor=actor)

    monkeypatch.setattr(archive_events, "events_month_archive", archive)
    # when the beat job runs
    lifecycle_apply_task()
    # then the failing month is still in PostgreSQL, untouched
    assert partitions.partition_name(failing) in partitions.existing_partitions()
    assert not ArchiveObject.objects.filter(kind="events", period_start=failing).exists()
    # and the other was archived and, past the warm window, moved to cold
    obj = ArchiveObject.objects.get(kind="events", period_start=working, state="archived")
    assert obj.tier == "cold"
    assert archive_store().exists(obj.key)


def test_two_runs_at_once_handle_each_object_once(old_month, pay_in, policy_kept, run_concurrently):
    # given two months archived, one due to move to cold and one past retention
    moving, purging = old_month(15), old_month(19)
    for first in (moving, purging):
        pay_in(first)
    project_all()
    to_move, to_purge = _archived(moving), _archived(purging)
    _run("retention_set", "payment_events", "--cold-until", "P18M", "--keep", "P18M", "--reason", "test: shrink")
    # when two beat jobs run at once
    results = run_concurrently(*[lambda: lifecycle.lifecycle_apply(actor="test") for _ in range(2)])
    # then each object was handled once: one purge record, one object in cold, whatever each run found
    assert [status for status, _ in results] == ["ok", "ok"]
    assert PurgeRecord.objects.filter(archive_object_id=to_purge.id).count() == 1
    to_move.refresh_from_db()
    to_purge.refresh_from_db()
    assert (to_move.tier, to_move.state, to_purge.state) == ("cold", "archived", "purged")
    assert archive_store().exists(to_move.key)
    done = [line for _, outcome in results for line in outcome.done]
    # (other tests' months left in PostgreSQL may be archived and moved too: only these two are counted)
    assert sum(line.startswith(f"events {purging:%Y-%m}: purged") for line in done) == 1
    assert sum(line.startswith(f"events {moving:%Y-%m} ") and "-> cold/" in line for line in done) == 1


def test_a_payment_read_while_its_month_moves_to_cold_is_read_whole(old_month, pay_in):
    # given a month archived, its object already under the cold key but its row still naming the warm one (a
    # reader between move_archives' two steps)
    first = old_month(33)
    payment = pay_in(first)
    project_all()
    obj = _archived(first)
    cold = obj.key.replace("warm/", "cold/", 1)
    archive_store().move(obj.key, cold)
    reader._table.cache_clear()

    def row_catches_up():
        try:
            time.sleep(0.3)
            ArchiveObject.objects.filter(id=obj.id).update(key=cold, tier="cold")
        finally:
            connection.close()

    mover = threading.Thread(target=row_catches_up)
    mover.start()
    try:
        # then the payment loads whole once the row names the new key
        assert [e.version for e in eventstore.load(payment.id)] == [1, 2, 3]
    finally:
        mover.join()
        reader._table.cache_clear()
