"""Analytics to Parquet: a month of merchant daily summaries older than the analytics window leaves the read
table for a sealed object in the archive, and query_archive answers SQL over it and over archived events with
DuckDB, without restoring anything and without reaching any file."""

from __future__ import annotations

# ruff: noqa: S608 - the queries are the operator's SQL, built from ids the test made
import io

import pytest
from django.core.management import CommandError, call_command

from archive.models import ArchiveObject
from projections.models import MerchantDailySummary
from tests.archive.conftest import project_all

pytestmark = pytest.mark.django_db(transaction=True)


def _query(sql: str) -> str:
    out = io.StringIO()
    call_command("query_archive", sql, stdout=out)
    return out.getvalue()


def test_old_summaries_move_to_parquet_and_query_archive_reads_them(old_month, pay_in):
    # given two captured payments of a merchant 7 months back, summarised by the projection
    first = old_month(31)
    pay_in(first, 7000)
    pay_in(first, 3500)
    project_all()
    merchant = pay_in.merchant
    assert MerchantDailySummary.objects.filter(merchant_id=merchant).count() == 1
    # when the month's summaries are archived
    out = io.StringIO()
    call_command("archive_analytics", f"--month={first:%Y-%m}", stdout=out)
    assert out.getvalue().startswith(f"{first:%Y-%m}: archived,")
    # then they left the read table for a sealed object
    assert not MerchantDailySummary.objects.filter(merchant_id=merchant).exists()
    obj = ArchiveObject.objects.get(kind="analytics", period_start=first)
    assert obj.state == "archived"
    # and DuckDB reads them back from the archive
    answer = _query(
        f"SELECT merchant_id, sum(captured_count), sum(captured_amount) FROM merchant_daily "
        f"WHERE merchant_id = '{merchant}' GROUP BY 1"
    )
    assert f"{merchant}\t2\t10500" in answer
    assert answer.strip().endswith("(1 row)")


def test_query_archive_reads_archived_events(old_month, pay_in):
    first = old_month(32)
    payment = pay_in(first)
    project_all()
    call_command("archive_events", f"--month={first:%Y-%m}", stdout=io.StringIO())
    answer = _query(f"SELECT event_type FROM events WHERE aggregate_id = '{payment.id}' ORDER BY version")
    assert answer.splitlines()[1:4] == ["PaymentInitiated", "PaymentAuthorized", "PaymentCaptured"]


def test_query_archive_reaches_no_file_and_bad_sql_is_an_error():
    with pytest.raises(CommandError, match="the query failed"):
        _query("SELECT * FROM read_csv('/etc/passwd')")
    with pytest.raises(CommandError, match="the query failed"):
        _query("SET enable_external_access = true")
    with pytest.raises(CommandError, match="the query failed"):
        _query("SELEC nonsense")


def test_the_analytics_window_is_kept(old_month):
    first = old_month(2)
    with pytest.raises(CommandError, match="within the analytics window"):
        call_command("archive_analytics", f"--month={first:%Y-%m}", stdout=io.StringIO())
