"""Many threads transferring at random among a few accounts, on real PostgreSQL connections."""

import random
import threading
import time

import pytest
from django.db import connection

from fintech.money import Money
from ledger import services
from ledger.domain import InsufficientFunds
from ledger.models import Account
from tests.ledger.conftest import ACTOR

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 8
SECONDS = 3.0


def test_random_concurrent_transfers_keep_every_balance_and_total_right(customer_account, merchant_account):
    # given four funded customer accounts and a merchant account (transfers to and from it cross the boundary of
    # customer funds, so they also lock the segregated trust and clearing accounts)
    customers = [customer_account(funded=10_000) for _ in range(4)]
    merchant = merchant_account()
    ids = [account.id for account in (*customers, merchant)]
    total_before = sum(a.available + a.pending for a in Account.objects.filter(id__in=ids))
    completed, refused, failures = [0] * THREADS, [0] * THREADS, []
    deadline = time.monotonic() + SECONDS
    barrier = threading.Barrier(THREADS)

    def worker(index: int) -> None:
        rng = random.Random(index)
        try:
            barrier.wait(timeout=10)
            while time.monotonic() < deadline:
                source, destination = rng.sample(ids, 2)
                try:
                    services.transfer_create(
                        from_account=source,
                        to_account=destination,
                        amount=Money(rng.randint(1, 4_000), "JPY"),
                        actor=ACTOR,
                    )
                    completed[index] += 1
                except InsufficientFunds:
                    refused[index] += 1
        except Exception as error:  # noqa: BLE001 - every other error (a deadlock above all) fails the test
            failures.append(error)
        finally:
            connection.close()

    # when eight threads transfer at random among them for a few seconds, in both directions
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # then no caller saw an error other than insufficient funds (no deadlock), and some of each happened
    assert failures == []
    assert sum(completed) > 50, f"only {sum(completed)} transfers completed"
    assert sum(refused) > 0, "no transfer ever hit the floor: the test did not press hard enough"
    # and every balance equals its postings, none is below its floor, and the total is unchanged
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.id, a.available, a.pending, a.floor, "
            "coalesce(sum(p.amount) FILTER (WHERE p.bucket = 'available'), 0), "
            "coalesce(sum(p.amount) FILTER (WHERE p.bucket = 'pending'), 0) "
            "FROM accounts_account a LEFT JOIN accounts_posting p ON p.account_id = a.id "
            "WHERE a.id = ANY(%s) GROUP BY a.id",
            [ids],
        )
        rows = cursor.fetchall()
    for account_id, available, pending, floor, posted_available, posted_pending in rows:
        assert (available, pending) == (posted_available, posted_pending), account_id
        assert available >= floor
    assert sum(row[1] + row[2] for row in rows) == total_before
    # and the account streams hold one BalanceChanged per version, no gaps
    for account in Account.objects.filter(id__in=ids):
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM fintech_event WHERE aggregate_id = %s", [account.id])
            assert cursor.fetchone()[0] == account.version
