import uuid

import pytest
from django.db import DatabaseError, connection, transaction

from fintech import eventstore
from fintech.money import Money
from ledger import services
from ledger.domain import AccountKind, CurrencyMismatch, InsufficientFunds, InvalidLedgerRequest
from ledger.journal import company_account_id
from ledger.models import Account, JournalEntry, Posting
from tests.ledger.conftest import ACTOR

pytestmark = pytest.mark.django_db(transaction=True)


def _balance(account) -> tuple[int, int]:
    row = Account.objects.get(id=account.id)
    return row.available, row.pending


def _postings_sum(account) -> tuple[int, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(amount) FILTER (WHERE bucket = 'available'), 0), "
            "coalesce(sum(amount) FILTER (WHERE bucket = 'pending'), 0) FROM accounts_posting WHERE account_id = %s",
            [account.id],
        )
        return tuple(cursor.fetchone())


def _trust(currency="JPY"):
    return Account.objects.get(id=company_account_id(kind=AccountKind.SEGREGATED_TRUST, currency=currency))


def test_deposit_to_customer_books_against_the_segregated_trust_account(customer_account):
    account = customer_account()
    trust_before = _trust().available
    # when 10,000 yen arrive for the customer
    entry = services.account_deposit(account_id=account.id, amount=Money(10_000, "JPY"), reference="bank", actor=ACTOR)
    # then the customer holds them, the trust account mirrors them, and the entry balances
    assert _balance(account) == (10_000, 0) == _postings_sum(account)
    assert _trust().available == trust_before - 10_000
    postings = Posting.objects.filter(entry_id=entry.id)
    assert sum(p.amount for p in postings) == 0
    assert JournalEntry.objects.get(id=entry.id).reference == "bank"
    # and the account's stream holds AccountOpened then BalanceChanged with the new balances
    events = eventstore.load(account.id)
    assert [e.event_type for e in events] == ["AccountOpened", "BalanceChanged"]
    assert events[-1].event.available == Money(10_000, "JPY")
    assert Account.objects.get(id=account.id).version == 2


def test_transfer_moves_available_and_keeps_customer_funds_equal_to_trust(customer_account, merchant_account):
    alice, bob = customer_account(funded=5_000), customer_account()
    merchant = merchant_account()
    trust_before = _trust().available
    # when a customer pays another customer, the trust account does not move
    transfer = services.transfer_create(
        from_account=alice.id, to_account=bob.id, amount=Money(2_000, "JPY"), actor=ACTOR
    )
    assert transfer.status == "completed"
    assert (_balance(alice), _balance(bob)) == ((3_000, 0), (2_000, 0))
    assert _trust().available == trust_before
    # when a customer pays a merchant, the money leaves customer funds and the trust account follows
    services.transfer_create(from_account=bob.id, to_account=merchant.id, amount=Money(500, "JPY"), actor=ACTOR)
    assert _trust().available == trust_before + 500
    for account in (alice, bob, merchant):
        assert _balance(account) == _postings_sum(account)


def test_transfer_below_the_floor_fails_and_writes_nothing(customer_account):
    alice, bob = customer_account(funded=1_000), customer_account()
    entries = JournalEntry.objects.count()
    with pytest.raises(InsufficientFunds):
        services.transfer_create(from_account=alice.id, to_account=bob.id, amount=Money(1_001, "JPY"), actor=ACTOR)
    assert (_balance(alice), _balance(bob)) == ((1_000, 0), (0, 0))
    assert JournalEntry.objects.count() == entries
    assert [e.event_type for e in eventstore.load(bob.id)] == ["AccountOpened"]


def test_configured_floor_allows_going_below_zero_down_to_it(customer_account):
    alice, bob = customer_account(floor=-500), customer_account()
    services.transfer_create(from_account=alice.id, to_account=bob.id, amount=Money(500, "JPY"), actor=ACTOR)
    assert _balance(alice) == (-500, 0)
    with pytest.raises(InsufficientFunds):
        services.transfer_create(from_account=alice.id, to_account=bob.id, amount=Money(1, "JPY"), actor=ACTOR)


def test_transfer_refuses_other_currencies_same_account_and_non_positive(customer_account):
    yen, dollars = customer_account(funded=100), customer_account("USD")
    with pytest.raises(CurrencyMismatch):
        services.transfer_create(from_account=yen.id, to_account=dollars.id, amount=Money(1, "JPY"), actor=ACTOR)
    with pytest.raises(InvalidLedgerRequest):
        services.transfer_create(from_account=yen.id, to_account=yen.id, amount=Money(1, "JPY"), actor=ACTOR)
    other = customer_account()
    with pytest.raises(InvalidLedgerRequest):
        services.transfer_create(from_account=yen.id, to_account=other.id, amount=Money(0, "JPY"), actor=ACTOR)


def test_hold_place_release_and_settle(customer_account, merchant_account):
    alice, merchant = customer_account(funded=3_000), merchant_account()
    hold = services.hold_place(account_id=alice.id, amount=Money(1_000, "JPY"), reference="auth", actor=ACTOR)
    assert _balance(alice) == (2_000, 1_000)
    with pytest.raises(InsufficientFunds):
        services.hold_place(account_id=alice.id, amount=Money(2_001, "JPY"), actor=ACTOR)
    services.hold_release(hold_id=hold.id, actor=ACTOR)
    assert _balance(alice) == (3_000, 0)
    trust_before = _trust().available
    second = services.hold_place(account_id=alice.id, amount=Money(1_200, "JPY"), actor=ACTOR)
    services.hold_settle(hold_id=second.id, to_account=merchant.id, actor=ACTOR)
    assert _balance(alice) == (1_800, 0) == _postings_sum(alice)
    assert _balance(merchant) == (1_200, 0)
    assert _trust().available == trust_before + 1_200
    assert [e.event_type for e in eventstore.load(second.id)] == ["FundsHeld", "HoldSettled"]


def test_database_rejects_an_unbalanced_entry_whoever_writes_it(customer_account):
    account = customer_account()
    entry_id = uuid.uuid4()

    def write_unbalanced():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO accounts_journalentry (id, kind, reference, actor, created_at) "
                "VALUES (%s, 'manual', '', '', now())",
                [entry_id],
            )
            cursor.execute(
                "INSERT INTO accounts_posting (entry_id, account_id, currency, bucket, amount, created_at) VALUES "
                "(%s, %s, 'JPY', 'available', 100, now()), (%s, %s, 'JPY', 'available', -99, now())",
                [entry_id, account.id, entry_id, account.id],
            )

    with pytest.raises(DatabaseError, match="does not balance"):
        write_unbalanced()
    assert not JournalEntry.objects.filter(id=entry_id).exists()


def test_database_rejects_changing_postings_and_crossing_a_floor(customer_account):
    account = customer_account(funded=100)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE accounts_posting SET amount = amount + 1 WHERE account_id = %s", [account.id])
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM accounts_journalentry WHERE id IN "
            "(SELECT entry_id FROM accounts_posting WHERE account_id = %s)",
            [account.id],
        )
    with pytest.raises(DatabaseError, match="above_floor"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE accounts_account SET available = -1 WHERE id = %s", [account.id])
    with pytest.raises(DatabaseError, match="account_currency"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO accounts_posting (entry_id, account_id, currency, bucket, amount, created_at) "
            "SELECT entry_id, account_id, 'USD', bucket, amount, now() FROM accounts_posting WHERE account_id = %s",
            [account.id],
        )


def test_transfer_with_a_chosen_id_happens_once(customer_account):
    alice, bob = customer_account(funded=1_000), customer_account()
    transfer_id = uuid.uuid4()
    first = services.transfer_create(
        from_account=alice.id, to_account=bob.id, amount=Money(100, "JPY"), actor=ACTOR, transfer_id=transfer_id
    )
    again = services.transfer_create(
        from_account=alice.id, to_account=bob.id, amount=Money(100, "JPY"), actor=ACTOR, transfer_id=transfer_id
    )
    assert first.id == again.id == transfer_id
    assert _balance(alice) == (900, 0)
    with pytest.raises(InvalidLedgerRequest, match="exists with other"):
        services.transfer_create(
            from_account=alice.id, to_account=bob.id, amount=Money(101, "JPY"), actor=ACTOR, transfer_id=transfer_id
        )
