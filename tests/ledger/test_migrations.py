"""The ledger left the accounts app by migration (accounts 0009, ledger 0001) without copying a row: a database
populated while the ledger still belonged to accounts migrates forward, its rows are read by the ledger's models,
its grants follow the models, and it reconciles.

The test database is shared with every other test: the test takes it back to the last migrations before the move
and always returns it to the latest ones."""

from __future__ import annotations

import importlib
import uuid
from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from fintech import eventstore
from fintech.eventstore import StreamAppend
from fintech.money import CURRENCY_EXPONENTS, Money
from ledger.domain import (
    LEDGER_AGGREGATE,
    AccountOpened,
    BalanceChanged,
    FundsDeposited,
    FundsHeld,
    PaymentBookingSuspended,
    TransferCompleted,
)
from ledger.models import Account, BookingAlert, Hold, JournalEntry, Posting, Transfer

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE_THE_MOVE = [("accounts", "0008_booking_alert"), ("ledger", None)]
MOVED = (
    "account",
    "journalentry",
    "posting",
    "transfer",
    "hold",
    "settlementbatch",
    "settlementline",
    "settledpayment",
    "bookingalert",
)
ACTOR = "user:migration-test"
finance_role = importlib.import_module("accounts.migrations.0005_finance_role")
alerts_role = importlib.import_module("accounts.migrations.0008_booking_alert")


def _unused_currency() -> str:
    """A currency no account has: the company's accounts in it are this test's own (one per kind and currency)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT currency FROM accounts_account")
        used = {row[0] for row in cursor.fetchall()}
    return next(currency for currency in sorted(CURRENCY_EXPONENTS) if currency not in used)


class OldLayoutWriter:
    """Writes ledger rows as the accounts app did, statement by statement, with the events the balance read model
    is built from (the event store and the event types are the same on both sides of the move)."""

    def __init__(self, cursor, currency: str):
        self.cursor, self.currency = cursor, currency

    def open(self, owner_type: str, owner_id: str, kind: str, floor: int | None) -> uuid.UUID:
        account_id, now = uuid.uuid4(), timezone.now()
        self.cursor.execute(
            "INSERT INTO accounts_account (id, owner_type, owner_id, currency, kind, floor, available, pending, "
            "version, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, 0, 0, 1, %s, %s)",
            [account_id, owner_type, owner_id, self.currency, kind, floor, now, now],
        )
        opened = AccountOpened(
            occurred_at=now,
            account_id=account_id,
            owner_type=owner_type,
            owner_id=owner_id,
            currency=self.currency,
            kind=kind,
            floor=floor,
        )
        eventstore.append(account_id, [opened], 0, metadata={"actor": ACTOR})
        return account_id

    def entry(self, entry_id: uuid.UUID, kind: str, postings, event, stream: uuid.UUID, **columns) -> None:
        """A journal entry, its postings ((account, bucket, amount)), the accounts' new balances, a BalanceChanged
        per account and the entry's own event."""
        now = timezone.now()
        self.cursor.execute(
            "INSERT INTO accounts_journalentry (id, kind, reference, actor, event_id, payment_id, settlement_date, "
            "created_at) VALUES (%s, %s, '', %s, %s, %s, NULL, %s)",
            [entry_id, kind, ACTOR, columns.get("event_id"), columns.get("payment_id"), now],
        )
        deltas: dict[uuid.UUID, list[int]] = {}
        for account_id, bucket, amount in postings:
            self.cursor.execute(
                "INSERT INTO accounts_posting (entry_id, account_id, currency, bucket, amount, created_at) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                [entry_id, account_id, self.currency, bucket, amount, now],
            )
            delta = deltas.setdefault(account_id, [0, 0])
            delta[bucket == "pending"] += amount
        appends = []
        for account_id, (available, pending) in deltas.items():
            self.cursor.execute(
                "UPDATE accounts_account SET available = available + %s, pending = pending + %s, "
                "version = version + 1, updated_at = %s WHERE id = %s RETURNING available, pending, version",
                [available, pending, now, account_id],
            )
            available, pending, version = self.cursor.fetchone()
            changed = BalanceChanged(
                occurred_at=now,
                account_id=account_id,
                entry_id=entry_id,
                available=Money(available, self.currency),
                pending=Money(pending, self.currency),
            )
            appends.append(StreamAppend(account_id, [changed], version - 1, LEDGER_AGGREGATE))
        appends.append(StreamAppend(stream, [event], 0))
        eventstore.append_streams(appends, metadata={"actor": ACTOR})


def _customer_money(write: OldLayoutWriter, ids: dict) -> None:
    """A deposit to alice, a transfer from alice to bob, a hold on alice."""
    currency, cursor, now = write.currency, write.cursor, timezone.now()
    ids["deposit"] = uuid.uuid4()
    deposited = FundsDeposited(
        occurred_at=now,
        entry_id=ids["deposit"],
        account_id=ids["alice"],
        amount=Money(10_000, currency),
        reference="",
    )
    postings = [(ids["alice"], "available", 10_000), (ids["trust"], "available", -10_000)]
    write.entry(ids["deposit"], "deposit", postings, deposited, ids["deposit"])

    ids["transfer"] = uuid.uuid4()
    transferred = TransferCompleted(
        occurred_at=now,
        transfer_id=ids["transfer"],
        from_account=ids["alice"],
        to_account=ids["bob"],
        amount=Money(2_500, currency),
        reference="rent",
    )
    postings = [(ids["alice"], "available", -2_500), (ids["bob"], "available", 2_500)]
    write.entry(ids["transfer"], "transfer", postings, transferred, ids["transfer"])
    cursor.execute(
        "INSERT INTO accounts_transfer (id, from_account_id, to_account_id, amount, currency, reference, "
        "status, actor, created_at) VALUES (%s, %s, %s, 2500, %s, 'rent', 'completed', %s, %s)",
        [ids["transfer"], ids["alice"], ids["bob"], currency, ACTOR, now],
    )

    ids["hold"], ids["hold_entry"] = uuid.uuid4(), uuid.uuid4()
    held = FundsHeld(
        occurred_at=now, hold_id=ids["hold"], account_id=ids["alice"], amount=Money(1_000, currency), reference=""
    )
    postings = [(ids["alice"], "available", -1_000), (ids["alice"], "pending", 1_000)]
    write.entry(ids["hold_entry"], "hold", postings, held, ids["hold"])
    cursor.execute(
        "INSERT INTO accounts_hold (id, account_id, amount, currency, reference, status, created_at) "
        "VALUES (%s, %s, 1000, %s, '', 'held', %s)",
        [ids["hold"], ids["alice"], currency, now],
    )


def _refused_into_suspense(write: OldLayoutWriter, ids: dict) -> None:
    """A payment event the bookings refused: clearing to suspense, and its booking alert."""
    ids["suspended"], ids["payment"], ids["event"] = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    suspended = PaymentBookingSuspended(
        occurred_at=timezone.now(),
        entry_id=ids["suspended"],
        payment_id=ids["payment"],
        event_id=ids["event"],
        amount=Money(300, write.currency),
        reason="LedgerError: a capture no merchant could be booked for",
    )
    postings = [(ids["clearing"], "available", -300), (ids["suspense"], "available", 300)]
    columns = {"event_id": ids["event"], "payment_id": ids["payment"]}
    write.entry(ids["suspended"], "suspense", postings, suspended, ids["suspended"], **columns)
    write.cursor.execute(
        "INSERT INTO accounts_bookingalert (event_id, event_type, payment_id, amount, currency, reason, "
        "suspense_entry_id, created_at) VALUES (%s, 'PaymentCaptured', %s, 300, %s, %s, %s, %s)",
        [ids["event"], ids["payment"], write.currency, suspended.reason, ids["suspended"], suspended.occurred_at],
    )


def _populate_old_layout(old_apps) -> dict:
    """Customers' accounts with a deposit, a transfer and a hold, the company's accounts, a payment refused into
    suspense with its booking alert, and the finance role's grants as migrations 0005 and 0008 made them."""
    currency = _unused_currency()
    ids: dict = {"currency": currency}
    with transaction.atomic(), connection.cursor() as cursor:
        write = OldLayoutWriter(cursor, currency)
        ids["alice"] = write.open("customer", str(uuid.uuid4()), "customer_balance", 0)
        ids["bob"] = write.open("customer", str(uuid.uuid4()), "customer_balance", 0)
        ids["trust"] = write.open("company", "company", "segregated_trust", None)
        ids["clearing"] = write.open("company", "company", "clearing", None)
        ids["suspense"] = write.open("company", "company", "suspense", None)
        _customer_money(write, ids)
        _refused_into_suspense(write, ids)
    finance_role.finance_role_grant(old_apps, None)
    alerts_role.finance_views_alerts(old_apps, None)
    # The rows as the accounts app's models read them.
    assert old_apps.get_model("accounts", "Account").objects.filter(currency=currency).count() == 5
    assert old_apps.get_model("accounts", "BookingAlert").objects.filter(event_id=ids["event"]).exists()
    return ids


def test_database_at_the_old_layout_migrates_forward_keeping_every_row_and_reconciles():
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    try:
        # given a database at the last migrations before the move, populated as the accounts app wrote the ledger
        executor.migrate(BEFORE_THE_MOVE)
        ContentType.objects.clear_cache()
        old_apps = executor.loader.project_state([BEFORE_THE_MOVE[0]]).apps
        ids = _populate_old_layout(old_apps)
        # when it migrates to the latest migrations
        MigrationExecutor(connection).migrate(latest)
    finally:
        # Whatever failed, the shared test database is left at the latest migrations (a no-op after the above).
        MigrationExecutor(connection).migrate(latest)
        ContentType.objects.clear_cache()
    state = MigrationExecutor(connection).loader.project_state(latest)
    assert ("ledger", "account") in state.models
    assert ("accounts", "account") not in state.models

    # then the ledger's models read every row, with the balances it was left with
    accounts = {account.id: account for account in Account.objects.filter(currency=ids["currency"])}
    balances = {name: (accounts[ids[name]].available, accounts[ids[name]].pending) for name in ("alice", "bob")}
    assert balances == {"alice": (6_500, 1_000), "bob": (2_500, 0)}
    assert accounts[ids["trust"]].available == -10_000
    entries = [ids["deposit"], ids["transfer"], ids["hold_entry"], ids["suspended"]]
    assert JournalEntry.objects.filter(id__in=entries).count() == 4
    assert Posting.objects.filter(entry_id__in=entries).count() == 8
    transfer = Transfer.objects.get(id=ids["transfer"])
    assert (transfer.from_account_id, transfer.to_account_id, transfer.amount) == (ids["alice"], ids["bob"], 2_500)
    assert Hold.objects.get(id=ids["hold"]).status == "held"
    assert BookingAlert.objects.get(event_id=ids["event"]).suspense_entry_id == ids["suspended"]
    # and the content types, with the finance role's grants, moved with the models
    assert ContentType.objects.filter(app_label="ledger", model__in=MOVED).count() == len(MOVED)
    assert not ContentType.objects.filter(app_label="accounts", model__in=MOVED).exists()
    granted = set(Group.objects.get(name="finance").permissions.values_list("content_type__app_label", "codename"))
    assert {("ledger", f"view_{model}") for model in MOVED if model != "settledpayment"} <= granted
    # and the whole ledger reconciles, this currency with the entries and accounts written before the move
    call_command("rebuild_cache", "balances")
    out = StringIO()
    call_command("reconcile", stdout=out)
    assert f"{ids['currency']}: 4 entries, 5 accounts," in out.getvalue()
    assert out.getvalue().rstrip().endswith("the ledger reconciles")
