"""The admin's front page is the operations dashboard: today's payments per currency and status, the decline
rate, payments per hour as a server-drawn chart, each projection's lag and error, the last settlement batch and
the last reconciliation verdict; each role sees the panels of the pages it may read."""

from __future__ import annotations

import datetime as dt
import io
import re
import uuid

import pytest
from django.core.management import call_command
from django.utils import timezone

from console.selectors import dashboard
from ledger.reconciliation import reconciliation_run
from projections.models import ProjectionState
from projections.selectors import payment_figures

pytestmark = pytest.mark.django_db(transaction=True)


def _today(user) -> dict:
    lines = dashboard(user)["payments_today"]["currencies"]
    return {(row["currency"], row["status"]): (row["count"], row["amount"]) for line in lines for row in line["rows"]}


def test_payments_today_count_and_amount_per_currency_and_status(staff, pay, project):
    client = staff(None, superuser=True)
    project()
    before = _today(client.user)
    # given two captured payments and a declined one today
    pay(7000)
    pay(3500)
    pay(2500, "failed")
    project()
    # then the dashboard counts them under their currency and status
    after = _today(client.user)
    captured = tuple(
        a - b for a, b in zip(after[("JPY", "captured")], before.get(("JPY", "captured"), (0, 0)), strict=True)
    )
    failed = tuple(a - b for a, b in zip(after[("JPY", "failed")], before.get(("JPY", "failed"), (0, 0)), strict=True))
    assert captured == (2, 10500)
    assert failed == (1, 2500)


def test_decline_rate_is_declined_among_answered(staff, pay, project):
    # given, from now on, one approved and one declined authorization and one never sent
    since = timezone.now()
    pay(7000)
    pay(2500, "failed")
    pay(4000, "initiated")
    project()
    # then half of those the acquirer answered were declined; the unsent one counts for neither
    figures = payment_figures(since=since)
    assert figures["decline"]["JPY"] == (1, 2)


def test_hourly_chart_counts_the_last_24_hours(staff, pay, project):
    client = staff(None, superuser=True)
    project()
    before = dashboard(client.user)
    pay(7000)
    pay(2500, "failed")
    project()
    after = dashboard(client.user)
    # then the hourly total grew by two, and the page draws 24 bars, the last one this hour's
    assert after["hourly_total"] - before["hourly_total"] == 2
    page = client.get("/admin/").content.decode()
    chart = re.search(r'<svg id="payments-per-hour".*?</svg>', page, re.S).group(0)
    bars = re.findall(r'<rect class="bar"[^>]*data-hour="([^"]+)" data-count="(\d+)"', chart)
    assert len(bars) == 24
    this_hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    assert dt.datetime.fromisoformat(bars[-1][0]) == this_hour
    assert int(bars[-1][1]) >= 2


def test_front_page_shows_every_panel_to_a_superuser(staff, pay, project):
    client = staff(None, superuser=True)
    pay(7000)
    project()
    reconciliation_run(actor="test")
    # a settlement date of its own (each date settles once, and the ledger outlives the tests)
    settlement_date = dt.date(2900, 1, 1) + dt.timedelta(days=uuid.uuid4().int % 30000)
    call_command("run_settlement", date=str(settlement_date), stdout=io.StringIO())
    page = client.get("/admin/").content.decode()
    for panel in ("panel-payments", "panel-projections", "panel-settlement", "panel-reconciliation"):
        assert f'id="{panel}"' in page
    assert 'id="reconciliation-verdict"' in page
    assert settlement_date.isoformat() in page
    # and the styles it needs come from this server
    assert "/static/console/console.css" in page
    assert "/static/admin/css/base.css" in page


def test_projection_stop_error_is_on_the_dashboard(staff):
    client = staff(None, superuser=True)
    ProjectionState.objects.update_or_create(
        name="payments", defaults={"error": "Traceback...\nValueError: bad amount", "error_at": timezone.now()}
    )
    page = client.get("/admin/").content.decode()
    assert "stopped: ValueError: bad amount" in page


CONSOLE_PAGES = {
    "Search payments": "/admin/console/payments/",
    "Projections": "/admin/console/projections/",
    "Reconciliation": "/admin/console/reconciliation/",
}


@pytest.mark.parametrize(
    ("role", "shown", "hidden", "pages"),
    [
        (
            "support",
            {"panel-payments"},
            {"panel-projections", "panel-settlement", "panel-reconciliation"},
            {"Search payments"},
        ),
        (
            "finance",
            {"panel-payments", "panel-settlement", "panel-reconciliation"},
            {"panel-projections"},
            {"Search payments", "Reconciliation"},
        ),
        ("cde", set(), {"panel-payments", "panel-projections", "panel-settlement", "panel-reconciliation"}, set()),
        (
            "auditor",
            {"panel-payments", "panel-projections", "panel-settlement", "panel-reconciliation"},
            set(),
            set(CONSOLE_PAGES),
        ),
    ],
)
def test_each_role_sees_the_panels_and_console_pages_it_may_read(staff, role, shown, hidden, pages):
    page = staff(role).get("/admin/").content.decode()
    for panel in shown:
        assert f'id="{panel}"' in page, panel
    for panel in hidden:
        assert f'id="{panel}"' not in page, panel
    # and the console's pages it may open are listed with the models, the others not
    listed = {title for title, url in CONSOLE_PAGES.items() if f'<a href="{url}">{title}</a>' in page}
    assert listed == pages


def test_settlement_batches_list_their_lines(staff, pay, project):
    # given a captured payment booked, then settled on a date of its own
    payment = pay(7000)
    project()
    settlement_date = dt.date(2900, 1, 1) + dt.timedelta(days=uuid.uuid4().int % 30000)
    call_command("run_settlement", date=str(settlement_date), stdout=io.StringIO())
    client = staff("finance")
    batch = dashboard(client.user)["settlement"]["batch"]
    assert batch["settlement_date"] == settlement_date
    # then finance sees the batch in the list with its counts, and its page lists the merchant's line
    listing = client.get("/admin/ledger/settlementbatch/").content.decode()
    assert str(batch["id"]) in listing
    page = client.get(f"/admin/ledger/settlementbatch/{batch['id']}/change/").content.decode()
    assert payment.merchant_id in page
