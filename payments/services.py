"""Payment commands: load the aggregate from its events, let it decide, append what it decided.

The append writes at the version that was loaded, and the database's compare-and-set on the stream rejects it
(ConcurrencyConflict, nothing written) if the payment moved in between. A command pinned by If-Match then fails
its precondition (412); any other is re-run on the fresh state, up to COMMAND_ATTEMPTS times. Capture and
refund need nothing more: each writes in one single-statement transaction, the fast path.

An authorization cannot be settled that way: it calls the acquirer between its load and its append, and the
call cannot be taken back. So the commands a payment accepts while it is initiated, authorize and cancel, run
in a transaction that first takes the payment's advisory lock (`pg_advisory_xact_lock`) and holds it until the
append commits: N racing authorizations make one acquirer call (the others then find the payment authorized,
or at another version than their If-Match), and a cancel sent during the call waits and then voids the
authorization instead of leaving an orphan one at the acquirer. Capture and refund skip the lock: they apply
only to a payment whose authorization is already recorded. An advisory lock assigns no transaction id, so an
authorization waiting on the acquirer does not hold the projections back (they read below the oldest running
transaction id); nor is it an event, so versions and ETags are what they were. It costs authorize and cancel
three round trips: BEGIN, the lock, COMMIT.

Each authorization asked of the acquirer is on record before it is asked, and settled with the acquirer if its
answer is never recorded (payments.attempts): a crash between the approval and the commit leaves no approval
at the card network unaccounted for.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import Callable

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from fintech import eventstore
from fintech.db import advisory_xact_lock
from fintech.eventstore import ConcurrencyConflict, PreconditionFailed, StreamAppend
from fintech.money import Money
from payments.attempts import Recovered, attempt_begin, attempt_resolve, attempts_recover
from payments.domain import AGGREGATE_TYPE, Payment, PaymentError, PaymentMethod
from payments.gateway import AcquirerGateway, AuthorizationRequest
from payments.models import AuthorizationAttempt as Attempt
from vault.selectors import token_describe


class PaymentNotFound(PaymentError):
    code = "not_found"

    def __init__(self, payment_id) -> None:
        super().__init__(f"no payment {payment_id}")


class UnknownPaymentMethod(PaymentError):
    code = "invalid_payment_method"


_gateway: AcquirerGateway | None = None


def acquirer_gateway() -> AcquirerGateway:
    global _gateway  # noqa: PLW0603 - one gateway instance per process, built from settings once
    if _gateway is None:
        _gateway = import_string(settings.PAYMENTS_ACQUIRER_GATEWAY)()
    return _gateway


def settlement_date_for(captured_at: dt.datetime) -> dt.date:
    """Captures settle on the next business day (Saturdays and Sundays skipped)."""
    day = captured_at.date() + dt.timedelta(days=1)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


def payment_load(*, payment_id: uuid.UUID, merchant_id: str | None = None) -> Payment:
    """Rebuild a payment from its events; another merchant's payment is as absent as an unknown one."""
    recorded = eventstore.load(payment_id)
    if not recorded or recorded[0].aggregate_type != AGGREGATE_TYPE:
        raise PaymentNotFound(payment_id)
    payment = Payment.from_events(payment_id, [r.event for r in recorded])
    if merchant_id is not None and payment.merchant_id != merchant_id:
        raise PaymentNotFound(payment_id)
    return payment


def _save(payment: Payment, *, actor: str, savepoint: bool = True) -> Payment:
    eventstore.append_streams(
        [StreamAppend(payment.id, payment.pending_events, payment.version)],
        metadata={"actor": actor},
        savepoint=savepoint,
    )
    payment.version += len(payment.pending_events)
    payment.pending_events.clear()
    return payment


def _check_expected(payment: Payment, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != payment.version:
        raise PreconditionFailed(f"payment {payment.id} is at version {payment.version}, not {expected_version}")


# How many times a command without If-Match runs before a lost race answers ConcurrencyConflict.
COMMAND_ATTEMPTS = 3


def _payment_lock(payment_id: uuid.UUID) -> None:
    # Held until the transaction ends. Taken before the load, so what is loaded is what the command decides on.
    advisory_xact_lock(f"payment:{payment_id}")


def _change(
    *,
    payment_id: uuid.UUID,
    merchant_id: str | None,
    expected_version: int | None,
    actor: str,
    decide: Callable[[Payment], None],
    lock: bool = False,
) -> Payment:
    # `lock`: for the commands a payment accepts while an authorization may be in flight (see the module's doc).
    attempts_left = COMMAND_ATTEMPTS
    while True:
        try:
            with transaction.atomic() if lock else contextlib.nullcontext():
                if lock:
                    _payment_lock(payment_id)
                payment = payment_load(payment_id=payment_id, merchant_id=merchant_id)
                _check_expected(payment, expected_version)
                decide(payment)
                # Under the lock no savepoint of its own: a conflict leaves the atomic block, whose rollback
                # covers the append.
                return _save(payment, actor=actor, savepoint=not lock)
        except ConcurrencyConflict as conflict:
            if expected_version is not None:
                raise PreconditionFailed(f"payment {payment_id} moved past version {expected_version}") from conflict
            attempts_left -= 1
            if not attempts_left:
                raise


def payment_initiate(
    *, merchant_id: str, amount: Money, payment_method_token: str, description: str = "", actor: str
) -> Payment:
    """Start a payment for a merchant, paid with a vault token. Only the token, brand and last 4 are kept.
    AmountTooLarge above PAYMENTS_MAX_AMOUNT."""
    card = token_describe(token=payment_method_token, merchant_id=merchant_id)
    if card is None:
        raise UnknownPaymentMethod("the payment method token is unknown or expired")
    payment = Payment.initiate(
        payment_id=uuid.uuid4(),
        merchant_id=merchant_id,
        amount=amount,
        payment_method=PaymentMethod(token=card.token, brand=card.brand, last4=card.last4),
        description=description,
        initiated_by=actor,
        now=timezone.now(),
        max_amount=settings.PAYMENTS_MAX_AMOUNT,
    )
    return _save(payment, actor=actor)


def payment_authorize(
    *, payment_id: uuid.UUID, actor: str, merchant_id: str | None = None, expected_version: int | None = None
) -> Payment:
    """Ask the acquirer to authorize the payment's amount: authorized when approved, failed when declined.

    The payment's lock is held during the acquirer call, so one authorization is asked for however many
    requests race. The attempt is on record before the acquirer is called, and its idempotency key is sent:
    a retry after a lost answer sends the same key, so the acquirer replays its answer (see attempts).
    AcquirerUnavailable leaves the payment initiated, to be retried.
    """

    def decide(payment: Payment) -> None:
        payment.check_can_authorize()
        key = attempt_begin(
            payment_id=payment.id, version=payment.version, merchant_id=payment.merchant_id, amount=payment.amount
        )
        result = acquirer_gateway().authorize(
            AuthorizationRequest(
                payment_id=payment.id,
                merchant_id=payment.merchant_id,
                amount=payment.amount,
                token=payment.payment_method.token,
                idempotency_key=key,
            )
        )
        attempt_resolve(idempotency_key=key, outcome=Attempt.APPROVED if result.approved else Attempt.DECLINED)
        now = timezone.now()
        if result.approved:
            payment.authorize(
                authorization_code=result.authorization_code,
                card_network_response=result.network_response,
                now=now,
            )
        else:
            payment.fail(
                reason=result.reason,
                response_code=result.response_code,
                card_network_response=result.network_response,
                now=now,
            )

    return _change(
        payment_id=payment_id,
        merchant_id=merchant_id,
        expected_version=expected_version,
        actor=actor,
        decide=decide,
        lock=True,
    )


def payment_authorizations_recover(*, older_than: dt.timedelta | None = None) -> list[Recovered]:
    """Settle with the acquirer the authorization attempts nobody recorded an answer for (see attempts): those
    open for longer than `older_than` (PAYMENTS_ATTEMPT_RECOVER_AFTER_SECONDS by default)."""
    if older_than is None:
        older_than = dt.timedelta(seconds=settings.PAYMENTS_ATTEMPT_RECOVER_AFTER_SECONDS)
    return attempts_recover(gateway=acquirer_gateway(), older_than=older_than)


def payment_capture(
    *,
    payment_id: uuid.UUID,
    actor: str,
    amount: Money | None = None,
    merchant_id: str | None = None,
    expected_version: int | None = None,
) -> Payment:
    """Capture an authorized payment once, in full (amount None) or in part."""

    def decide(payment: Payment) -> None:
        now = timezone.now()
        payment.capture(amount=amount, settlement_date=settlement_date_for(now), now=now)

    return _change(
        payment_id=payment_id,
        merchant_id=merchant_id,
        expected_version=expected_version,
        actor=actor,
        decide=decide,
    )


def payment_refund(
    *,
    payment_id: uuid.UUID,
    amount: Money,
    actor: str,
    reason: str = "",
    merchant_id: str | None = None,
    expected_version: int | None = None,
) -> Payment:
    """Refund part or all of what is left of the captured amount."""

    def decide(payment: Payment) -> None:
        payment.refund(refund_id=uuid.uuid4(), amount=amount, reason=reason, now=timezone.now())

    return _change(
        payment_id=payment_id,
        merchant_id=merchant_id,
        expected_version=expected_version,
        actor=actor,
        decide=decide,
    )


def payment_cancel(
    *,
    payment_id: uuid.UUID,
    actor: str,
    reason: str = "",
    merchant_id: str | None = None,
    expected_version: int | None = None,
) -> Payment:
    """Cancel a payment that is initiated or authorized (a void, before capture). A cancel sent while the
    payment's authorization waits on the acquirer waits for it, then voids what the acquirer answered."""

    def decide(payment: Payment) -> None:
        payment.cancel(reason=reason, now=timezone.now())

    return _change(
        payment_id=payment_id,
        merchant_id=merchant_id,
        expected_version=expected_version,
        actor=actor,
        decide=decide,
        lock=True,
    )
