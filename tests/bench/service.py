"""The measured path: the payments service layer, as the API calls it. Import only after django.setup()."""

from __future__ import annotations

import uuid

from django.utils import timezone

from fintech.money import Money
from payments.domain import CAPTURED
from payments.services import payment_authorize, payment_capture, payment_initiate
from tests.bench.handsql import ACTOR, BenchError
from vault.services import card_tokenize

AMOUNT = Money(5000, "JPY")
CARD_NUMBER = "4242424242424242"  # the Visa test card: approved by the simulator


def card_token(*, merchant_id: str) -> str:
    """Vault the client's card for its merchant, once and before the timed part: payments take only vault
    tokens of their own merchant."""
    exp_year = timezone.localdate().year + 4
    return card_tokenize(card_number=CARD_NUMBER, exp_month=12, exp_year=exp_year, merchant_id=merchant_id).token


def pay(*, merchant_id: str, token: str) -> uuid.UUID:
    """initiate → authorize → capture, one transaction each (three events); the authorization detokenises the
    card through the vault, as the gateway does in production."""
    payment = payment_initiate(
        merchant_id=merchant_id, amount=AMOUNT, payment_method_token=token, description="bench", actor=ACTOR
    )
    payment_authorize(payment_id=payment.id, actor=ACTOR)
    captured = payment_capture(payment_id=payment.id, actor=ACTOR)
    if captured.version != 3 or captured.status != CAPTURED:
        raise BenchError(f"payment {payment.id} ended {captured.status} at version {captured.version}")
    return payment.id
