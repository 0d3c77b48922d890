"""Payments move money: captures and refunds booked by the process manager, settlement, redelivery."""

import datetime as dt
import re
import uuid
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction

from fintech.money import Money
from ledger import bookings
from ledger.domain import AccountKind
from ledger.journal import company_account_id
from ledger.models import Account, JournalEntry, SettledPayment, SettlementBatch
from ledger.settlement import settlement_run
from payments import services as payments
from projections.engine import projection_run
from projections.models import ProjectionState
from tests.ledger.helpers import settlement_day_of_its_own
from vault.services import card_tokenize

pytestmark = pytest.mark.django_db(transaction=True)

ACTOR = "user:bookings-test"


@pytest.fixture
def merchant():
    return f"m-book-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def token(merchant):
    return card_tokenize(card_number="4242424242424242", exp_month=12, exp_year=2035, merchant_id=merchant).token


def _captured(token, merchant, minor=5000, currency="JPY"):
    payment = payments.payment_initiate(
        merchant_id=merchant, amount=Money(minor, currency), payment_method_token=token, actor=ACTOR
    )
    payments.payment_authorize(payment_id=payment.id, actor=ACTOR)
    return payments.payment_capture(payment_id=payment.id, actor=ACTOR)


def _merchant_account(merchant, currency="JPY") -> Account:
    return Account.objects.get(owner_type="merchant", owner_id=merchant, currency=currency)


def _book() -> None:
    projection_run(name=bookings.LEDGER_BOOKINGS)
    assert ProjectionState.objects.get(name=bookings.LEDGER_BOOKINGS).error == ""


def test_capture_credits_merchant_pending_less_fee_to_revenue(token, merchant, settings):
    settings.LEDGER_CAPTURE_FEE_BPS = 360
    revenue_id = company_account_id(kind=AccountKind.REVENUE, currency="JPY")
    _book()
    revenue_before = Account.objects.get(id=revenue_id).available
    # when a 5,000 yen payment is captured and the bookings run
    payment = _captured(token, merchant)
    _book()
    # then the merchant has 4,820 pending, revenue 180 more (3.6 %), and the entry names the payment
    account = _merchant_account(merchant)
    assert (account.available, account.pending) == (0, 4_820)
    assert Account.objects.get(id=revenue_id).available == revenue_before + 180
    entry = JournalEntry.objects.get(payment_id=payment.id, kind="capture")
    assert entry.event_id is not None
    assert sum(p.amount for p in entry.postings.all()) == 0


def test_redelivered_payment_event_posts_nothing_twice(token, merchant):
    payment = _captured(token, merchant)
    _book()
    entries = JournalEntry.objects.count()
    # when the projection's checkpoint is lost and every payment event is delivered again
    ProjectionState.objects.filter(name=bookings.LEDGER_BOOKINGS).update(
        checkpoint_transaction=0, checkpoint_position=0
    )
    _book()
    # then nothing is booked again
    assert JournalEntry.objects.count() == entries
    assert _merchant_account(merchant).pending == 4_820
    # and a direct second booking of the same event is refused quietly
    entry = JournalEntry.objects.get(payment_id=payment.id, kind="capture")
    again = bookings.payment_capture_book(
        event_id=entry.event_id,
        payment_id=payment.id,
        merchant_id=merchant,
        amount=Money(5000, "JPY"),
        settlement_date=entry.settlement_date,
        fee_bps=360,
    )
    assert again is None


def test_refunds_return_the_fee_proportionally_and_in_full_at_the_end(token, merchant, settings):
    settings.LEDGER_CAPTURE_FEE_BPS = 360
    payment = _captured(token, merchant, minor=999)  # fee 36 (35.964 rounded)
    _book()
    assert _merchant_account(merchant).pending == 963
    # when it is refunded in three parts
    for part in (333, 333, 333):
        payments.payment_refund(payment_id=payment.id, amount=Money(part, "JPY"), actor=ACTOR)
    _book()
    # then the merchant and revenue gave back exactly what they got, nothing more
    assert _merchant_account(merchant).pending == 0
    refunds = JournalEntry.objects.filter(payment_id=payment.id, kind="refund")
    assert refunds.count() == 3
    revenue_back = sum(
        -p.amount for entry in refunds for p in entry.postings.all() if p.account.kind == AccountKind.REVENUE
    )
    assert revenue_back == 36


def test_settlement_moves_due_captures_and_a_rerun_changes_nothing(token, merchant):
    first = _captured(token, merchant)
    second = _captured(token, merchant, minor=1000)
    payments.payment_refund(payment_id=second.id, amount=Money(400, "JPY"), actor=ACTOR)
    _book()
    due = JournalEntry.objects.get(payment_id=first.id, kind="capture").settlement_date
    account = _merchant_account(merchant)
    pending = account.pending
    # when settlement runs for the captures' settlement date
    result = settlement_run(settlement_date=due, actor=ACTOR)
    # then everything pending of this merchant's payments is available, and the batch line says so
    account.refresh_from_db()
    assert (account.available, account.pending) == (pending, 0)
    line = result.batch.lines.get(merchant_id=merchant)
    assert (line.payments, line.amount, line.currency) == (2, pending, "JPY")
    assert SettledPayment.objects.filter(payment_id__in=[first.id, second.id]).count() == 2
    # when it runs again for the same date, nothing changes
    entries = JournalEntry.objects.count()
    again = settlement_run(settlement_date=due, actor=ACTOR)
    assert (again.created, again.batch.id) == (False, result.batch.id)
    assert JournalEntry.objects.count() == entries
    # and a refund after settlement is taken from available
    payments.payment_refund(payment_id=first.id, amount=Money(1000, "JPY"), actor=ACTOR)
    _book()
    account.refresh_from_db()
    assert account.pending == 0
    assert account.available == pending - (1000 - 36)


def test_settlement_leaves_captures_not_yet_due(token, merchant):
    payment = _captured(token, merchant)
    _book()
    due = JournalEntry.objects.get(payment_id=payment.id, kind="capture").settlement_date
    # a day before the capture is due (a date no other test settles: far in the past)
    earlier = due - dt.timedelta(days=3650 + uuid.uuid4().int % 1000)
    if SettlementBatch.objects.filter(settlement_date=earlier).exists():
        pytest.skip("date already settled by an earlier run")
    settlement_run(settlement_date=earlier, actor=ACTOR)
    assert _merchant_account(merchant).pending == 4_820
    assert not SettledPayment.objects.filter(payment_id=payment.id).exists()


def test_run_settlement_command_settles_a_date_then_reports_it_settled(merchant):
    # given a capture booked due on a day of its own, which no run has settled
    due = settlement_day_of_its_own()
    with transaction.atomic():
        bookings.payment_capture_book(
            event_id=uuid.uuid4(),
            payment_id=uuid.uuid4(),
            merchant_id=merchant,
            amount=Money(5000, "JPY"),
            settlement_date=due,
            fee_bps=360,
        )
    # when the command runs for that day, then it settles it and lists the merchant's line
    first = StringIO()
    call_command("run_settlement", "--date", due.isoformat(), stdout=first)
    assert first.getvalue().startswith(f"{due}: settled, batch ")
    assert re.search(rf"^  {merchant} +JPY +1 payments +4820$", first.getvalue(), re.MULTILINE)
    assert _merchant_account(merchant).available == 4_820
    # when it runs again for the same day, then it says so, shows the same batch and changes nothing
    again = StringIO()
    call_command("run_settlement", "--date", due.isoformat(), stdout=again)
    batch = SettlementBatch.objects.get(settlement_date=due)
    assert again.getvalue().startswith(f"{due}: already settled (nothing changed), batch {batch.id}")
    assert first.getvalue().splitlines()[1:] == again.getvalue().splitlines()[1:]
    assert _merchant_account(merchant).available == 4_820
