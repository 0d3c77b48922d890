"""What the console's pages show, read through each app's selectors and cut to what the user's roles may see
(fintech.policy): a panel, a column or a section a role may not read is left out, not greyed."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict

from django.utils import timezone

from console.charts import hourly_bars
from console.models import Operation
from fintech import policy
from fintech.money import currency_exponent
from ledger import selectors as ledger_selectors
from payments import selectors as payments_selectors
from projections import selectors as projections_selectors
from vault import selectors as vault_selectors

PAYMENT_PAGE = "payments.paymentstream"
PROJECTION_PAGE = "projections.projectionstate"
SETTLEMENT_PAGE = "ledger.settlementbatch"
RECONCILIATION_PAGE = "ledger.reconciliationrun"
ENTRY_PAGE = "ledger.journalentry"
DETOKENIZATION_PAGE = "vault.detokenizationaudit"
EVENT_PAGE = "fintech.event"
CHART_HOURS = 24


def money_text(minor: int, currency: str) -> str:
    """An amount in minor units as its currency writes it, "1,234,500 JPY", "10.50 USD". Not through Money: a
    sum over a day's payments may be beyond what one payment may be (MAX_MINOR), and it must still show."""
    exponent = currency_exponent(currency)
    digits = str(abs(int(minor))).rjust(exponent + 1, "0")
    whole, fraction = (digits[:-exponent], digits[-exponent:]) if exponent else (digits, "")
    text = f"{int(whole):,}" + (f".{fraction}" if fraction else "")
    return f"{'-' if minor < 0 else ''}{text} {currency}"


def _payments_today(now: dt.datetime) -> dict:
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    figures = projections_selectors.payment_figures(since=midnight)
    by_currency: dict[str, dict] = defaultdict(lambda: {"rows": [], "count": 0, "amount": 0})
    for row in figures["rows"]:
        line = by_currency[row["currency"]]
        line["rows"].append({**row, "amount_text": money_text(row["amount"], row["currency"])})
        line["count"] += row["count"]
        line["amount"] += row["amount"]
    currencies = []
    for currency, line in sorted(by_currency.items()):
        declined, answered = figures["decline"].get(currency, (0, 0))
        currencies.append(
            {
                "currency": currency,
                "rows": line["rows"],
                "count": line["count"],
                "amount_text": money_text(line["amount"], currency),
                "decline_rate": _rate(declined, answered),
            }
        )
    return {
        "since": midnight,
        "currencies": currencies,
        "count": sum(line["count"] for line in currencies),
        "decline_rate": _rate(figures["declined"], figures["answered"]),
        "declined": figures["declined"],
        "answered": figures["answered"],
    }


def _rate(part: int, whole: int) -> str:
    return "n/a" if not whole else f"{100 * part / whole:.1f}%"


def dashboard(user, *, now: dt.datetime | None = None) -> dict:
    """The admin's front page: the panels this user's roles may read."""
    now = now or timezone.now()
    context: dict = {"now": now}
    if policy.may_view_admin(user, PAYMENT_PAGE):
        context["payments_today"] = _payments_today(now)
        since = now - dt.timedelta(hours=CHART_HOURS - 1)
        counts = projections_selectors.payment_hourly_counts(since=since, hours=CHART_HOURS)
        context["hourly_chart"] = hourly_bars(
            counts, element_id="payments-per-hour", title="Payments per hour, last 24 hours (UTC)"
        )
        context["hourly_total"] = sum(n for _, n in counts)
    if policy.may_view_admin(user, PROJECTION_PAGE):
        context["projections"] = projections_selectors.projection_status_list()
    if policy.may_view_admin(user, SETTLEMENT_PAGE):
        batch = ledger_selectors.settlement_batch_last()
        if batch:
            for line in batch["currencies"]:
                line["amount_text"] = money_text(line["amount"], line["currency"])
        context["settlement"] = {"batch": batch}
    if policy.may_view_admin(user, RECONCILIATION_PAGE):
        runs = ledger_selectors.reconciliation_list(limit=1)
        context["reconciliation"] = {"run": runs[0] if runs else None}
    return context


def timeline(user, payment_id: uuid.UUID) -> dict | None:
    """A payment's story: every event with its actor, correlation id and the status after it; the ledger entries
    it produced and its card's detokenisations for the roles that may read those. None for no such payment."""
    history = payments_selectors.payment_history(payment_id=payment_id)
    if not history:
        return None
    payment = projections_selectors.payment_view_get(payment_id=payment_id)
    events = [
        {
            "version": recorded.version,
            "event_id": recorded.event_id,
            "event_type": recorded.event_type,
            "occurred_at": recorded.occurred_at,
            "actor": recorded.metadata.get("actor", ""),
            "correlation_id": recorded.metadata.get("correlation_id", ""),
            "status_after": status,
            "data": recorded.event.to_data(),
        }
        for recorded, status in history
    ]
    context: dict = {
        "payment_id": payment_id,
        "payment": payment,
        "events": events,
        "may_open_events": policy.may_view_admin(user, EVENT_PAGE),
    }
    if payment:
        context["amount_text"] = money_text(payment["amount"]["amount"], payment["amount"]["currency"])
    if policy.may_view_admin(user, ENTRY_PAGE):
        entries = ledger_selectors.payment_entry_list(payment_id=payment_id)
        for entry in entries:
            for posting in entry["postings"]:
                posting["amount_text"] = money_text(posting["amount"], posting["currency"])
        context["entries"] = entries
    token = (payment or {}).get("payment_method", {}).get("token") or _token_of(events)
    if token and policy.may_view_admin(user, DETOKENIZATION_PAGE):
        context["detokenizations"] = vault_selectors.detokenization_list(token=token)
    return context


def _token_of(events: list[dict]) -> str:
    for event in events:
        method = event["data"].get("payment_method") or {}
        if method.get("token"):
            return method["token"]
    return ""


def payment_search(search, *, limit: int) -> list[dict]:
    results = projections_selectors.payment_search(search, limit=limit)
    for payment in results:
        payment["amount_text"] = money_text(payment["amount"]["amount"], payment["amount"]["currency"])
    return results


def operation_list(*, limit: int = 20) -> list[Operation]:
    return list(Operation.objects.order_by("-requested_at")[:limit])


def operations_open() -> list[Operation]:
    return list(Operation.objects.filter(state__in=Operation.OPEN).order_by("requested_at"))


def reconciliation_runs(*, limit: int) -> list[dict]:
    runs = ledger_selectors.reconciliation_list(limit=limit)
    for run in runs:
        run["currency_lines"] = [
            {
                **line,
                "customer_funds_text": money_text(line["customer_funds"], currency),
                "trust_text": money_text(-line["trust"], currency),
            }
            for currency, line in sorted(run["currencies"].items())
        ]
    return runs
