"""Payments move money: a process manager turns captured and refunded payments into ledger entries. It runs
on the projection engine (its checkpoint moves with the entries, in one transaction), and each entry carries
the payment event's id under a unique constraint, so a redelivered event posts nothing twice.

A handler that raised would stop the projection at its event, and with it every merchant's bookings, for good
when the cause is in the event itself (an amount no balance can hold, a merchant id no account can have, a
refund of a capture never booked). Such an event is refused instead: its amount goes to suspense, a
BookingAlert row and an ERROR log line tell the operators, and the bookings go on."""

from __future__ import annotations

import logging
import uuid

from django.conf import settings
from django.db import DataError, IntegrityError, transaction
from django.utils import timezone

from fintech.db import raw_cursor
from fintech.eventstore import RecordedEvent
from fintech.money import Money, MoneyError
from ledger import journal, lock_objects
from ledger.domain import (
    AVAILABLE,
    MERCHANT,
    PENDING,
    AccountKind,
    AccountState,
    LedgerError,
    PaymentBookingSuspended,
    PaymentCaptureBooked,
    PaymentRefundBooked,
    Posting,
    fee_of,
    refund_fee_share,
    suspense_postings,
)
from projections.engine import Projection, projection_register

LEDGER_BOOKINGS = "ledger_bookings"
ACTOR = "system:ledger-bookings"

logger = logging.getLogger(__name__)

# What an event's own data can make impossible, however often it is retried: the ledger's rules, money's range,
# the database's ranges and constraints. A lost connection or a deadlock (OperationalError) is not among them:
# the projection stops there and a later run retries.
IMPOSSIBLE_BOOKING = (LedgerError, MoneyError, DataError, IntegrityError)


def _booked(event_id: uuid.UUID) -> bool:
    """Booked already, or refused already (an operator resolves it; a redelivery must not book it after all)."""
    with raw_cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM accounts_journalentry WHERE event_id = %s "
            "UNION ALL SELECT 1 FROM accounts_bookingalert WHERE event_id = %s",
            [event_id, event_id],
        )
        return cursor.fetchone() is not None


def payment_capture_book(
    *, event_id: uuid.UUID, payment_id: uuid.UUID, merchant_id: str, amount: Money, settlement_date, fee_bps: int
) -> uuid.UUID | None:
    """Credit the merchant's pending balance with a capture, less the fee to revenue, against clearing. None
    when the event was booked already."""
    if _booked(event_id):
        return None
    merchant = journal.owned_account_id(
        owner_type=MERCHANT,
        owner_id=merchant_id,
        kind=AccountKind.MERCHANT_PAYABLE,
        currency=amount.currency,
        floor=0,
        actor=ACTOR,
    )
    clearing = journal.company_account_id(kind=AccountKind.CLEARING, currency=amount.currency)
    revenue = journal.company_account_id(kind=AccountKind.REVENUE, currency=amount.currency)
    fee = fee_of(amount.minor, fee_bps)
    postings = [
        Posting(clearing, AVAILABLE, -amount.minor),
        Posting(merchant, PENDING, amount.minor - fee),
        Posting(revenue, AVAILABLE, fee),
    ]
    entry_id = uuid.uuid4()
    accounts = lock_objects.accounts_lock([clearing, merchant, revenue])
    event = PaymentCaptureBooked(
        occurred_at=timezone.now(),
        entry_id=entry_id,
        payment_id=payment_id,
        merchant_account=merchant,
        amount=amount,
        fee=Money(fee, amount.currency),
    )
    journal.entry_post(
        accounts=accounts,
        postings=[p for p in postings if p.amount],
        kind="capture",
        entry_event=event,
        entry_stream=entry_id,
        entry_id=entry_id,
        reference=f"payment {payment_id}",
        actor=ACTOR,
        event_id=event_id,
        payment_id=payment_id,
        settlement_date=settlement_date,
    )
    return entry_id


def _capture_of(payment_id: uuid.UUID) -> tuple[uuid.UUID, int, int, int]:
    """(merchant account, gross, fee) of a payment's capture entry, and what its refunds took back so far."""
    with raw_cursor() as cursor:
        cursor.execute(
            "SELECT e.kind, a.kind, p.account_id, p.amount FROM accounts_journalentry e "
            "JOIN accounts_posting p ON p.entry_id = e.id JOIN accounts_account a ON a.id = p.account_id "
            "WHERE e.payment_id = %s AND e.kind IN ('capture', 'refund')",
            [payment_id],
        )
        rows = cursor.fetchall()
    merchants = [
        account for entry, kind, account, _ in rows if entry == "capture" and kind == AccountKind.MERCHANT_PAYABLE
    ]
    if not merchants:
        raise LedgerError(f"payment {payment_id} is refunded but its capture was never booked")

    def total(entry_kind: str, account_kind: AccountKind) -> int:
        return sum(amount for entry, kind, _, amount in rows if entry == entry_kind and kind == account_kind)

    gross, fee = -total("capture", AccountKind.CLEARING), total("capture", AccountKind.REVENUE)
    return merchants[0], gross, fee, total("refund", AccountKind.CLEARING)


def _settled(payment_id: uuid.UUID) -> bool:
    with raw_cursor() as cursor:
        cursor.execute("SELECT 1 FROM accounts_settledpayment WHERE payment_id = %s", [payment_id])
        return cursor.fetchone() is not None


def _debit_within_floor(account: AccountState, bucket: str, amount: int) -> int:
    """How much of `amount` the account's bucket can give without crossing its floor (pending: zero)."""
    if bucket == PENDING:
        room = account.pending
    elif account.floor is None:
        return amount
    else:
        room = account.available - account.floor
    return max(0, min(amount, room))


def payment_refund_book(*, event_id: uuid.UUID, payment_id: uuid.UUID, amount: Money) -> uuid.UUID | None:
    """Take a refund back from the merchant (pending until its capture is settled, available after) with its
    proportional share of the fee from revenue, to clearing. What a balance cannot give without crossing its
    floor is booked to suspense for the operators, since the card network has paid the refund already. None
    when the event was booked already."""
    if _booked(event_id):
        return None
    merchant, gross, fee, refunded_before = _capture_of(payment_id)
    clearing = journal.company_account_id(kind=AccountKind.CLEARING, currency=amount.currency)
    revenue = journal.company_account_id(kind=AccountKind.REVENUE, currency=amount.currency)
    suspense = journal.company_account_id(kind=AccountKind.SUSPENSE, currency=amount.currency)
    fee_back = refund_fee_share(fee=fee, captured=gross, refunded_before=refunded_before, refund=amount.minor)
    accounts = lock_objects.accounts_lock([merchant, clearing, revenue, suspense])
    bucket = AVAILABLE if _settled(payment_id) else PENDING
    from_merchant = _debit_within_floor(accounts[merchant], bucket, amount.minor - fee_back)
    from_revenue = _debit_within_floor(accounts[revenue], AVAILABLE, fee_back)
    shortfall = amount.minor - from_merchant - from_revenue
    postings = [
        Posting(clearing, AVAILABLE, amount.minor),
        Posting(merchant, bucket, -from_merchant),
        Posting(revenue, AVAILABLE, -from_revenue),
        Posting(suspense, AVAILABLE, -shortfall),
    ]
    entry_id = uuid.uuid4()
    event = PaymentRefundBooked(
        occurred_at=timezone.now(),
        entry_id=entry_id,
        payment_id=payment_id,
        merchant_account=merchant,
        amount=amount,
        fee_returned=Money(from_revenue, amount.currency),
        shortfall=Money(shortfall, amount.currency),
    )
    journal.entry_post(
        accounts=accounts,
        postings=[p for p in postings if p.amount],
        kind="refund",
        entry_event=event,
        entry_stream=entry_id,
        entry_id=entry_id,
        reference=f"payment {payment_id}",
        actor=ACTOR,
        event_id=event_id,
        payment_id=payment_id,
    )
    return entry_id


def payment_booking_refuse(
    *, event_id: uuid.UUID, event_type: str, payment_id: uuid.UUID, amount: Money, inflow: bool, reason: str
) -> uuid.UUID | None:
    """Refuse a payment event that cannot be booked: move its amount between clearing and suspense (into suspense
    for a capture, `inflow`; out of it for a refund) and record a BookingAlert, in the caller's transaction.
    When even the suspense entry is impossible (clearing itself out of range), the alert alone records it.
    Returns the suspense entry's id, or None."""
    entry_id: uuid.UUID | None = uuid.uuid4()
    try:
        with transaction.atomic():
            _suspense_book(entry_id, event_id, payment_id, amount, inflow, reason)
    except IMPOSSIBLE_BOOKING as error:
        reason = f"{reason}; not booked to suspense either: {error}"
        entry_id = None
    with raw_cursor() as cursor:
        cursor.execute(
            "INSERT INTO accounts_bookingalert (event_id, event_type, payment_id, amount, currency, reason, "
            "suspense_entry_id, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING",
            [event_id, event_type, payment_id, amount.minor, amount.currency, reason[:4000], entry_id, timezone.now()],
        )
    logger.error(
        "ledger bookings refused %s %s of payment %s (%s), %s: %s",
        event_type,
        event_id,
        payment_id,
        amount,
        "booked to suspense" if entry_id else "NOT booked, not even to suspense",
        reason,
    )
    return entry_id


def _suspense_book(
    entry_id: uuid.UUID, event_id: uuid.UUID, payment_id: uuid.UUID, amount: Money, inflow: bool, reason: str
) -> None:
    clearing = journal.company_account_id(kind=AccountKind.CLEARING, currency=amount.currency)
    suspense = journal.company_account_id(kind=AccountKind.SUSPENSE, currency=amount.currency)
    event = PaymentBookingSuspended(
        occurred_at=timezone.now(),
        entry_id=entry_id,
        payment_id=payment_id,
        event_id=event_id,
        amount=amount,
        reason=reason[:500],
    )
    journal.entry_post(
        accounts=lock_objects.accounts_lock([clearing, suspense]),
        postings=suspense_postings(amount=amount.minor, inflow=inflow, clearing_id=clearing, suspense_id=suspense),
        kind="suspense",
        entry_event=event,
        entry_stream=entry_id,
        entry_id=entry_id,
        reference=f"payment {payment_id}",
        actor=ACTOR,
        event_id=event_id,
        payment_id=payment_id,
    )


def _book_or_refuse(recorded: RecordedEvent, amount: Money, *, inflow: bool, book) -> None:
    """Run one booking in a savepoint: an impossible one is rolled back alone and refused into suspense, so the
    projection's transaction (and every event after this one) goes on."""
    if _booked(recorded.event_id):
        return
    try:
        with transaction.atomic():
            book()
    except IMPOSSIBLE_BOOKING as error:
        payment_booking_refuse(
            event_id=recorded.event_id,
            event_type=recorded.event_type,
            payment_id=recorded.stream_id,
            amount=amount,
            inflow=inflow,
            reason=f"{type(error).__name__}: {error}",
        )


def _on_captured(cursor, tables, recorded: RecordedEvent):
    from payments.services import payment_load

    merchant_id = payment_load(payment_id=recorded.stream_id).merchant_id
    _book_or_refuse(
        recorded,
        recorded.event.captured_amount,
        inflow=True,
        book=lambda: payment_capture_book(
            event_id=recorded.event_id,
            payment_id=recorded.stream_id,
            merchant_id=merchant_id,
            amount=recorded.event.captured_amount,
            settlement_date=recorded.event.settlement_date,
            fee_bps=settings.LEDGER_CAPTURE_FEE_BPS,
        ),
    )


def _on_refunded(cursor, tables, recorded: RecordedEvent):
    _book_or_refuse(
        recorded,
        recorded.event.refunded_amount,
        inflow=False,
        book=lambda: payment_refund_book(
            event_id=recorded.event_id, payment_id=recorded.stream_id, amount=recorded.event.refunded_amount
        ),
    )


projection_register(
    Projection(
        name=LEDGER_BOOKINGS,
        tables=(),
        handlers={"PaymentCaptured": _on_captured, "PaymentRefunded": _on_refunded},
        replayable=False,
    )
)
