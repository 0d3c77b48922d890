"""The acquirer gateway: how a payment's authorization reaches the card network.

`AcquirerGateway` is the interface the services call; `SimulatorGateway` is the sandbox, approving by
default and, as card processors' sandboxes do, answering by test amount and test card: 2000-2999 minor units
are declined with that number as the response code, 3000 is a network error (nothing is recorded; retry
later); card 4000000000000002 is declined (05), 4000000000009995 has insufficient funds (51); a card that
expired since initiation is declined (54), a token the merchant does not own (14).

The gateway sits inside the cardholder data environment: it is the one in-process caller that detokenises,
as a system actor, and every such call is audited by the vault.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from typing import Protocol

from fintech.money import Money
from payments.domain import PaymentError
from vault.selectors import EXPIRED, USABLE, token_status
from vault.services import SystemActor, card_detokenize


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
# Card processors' sandbox numbers: response code and reason.
TEST_CARDS = {
    "4000000000000002": ("05", "card_declined"),
    "4000000000009995": ("51", "insufficient_funds"),
}
GATEWAY_ACTOR = SystemActor("acquirer-gateway")
DECLINE_RANGE = range(2000, 3000)
NETWORK_ERROR_AMOUNT = 3000


class SimulatorGateway:
    """A sandbox acquirer: deterministic answers keyed on the amount and the test card, no network."""

    def authorize(self, request: AuthorizationRequest) -> AuthorizationResult:
        minor = request.amount.minor
        reference = f"sim_{uuid.uuid4().hex[:16]}"
        if minor == NETWORK_ERROR_AMOUNT:
            raise AcquirerUnavailable("the acquirer did not answer (simulated network error)")
        # The card may have expired, or never have been this merchant's, since the payment was initiated.
        status = token_status(token=request.token, merchant_id=request.merchant_id)
        if status != USABLE:
            code, reason = ("54", "expired_card") if status == EXPIRED else ("14", "invalid_card")
            return self._declined(code, reason, reference)
        number = card_detokenize(
            token=request.token,
            purpose=f"authorization of payment {request.payment_id}",
            actor=GATEWAY_ACTOR,
            channel="gateway",
        )
        code, reason = TEST_CARDS.get(number, (None, None))
        del number  # the number goes no further than this call
        if code is None and minor in DECLINE_RANGE:
            code, reason = str(minor), "declined"
        if code is not None:
            return self._declined(code, reason, reference)
        code = secrets.token_hex(3).upper()
        return AuthorizationResult(
            approved=True,
            response_code=APPROVED,
            reason="approved",
            authorization_code=code,
            network_response={"network": "simulator", "reference": reference, "response_code": APPROVED},
        )

    @staticmethod
    def _declined(code: str, reason: str, reference: str) -> AuthorizationResult:
        return AuthorizationResult(
            approved=False,
            response_code=code,
            reason=reason,
            network_response={"network": "simulator", "reference": reference, "response_code": code},
        )
