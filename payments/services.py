"""Payment commands: load the aggregate from its events, let it decide, append what it decided.

The load needs no transaction around it: the append writes at the version that was loaded, and the database's
compare-and-set on the stream rejects it (ConcurrencyConflict, nothing written) if the payment moved in
between. Each command's write is therefore one single-statement transaction, and no transaction stays open
while an authorization waits on the acquirer (an open transaction would hold the projections back).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string

from fintech import eventstore
from fintech.eventstore import PreconditionFailed
from fintech.money import Money
from payments.domain import AGGREGATE_TYPE, Payment, PaymentError, PaymentMethod
from payments.gateway import AcquirerGateway, AuthorizationRequest
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


def _save(payment: Payment, *, actor: str) -> Payment:
    eventstore.append(payment.id, payment.pending_events, payment.version, metadata={"actor": actor})
    payment.version += len(payment.pending_events)
    payment.pending_events.clear()
    return payment


def _check_expected(payment: Payment, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != payment.version:
        raise PreconditionFailed(f"payment {payment.id} is at version {payment.version}, not {expected_version}")


def _change(
    *,
    payment_id: uuid.UUID,
    merchant_id: str | None,
    expected_version: int | None,
    actor: str,
    decide: Callable[[Payment], None],
) -> Payment:
    payment = payment_load(payment_id=payment_id, merchant_id=merchant_id)
    _check_expected(payment, expected_version)
    decide(payment)
    return _save(payment, actor=actor)


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

    AcquirerUnavailable leaves the payment initiated, to be retried.
    """
    payment = payment_load(payment_id=payment_id, merchant_id=merchant_id)
    _check_expected(payment, expected_version)
    payment.check_can_authorize()
    result = acquirer_gateway().authorize(
        AuthorizationRequest(
            payment_id=payment.id,
            merchant_id=payment.merchant_id,
            amount=payment.amount,
            token=payment.payment_method.token,
        )
    )
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
    # The compare-and-set at the version read above rejects a payment that moved during the call.
    return _save(payment, actor=actor)


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
    """Cancel a payment that is initiated or authorized (a void, before capture)."""

    def decide(payment: Payment) -> None:
        payment.cancel(reason=reason, now=timezone.now())

    return _change(
        payment_id=payment_id,
        merchant_id=merchant_id,
        expected_version=expected_version,
        actor=actor,
        decide=decide,
    )
