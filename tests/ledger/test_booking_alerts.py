"""No single event can stop the ledger: a payment event the bookings cannot book is refused into suspense with
an alert, and every later event is still booked."""

import datetime as dt
import importlib
import logging
import time
import uuid

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.utils import timezone

from fintech import eventstore
from fintech.money import MAX_MINOR, Money
from ledger import bookings
from ledger.models import BookingAlert, JournalEntry
from ledger.reconciliation import ledger_check
from payments import services as payments
from payments.domain import Payment, PaymentMethod
from projections.engine import projection_run
from projections.models import ProjectionState
from tests.staff import staff_login
from vault.services import card_tokenize

pytestmark = pytest.mark.django_db(transaction=True)

ACTOR = "user:alerts-test"
# A currency no other test books in, so that its clearing account starts at zero here.
HUGE_CURRENCY = "MNT"


def _appended_below_the_api(merchant: str, amount: Money) -> Payment:
    """A captured payment of any amount, written through the aggregate without the limit the API and
    payment_initiate apply (as an old event, an import or another writer could have)."""
    now = timezone.now()
    payment = Payment.initiate(
        payment_id=uuid.uuid4(),
        merchant_id=merchant,
        amount=amount,
        payment_method=PaymentMethod(token="tok_alerts", brand="visa", last4="4242"),
        description="",
        initiated_by=ACTOR,
        now=now,
    )
    payment.authorize(authorization_code="A1", card_network_response={}, now=now)
    payment.capture(amount=None, settlement_date=dt.date.today(), now=now)  # noqa: DTZ011 - a date, as the service
    eventstore.append(payment.id, payment.pending_events, 0, metadata={"actor": ACTOR})
    payment.version, payment.pending_events = len(payment.pending_events), []
    return payment


def _book_until(entry_for_payment: uuid.UUID, seconds: float = 60) -> None:
    """Run the bookings until the payment's capture is booked. The projection reads below the oldest open
    transaction of the whole cluster (see fintech.eventstore), which a parallel test run elsewhere can hold."""
    deadline = time.monotonic() + seconds
    while True:
        projection_run(name=bookings.LEDGER_BOOKINGS)
        assert ProjectionState.objects.get(name=bookings.LEDGER_BOOKINGS).error == "", "the bookings stopped"
        if JournalEntry.objects.filter(payment_id=entry_for_payment, kind="capture").exists():
            return
        assert time.monotonic() < deadline, "the bookings did not reach the payment"
        time.sleep(0.1)


def test_two_captures_beyond_what_clearing_can_hold_do_not_stop_the_bookings(caplog):
    merchant = f"m-alert-{uuid.uuid4().hex[:8]}"
    # given two captures of 2^53-1 (the largest amount money holds) written below the API, and a refund of one
    first = _appended_below_the_api(merchant, Money(MAX_MINOR, HUGE_CURRENCY))
    second = _appended_below_the_api(merchant, Money(MAX_MINOR, HUGE_CURRENCY))
    payments.payment_refund(payment_id=second.id, amount=Money(1, HUGE_CURRENCY), actor=ACTOR)
    # and an ordinary payment of another merchant captured after them
    other = f"m-alert-{uuid.uuid4().hex[:8]}"
    other_token = card_tokenize(card_number="4242424242424242", exp_month=12, exp_year=2035, merchant_id=other).token
    ordinary = payments.payment_initiate(
        merchant_id=other, amount=Money(5_000, "JPY"), payment_method_token=other_token, actor=ACTOR
    )
    payments.payment_authorize(payment_id=ordinary.id, actor=ACTOR)
    payments.payment_capture(payment_id=ordinary.id, actor=ACTOR)
    # when the bookings run
    with caplog.at_level(logging.ERROR, logger="ledger.bookings"):
        _book_until(ordinary.id)
    # then the projection did not stop, and the ordinary capture after the impossible one is booked
    assert ProjectionState.objects.get(name=bookings.LEDGER_BOOKINGS).error == ""
    assert JournalEntry.objects.filter(payment_id=ordinary.id, kind="capture").count() == 1
    # the first capture fills the clearing account to the limit; the second cannot be booked, not even to
    # suspense (clearing is the other side): an alert without an entry, and an ERROR line
    assert JournalEntry.objects.filter(payment_id=first.id, kind="capture").count() == 1
    captured = BookingAlert.objects.get(payment_id=second.id, event_type="PaymentCaptured")
    assert (captured.amount, captured.currency, captured.suspense_entry_id) == (MAX_MINOR, HUGE_CURRENCY, None)
    assert "BalanceOutOfRange" in captured.reason
    assert not JournalEntry.objects.filter(payment_id=second.id, kind="capture").exists()
    # its refund (of a capture never booked) went to suspense: clearing gets it back, suspense owes it
    refunded = BookingAlert.objects.get(payment_id=second.id, event_type="PaymentRefunded")
    entry = JournalEntry.objects.get(id=refunded.suspense_entry_id)
    assert (entry.kind, entry.event_id) == ("suspense", refunded.event_id)
    assert sorted(p.amount for p in entry.postings.all()) == [-1, 1]
    assert any(record.levelno == logging.ERROR and str(second.id) in record.getMessage() for record in caplog.records)
    # and the ledger still holds together
    report = ledger_check()
    assert report.ok, report
    # when every event is delivered again, nothing is booked or refused twice
    entries, alerts = JournalEntry.objects.count(), BookingAlert.objects.count()
    ProjectionState.objects.filter(name=bookings.LEDGER_BOOKINGS).update(
        checkpoint_transaction=0, checkpoint_position=0
    )
    _book_until(ordinary.id)
    assert (JournalEntry.objects.count(), BookingAlert.objects.count()) == (entries, alerts)


def test_finance_sees_booking_alerts_read_only_in_the_admin():
    # given a refund of a capture the bookings never booked: refused into suspense with an alert
    payment = _appended_below_the_api(f"m-alert-{uuid.uuid4().hex[:8]}", Money(700, "JPY"))
    bookings.payment_booking_refuse(
        event_id=uuid.uuid4(),
        event_type="PaymentRefunded",
        payment_id=payment.id,
        amount=Money(100, "JPY"),
        inflow=False,
        reason="LedgerError: the capture was never booked",
    )
    alert = BookingAlert.objects.get(payment_id=payment.id)
    assert alert.suspense_entry_id is not None
    # when a member of the finance role (as its migrations make it) opens the admin
    finance_role = importlib.import_module("accounts.migrations.0005_finance_role")
    alerts_role = importlib.import_module("accounts.migrations.0008_booking_alert")
    ledger_moved_out = importlib.import_module("accounts.migrations.0009_ledger_moved_out")
    finance_role.finance_role_grant(apps, None)
    alerts_role.finance_views_alerts(apps, None)
    ledger_moved_out.content_types_to_ledger(apps, None)
    user = get_user_model().objects.create_user(f"fin-{uuid.uuid4().hex[:6]}", password="x-test-only", is_staff=True)
    user.groups.add(Group.objects.get(name="finance"))
    client = Client()
    staff_login(client, user)
    # then the alert is listed and shown, and nobody can add, change or delete one
    listing = client.get("/admin/ledger/bookingalert/", {"q": str(payment.id)})
    assert listing.status_code == 200
    assert f"/admin/ledger/bookingalert/{alert.pk}/change/" in listing.content.decode()
    detail = client.get(f"/admin/ledger/bookingalert/{alert.pk}/change/")
    assert detail.status_code == 200
    assert "the capture was never booked" in detail.content.decode()
    assert client.get("/admin/ledger/bookingalert/add/").status_code == 403
    assert client.post(f"/admin/ledger/bookingalert/{alert.pk}/delete/", {"post": "yes"}).status_code == 403
    # and the database itself keeps the record
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM accounts_bookingalert WHERE id = %s", [alert.pk])
