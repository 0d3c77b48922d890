"""The measured path: the payments service layer, as the API calls it. Import only after django.setup()."""

from __future__ import annotations

import uuid

from fintech.money import Money
from payments.domain import CAPTURED
from payments.services import payment_authorize, payment_capture, payment_initiate
from tests.bench.handsql import ACTOR, BenchError

AMOUNT = Money(5000, "JPY")


def pay(*, merchant_id: str) -> uuid.UUID:
    """initiate → authorize → capture, one transaction each (three events)."""
    payment = payment_initiate(
        merchant_id=merchant_id, amount=AMOUNT, payment_method_token="tok_visa", description="bench", actor=ACTOR
    )
    payment_authorize(payment_id=payment.id, actor=ACTOR)
    captured = payment_capture(payment_id=payment.id, actor=ACTOR)
    if captured.version != 3 or captured.status != CAPTURED:
        raise BenchError(f"payment {payment.id} ended {captured.status} at version {captured.version}")
    return payment.id
