"""The acquirer gateway: how a payment's authorization reaches the card network.

`AcquirerGateway` is the interface the services call; `SimulatorGateway` is the sandbox, approving by
default and, as card processors' sandboxes do, answering by test amount: 2000-2999 minor units are declined
with that number as the response code, 3000 is a network error (nothing is recorded; retry later).
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from typing import Protocol

from fintech.money import Money
from payments.domain import PaymentError


class AcquirerUnavailable(PaymentError):
    """The acquirer could not be reached or did not answer; the payment is unchanged and may be retried."""

    code = "acquirer_unavailable"


@dataclass(frozen=True, kw_only=True)
class AuthorizationRequest:
    payment_id: uuid.UUID
    merchant_id: str
    amount: Money
    token: str


@dataclass(frozen=True, kw_only=True)
class AuthorizationResult:
    approved: bool
    response_code: str
    reason: str
    authorization_code: str | None = None
    network_response: dict = field(default_factory=dict)


class AcquirerGateway(Protocol):
    def authorize(self, request: AuthorizationRequest) -> AuthorizationResult: ...


APPROVED = "00"
DECLINE_RANGE = range(2000, 3000)
NETWORK_ERROR_AMOUNT = 3000


class SimulatorGateway:
    """A sandbox acquirer: deterministic answers keyed on the amount, no network."""

    def authorize(self, request: AuthorizationRequest) -> AuthorizationResult:
        minor = request.amount.minor
        reference = f"sim_{uuid.uuid4().hex[:16]}"
        if minor == NETWORK_ERROR_AMOUNT:
            raise AcquirerUnavailable("the acquirer did not answer (simulated network error)")
        if minor in DECLINE_RANGE:
            return AuthorizationResult(
                approved=False,
                response_code=str(minor),
                reason="declined",
                network_response={
                    "network": "simulator",
                    "reference": reference,
                    "response_code": str(minor),
                },
            )
        code = secrets.token_hex(3).upper()
        return AuthorizationResult(
            approved=True,
            response_code=APPROVED,
            reason="approved",
            authorization_code=code,
            network_response={"network": "simulator", "reference": reference, "response_code": APPROVED},
        )
