"""Daily balance snapshots: each account's balances as they stood at the end of a day, exact whenever the job
runs (what was posted after the day ended is taken off), taken once, never for a day still running."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from fintech.money import Money
from ledger import services
from ledger.models import BalanceSnapshot
from ledger.snapshots import SETTLE_SECONDS, balance_snapshots_catch_up, balance_snapshots_take, day_end
from tests.ledger.conftest import ACTOR

pytestmark = pytest.mark.django_db(transaction=True)

# A day of its own, far back: the ledger outlives the tests, and every other test posts today.
DAY = dt.date(2001, 2, 3)


def _deposit_at(moment: dt.datetime, account, minor: int, monkeypatch) -> None:
    monkeypatch.setattr(timezone, "now", lambda: moment)
    try:
        services.account_deposit(account_id=account.id, amount=Money(minor, "JPY"), actor=ACTOR)
    finally:
        monkeypatch.undo()


def test_snapshot_is_the_balance_at_the_end_of_the_day(customer_account, monkeypatch):
    # given an account opened and funded with 1,000 during DAY, then 500 more the day after and 250 today
    opened = dt.datetime.combine(DAY, dt.time(9), tzinfo=dt.UTC)
    monkeypatch.setattr(timezone, "now", lambda: opened)
    account = customer_account()
    monkeypatch.undo()
    _deposit_at(opened + dt.timedelta(hours=2), account, 1000, monkeypatch)
    _deposit_at(day_end(DAY) + dt.timedelta(hours=1), account, 500, monkeypatch)
    services.account_deposit(account_id=account.id, amount=Money(250, "JPY"), actor=ACTOR)
    # when DAY is snapshotted today
    assert balance_snapshots_take(day=DAY) >= 1
    # then the account stood at 1,000 at the end of DAY, whatever came after
    snapshot = BalanceSnapshot.objects.get(account_id=account.id, day=DAY)
    assert (snapshot.available, snapshot.pending, snapshot.currency) == (1000, 0, "JPY")
    # and the next day at 1,500
    balance_snapshots_take(day=DAY + dt.timedelta(days=1))
    assert BalanceSnapshot.objects.get(account_id=account.id, day=DAY + dt.timedelta(days=1)).available == 1500
    # taking DAY again changes nothing
    assert balance_snapshots_take(day=DAY) == 0
    assert BalanceSnapshot.objects.filter(account_id=account.id, day=DAY).count() == 1


def test_an_account_opened_after_the_day_has_no_snapshot_of_it(customer_account):
    account = customer_account(funded=100)
    balance_snapshots_take(day=DAY - dt.timedelta(days=30))
    assert not BalanceSnapshot.objects.filter(account_id=account.id).exists()


def test_a_day_not_ended_long_enough_is_refused():
    today = dt.datetime.now(dt.UTC).date()
    with pytest.raises(ValueError, match="has not ended"):
        balance_snapshots_take(day=today)
    just_after = day_end(DAY) + dt.timedelta(seconds=SETTLE_SECONDS - 1)
    with pytest.raises(ValueError, match="has not ended"):
        balance_snapshots_take(day=DAY, now=just_after)
    with pytest.raises(CommandError, match="has not ended"):
        call_command("snapshot_balances", f"--day={today}", stdout=io.StringIO())


def test_catch_up_takes_each_missing_day_once(customer_account):
    customer_account(funded=100)
    now = dt.datetime.combine(DAY + dt.timedelta(days=5), dt.time(1), tzinfo=dt.UTC)
    taken = balance_snapshots_catch_up(days=3, now=now)
    assert taken == [DAY + dt.timedelta(days=2), DAY + dt.timedelta(days=3), DAY + dt.timedelta(days=4)]
    assert balance_snapshots_catch_up(days=3, now=now) == []
