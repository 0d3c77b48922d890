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

import collections
import secrets
import threading
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
    # Names the attempt: the acquirer answers a request it has seen before with the answer it gave, and
    # authorizes nothing a second time (a retry after a lost answer, a crash).
    idempotency_key: str


@dataclass(frozen=True, kw_only=True)
class AuthorizationResult:
    approved: bool
    response_code: str
    reason: str
    authorization_code: str | None = None
    network_response: dict = field(default_factory=dict)


class AcquirerGateway(Protocol):
    """Authorizes once per `request.idempotency_key`: a key seen before gets the answer it got then."""

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


@dataclass
class _Attempt:
    lock: threading.Lock = field(default_factory=threading.Lock)
    result: AuthorizationResult | None = None


class SimulatorGateway:
    """A sandbox acquirer: deterministic answers keyed on the amount and the test card, no network.

    It honours idempotency keys as acquirers do, within the process: a key it has answered gets the same
    answer again without a second look at the card (the last KEYS_KEPT keys are remembered); a network error
    is no answer, so its key may be tried again."""

    KEYS_KEPT = 10_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._attempts: collections.OrderedDict[str, _Attempt] = collections.OrderedDict()

    def authorize(self, request: AuthorizationRequest) -> AuthorizationResult:
        with self._lock:
            attempt = self._attempts.get(request.idempotency_key)
            if attempt is None:
                attempt = self._attempts[request.idempotency_key] = _Attempt()
                if len(self._attempts) > self.KEYS_KEPT:
                    self._attempts.popitem(last=False)
        # Requests with one key run one at a time; other keys do not wait for them.
        with attempt.lock:
            if attempt.result is None:
                attempt.result = self._authorize(request)
            return attempt.result

    def _authorize(self, request: AuthorizationRequest) -> AuthorizationResult:
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
