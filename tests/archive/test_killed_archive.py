"""archive_events killed with SIGKILL mid-way, in a process of its own: after it wrote the month's object and
before it detached the partition (it waits there for a lock this test holds). The next run resumes: the month is
archived once, from the object already written, with nothing lost or duplicated."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import psycopg
import pytest
from django.conf import settings as django_settings
from django.db import connection

from archive import events as archive_events
from archive.models import ArchiveObject
from archive.store import archive_store
from fintech import eventstore, partitions
from tests.archive.conftest import project_all
from tests.integration.conftest import database_url, wait_for, wait_for_sessions_gone

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

APPLICATION_NAME = "archive-test-killed"


def _archiver(first, archive_dir, log) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(django_settings.DATABASE_URL, connection.settings_dict["NAME"]),
        "REDIS_URL": django_settings.REDIS_URL,
        "VAULT_KEYS_DIR": str(django_settings.VAULT_KEYS_DIR),
        "FINTECH_ARCHIVE_URL": "",
        "FINTECH_ARCHIVE_DIR": str(archive_dir),
        "PGAPPNAME": APPLICATION_NAME,
        "PROJECTIONS_WAKE_ON_COMMIT": "false",
        "PYTHONUNBUFFERED": "1",
    }
    with log.open("ab") as output:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
            [sys.executable, "manage.py", "archive_events", f"--month={first:%Y-%m}"],
            cwd=django_settings.BASE_DIR,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _waiting_for_the_partition_lock(barrier: psycopg.Connection) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s "
            "AND wait_event_type = 'Lock' AND query LIKE 'LOCK TABLE%%' AND %s = ANY(pg_blocking_pids(pid))",
            [APPLICATION_NAME, barrier.info.backend_pid],
        )
        return cursor.fetchone() is not None


def test_archive_killed_after_writing_resumes_with_nothing_lost_or_duplicated(old_month, pay_in, archive_dir, tmp_path):
    first = old_month(13)
    paid = [pay_in(first, 7000 + i) for i in range(3)]
    project_all()
    name = partitions.partition_name(first)
    before = {p.id: [(e.version, e.event_id) for e in eventstore.load(p.id)] for p in paid}
    # given an archiver stopped between writing the month's object and detaching its partition
    barrier = psycopg.connect(**connection.get_connection_params())
    try:
        barrier.execute(f"LOCK TABLE {name} IN ROW EXCLUSIVE MODE")
        process = _archiver(first, archive_dir, tmp_path / "archiver.log")
        try:
            wait_for(lambda: _waiting_for_the_partition_lock(barrier), what="the archiver at the partition lock")
            # when it is killed there
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    finally:
        barrier.rollback()
        barrier.close()
    wait_for_sessions_gone(APPLICATION_NAME)
    # then the month is still in PostgreSQL, its object written but not archived
    assert name in partitions.existing_partitions()
    written = ArchiveObject.objects.get(kind="events", period_start=first)
    assert written.state == "written"
    # when the next run comes
    result = archive_events.events_month_archive(first=first, actor="resumed")
    # then the month is archived once, from the object already written, and every event loads as before
    assert (result.outcome, result.rows) == ("archived", written.row_count)
    archived = ArchiveObject.objects.get(kind="events", period_start=first)
    assert (archived.id, archived.key, archived.state) == (written.id, written.key, "archived")
    objects = [k for k in archive_store().keys(f"warm/events/{first:%Y-%m}/") if not k.endswith(".json")]
    assert objects == [archived.key]
    assert name not in partitions.existing_partitions()
    assert {p.id: [(e.version, e.event_id) for e in eventstore.load(p.id)] for p in paid} == before
