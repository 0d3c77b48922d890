import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django_redis import get_redis_connection

from fintech.money import Money
from ledger import services
from projections.balances import BALANCES
from projections.engine import projection_run
from tests.ledger.conftest import ACTOR

pytestmark = pytest.mark.django_db(transaction=True)


def _reconcile() -> str:
    from io import StringIO

    out = StringIO()
    try:
        call_command("reconcile", stdout=out)
    except CommandError:
        print(out.getvalue())  # noqa: T201 - shown by pytest when the test fails
        raise
    return out.getvalue()


def test_reconcile_passes_on_a_consistent_ledger(customer_account, merchant_account):
    alice, merchant = customer_account(funded=5_000), merchant_account()
    services.transfer_create(from_account=alice.id, to_account=merchant.id, amount=Money(1_000, "JPY"), actor=ACTOR)
    call_command("rebuild_cache", "balances")
    output = _reconcile()
    assert "the ledger reconciles" in output
    assert "JPY:" in output


def test_reconcile_reports_a_balance_that_differs_from_its_postings(customer_account):
    account = customer_account(funded=700)
    call_command("rebuild_cache", "balances")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE accounts_account SET available = available + 1 WHERE id = %s", [account.id])
    try:
        with pytest.raises(CommandError, match="does not reconcile"):
            _reconcile()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("UPDATE accounts_account SET available = available - 1 WHERE id = %s", [account.id])
    assert "the ledger reconciles" in _reconcile()


def test_reconcile_reports_a_redis_balance_that_differs(customer_account):
    account = customer_account(funded=300)
    projection_run(name=BALANCES)
    redis = get_redis_connection("default")
    redis.hincrby(f"balance:{account.id}", "available", 1)
    with pytest.raises(CommandError):
        _reconcile()
    # and rebuild_cache puts it right (same version: the refresh is allowed to rewrite it)
    call_command("rebuild_cache", "balances")
    assert "the ledger reconciles" in _reconcile()


def test_replayed_balance_read_model_still_reconciles(customer_account):
    alice, bob = customer_account(funded=900), customer_account()
    services.transfer_create(from_account=alice.id, to_account=bob.id, amount=Money(400, "JPY"), actor=ACTOR)
    # when the balance read model is rebuilt from the first event and swapped in
    call_command("replay_projection", BALANCES)
    call_command("rebuild_cache", BALANCES)
    # then it agrees with the ledger again, account by account
    assert "the ledger reconciles" in _reconcile()
