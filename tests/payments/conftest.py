"""Fixtures of the payments tests: vaulted cards and payments built through the services, and a helper running
code in threads."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from payments import services
from payments.domain import AUTHORIZED, CANCELLED, CAPTURED, FAILED, INITIATED, PARTIALLY_REFUNDED, REFUNDED
from tests.payments.helpers import ACTOR, MERCHANT, VISA, card_token, jpy


@pytest.fixture
def visa_token(db) -> str:
    """The vault token of the Visa test card for MERCHANT, the merchant of `merchant_client`."""
    return card_token(MERCHANT)


@pytest.fixture
def make_payment(db) -> Callable[..., object]:
    """Build a payment in the given status through the services (1000 JPY unless told; failed ones 2500), paid
    with a test card (Visa unless told) vaulted for its merchant."""

    def make(status: str = INITIATED, *, amount: int | None = None, merchant_id: str = MERCHANT, card: str = VISA):
        # The simulator declines 2000-2999 minor units and approves ordinary amounts.
        amount = amount if amount is not None else (2500 if status == FAILED else 1000)
        payment = services.payment_initiate(
            merchant_id=merchant_id,
            amount=jpy(amount),
            payment_method_token=card_token(merchant_id, card),
            description="order 42",
            actor=ACTOR,
        )
        if status == INITIATED:
            return payment
        if status == CANCELLED:
            return services.payment_cancel(payment_id=payment.id, reason="customer asked", actor=ACTOR)
        payment = services.payment_authorize(payment_id=payment.id, actor=ACTOR)
        if status in (AUTHORIZED, FAILED):
            return payment
        payment = services.payment_capture(payment_id=payment.id, actor=ACTOR)
        if status == CAPTURED:
            return payment
        if status == PARTIALLY_REFUNDED:
            return services.payment_refund(payment_id=payment.id, amount=jpy(amount // 4), actor=ACTOR)
        if status == REFUNDED:
            return services.payment_refund(payment_id=payment.id, amount=jpy(amount), actor=ACTOR)
        raise ValueError(status)

    return make
