"""Audit logs from hot to warm: whole months of the staff audit trail and of the detokenisation audit that ended
more than 30 days ago are sealed into the archive and leave their tables; DuckDB reads them back; the tables go
on refusing DELETE to everyone else."""

from __future__ import annotations

# ruff: noqa: S608 - the queries are the operator's SQL, built from names the test made
import datetime as dt
import io
import uuid

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from archive.models import ArchiveObject

pytestmark = pytest.mark.django_db(transaction=True)

# A month of its own, long past: the audit tables outlive the tests.
MONTH = dt.date(2003, 4, 1)


def _rows(username: str, token: str) -> None:
    moment = dt.datetime(2003, 4, 17, 10, 30, tzinfo=dt.UTC)
    with connection.cursor() as cursor:
        for action in ("login", "view", "detokenize"):
            cursor.execute(
                "INSERT INTO fintech_staffaudit (occurred_at, user_id, username, action, object, detail, ip, "
                "user_agent) VALUES (%s, NULL, %s, %s, 'vault.card', '', '192.0.2.1', 'test')",
                [moment, username, action],
            )
        cursor.execute(
            "INSERT INTO vault_detokenizationaudit (occurred_at, actor, user_id, token, purpose, outcome, channel) "
            "VALUES (%s, %s, NULL, %s, 'chargeback 12', 'granted', 'admin')",
            [moment, username, token],
        )


def _count(table: str, column: str, value: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table} WHERE {column} = %s", [value])
        return cursor.fetchone()[0]


def test_a_past_month_of_audit_logs_moves_to_the_archive(archive_dir):
    username, token = f"aud-{uuid.uuid4().hex[:8]}", f"tok_{uuid.uuid4().hex[:20]}"
    _rows(username, token)
    out = io.StringIO()
    call_command("archive_audit_logs", f"--month={MONTH:%Y-%m}", stdout=out)
    assert f"staff_audit {MONTH:%Y-%m}: archived" in out.getvalue()
    assert f"detokenization_audit {MONTH:%Y-%m}: archived" in out.getvalue()
    # the rows left their tables for sealed objects
    assert _count("fintech_staffaudit", "username", username) == 0
    assert _count("vault_detokenizationaudit", "token", token) == 0
    kinds = set(ArchiveObject.objects.filter(period_start=MONTH, state="archived").values_list("kind", flat=True))
    assert kinds == {"staff_audit", "detokenization_audit"}
    # DuckDB reads them back
    answer = io.StringIO()
    call_command(
        "query_archive",
        f"SELECT count(*), max(purpose) FROM detokenization_audit WHERE token = '{token}'",
        stdout=answer,
    )
    assert "1\tchargeback 12" in answer.getvalue()
    answer = io.StringIO()
    call_command("query_archive", f"SELECT count(*) FROM staff_audit WHERE username = '{username}'", stdout=answer)
    assert answer.getvalue().splitlines()[1] == "3"
    # and the tables refuse DELETE again, as before
    _rows(username, token)
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM fintech_staffaudit WHERE username = %s", [username])
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM vault_detokenizationaudit WHERE token = %s", [token])


def test_recent_audit_logs_stay(archive_dir):
    this_month = dt.datetime.now(dt.UTC).date().replace(day=1)
    with pytest.raises(CommandError, match="not archived"):
        call_command("archive_audit_logs", f"--month={this_month:%Y-%m}", stdout=io.StringIO(), stderr=io.StringIO())


def test_a_year_of_balance_snapshots_moves_to_the_archive(archive_dir):
    # given snapshots of a year long past (written as the snapshot job writes them)
    account = uuid.uuid4()
    with connection.cursor() as cursor:
        for day in (dt.date(2002, 1, 31), dt.date(2002, 12, 31)):
            cursor.execute(
                "INSERT INTO ledger_balance_snapshot (account_id, day, currency, available, pending, taken_at) "
                "VALUES (%s, %s, 'JPY', 1000, 0, now())",
                [account, day],
            )
    out = io.StringIO()
    call_command("archive_snapshots", "--year=2002", stdout=out)
    assert out.getvalue().startswith("2002: archived,")
    assert _count("ledger_balance_snapshot", "account_id", str(account)) == 0
    obj = ArchiveObject.objects.get(kind="balance_snapshots", period_start=dt.date(2002, 1, 1))
    assert obj.period_end == dt.date(2003, 1, 1)
    answer = io.StringIO()
    call_command(
        "query_archive",
        f"SELECT count(*), sum(available) FROM balance_snapshots WHERE account_id = '{account}'",
        stdout=answer,
    )
    assert answer.getvalue().splitlines()[1] == "2\t2000"
    # the database's year stays
    with pytest.raises(CommandError):
        call_command(
            "archive_snapshots", f"--year={dt.datetime.now(dt.UTC).year}", stdout=io.StringIO(), stderr=io.StringIO()
        )
