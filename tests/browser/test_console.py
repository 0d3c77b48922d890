"""The operations console in a browser: the dashboard as the admin's front page, styled, with its chart; a
payment found by its card's last digits and followed through its timeline; an operator's replay followed to its
end on the projections page."""

from __future__ import annotations

import re
import uuid

import pytest

from accounts.services import staff_user_ensure
from fintech.celery import app as celery_app
from fintech.eventstore import command_metadata
from fintech.money import Money
from ledger.reconciliation import reconciliation_run
from payments import services as payments
from projections.engine import projection_run
from tests.browser.pages import log_in, open_styled, screenshot, submit_styled
from vault import services as vault

pytestmark = pytest.mark.django_db(transaction=True)

ACTOR = "user:browser"


def _payments(merchant: str) -> list:
    token = vault.card_tokenize(card_number="4242424242424242", exp_month=12, exp_year=2035, merchant_id=merchant).token
    made = []
    for minor, steps in ((7000, 2), (12000, 2), (2500, 1), (4000, 0)):
        with command_metadata(correlation_id=f"corr-{minor}"):
            payment = payments.payment_initiate(
                merchant_id=merchant, amount=Money(minor, "JPY"), payment_method_token=token, actor=ACTOR
            )
            if steps >= 1:
                payments.payment_authorize(payment_id=payment.id, actor=ACTOR)
            if steps >= 2:
                payments.payment_capture(payment_id=payment.id, actor=ACTOR)
        made.append(payment)
    for name in ("payments", "ledger_bookings"):
        projection_run(name=name)
    return made


def test_dashboard_is_styled_with_its_chart(live_server, page):
    # given today's payments, projected, and a reconciliation
    _payments(f"m-browser-{uuid.uuid4().hex[:6]}")
    reconciliation_run(actor="browser test")
    auditor = staff_user_ensure(username="browser-dash", role="auditor")
    # when an auditor logs in, the front page is the dashboard, styled
    log_in(page, live_server.url, auditor)
    assert page.url.rstrip("/").endswith("/admin")
    page.set_viewport_size({"width": 1400, "height": 900})
    # then its panels are there and the chart is drawn: 24 bars, the last hour's at least our four payments
    for panel in ("#panel-payments", "#panel-projections", "#panel-settlement", "#panel-reconciliation"):
        assert page.locator(panel).is_visible(), panel
    chart = page.locator("svg#payments-per-hour")
    assert chart.is_visible()
    assert chart.bounding_box()["width"] > 300
    bars = chart.locator("rect.bar")
    assert bars.count() == 24
    assert int(bars.nth(23).get_attribute("data-count")) >= 4
    # the console's own stylesheet is applied too (the bars take the admin's colour, not SVG's black)
    fill = bars.nth(23).evaluate("bar => getComputedStyle(bar).fill")
    assert fill not in ("rgb(0, 0, 0)", "")
    assert re.fullmatch(r"\d+(\.\d)?%|n/a", page.locator("#decline-rate").inner_text())
    assert page.locator("#reconciliation-verdict").is_visible()
    screenshot(page, "dashboard")


def test_payment_found_by_last4_and_its_timeline(live_server, page):
    merchant = f"m-browser-{uuid.uuid4().hex[:6]}"
    captured = _payments(merchant)[0]
    finance = staff_user_ensure(username="browser-fin", role="finance")
    log_in(page, live_server.url, finance)
    # when finance searches the merchant's payments by the card's last 4 digits
    open_styled(page, f"{live_server.url}/admin/console/payments/")
    page.get_by_label("Merchant").fill(merchant)
    page.get_by_label("Card last 4").fill("4242")
    submit_styled(page, page.get_by_role("button", name="Search"))
    results = page.locator("#payment-results tbody tr")
    assert results.count() == 4
    screenshot(page, "payment-search")
    # and opens the captured one
    submit_styled(page, page.get_by_role("link", name=str(captured.id)))
    # then its timeline lists its events with the status after each, actor and correlation id
    events = page.locator("#timeline li")
    assert events.count() == 3
    assert [events.nth(i).get_attribute("data-event-type") for i in range(3)] == [
        "PaymentInitiated",
        "PaymentAuthorized",
        "PaymentCaptured",
    ]
    assert "→ captured" in events.nth(2).inner_text()
    assert ACTOR in events.nth(0).inner_text()
    assert "corr-7000" in events.nth(0).inner_text()
    # and the capture's ledger entry, which finance may read
    assert page.locator("#ledger-entries").is_visible()
    assert "capture" in page.locator("#ledger-entries").inner_text()
    assert "4242424242424242" not in page.content()
    screenshot(page, "payment-timeline")


def test_operator_replays_a_projection_and_follows_it(live_server, page):
    _payments(f"m-browser-{uuid.uuid4().hex[:6]}")
    operator = staff_user_ensure(username="browser-op", role="auditor", superuser=True)
    log_in(page, live_server.url, operator)
    open_styled(page, f"{live_server.url}/admin/console/projections/")
    # the live server runs in this process: the task runs in the request, as a worker would run it
    celery_app.conf.task_always_eager = True
    try:
        submit_styled(page, page.locator("#projection-payments").get_by_role("button", name="Replay"))
    finally:
        celery_app.conf.task_always_eager = False
    assert "started: its progress shows below" in page.locator(".messagelist").inner_text()
    operation = page.locator("#operations tbody tr").first
    assert operation.get_attribute("data-state") == "done"
    assert "replayed" in operation.inner_text()
    screenshot(page, "projections-replayed")
