"""The acquirer gateway: how a payment's authorization reaches the card network.

`AcquirerGateway` is the interface the services call; `SimulatorGateway` is the sandbox, approving by
default and, as card processors' sandboxes do, answering by test amount and test card: 2000-2999 minor units
are declined with that number as the response code, 3000 is a network error (the request never reached it),
3001 an answer lost on the way back (it decided, the caller never hears); card 4000000000000002 is declined
(05), 4000000000009995 has insufficient funds (51); a card that expired since initiation is declined (54), a
token the merchant does not own (14).

The gateway sits inside the cardholder data environment: it is the one in-process caller that detokenises,
as a system actor, and every such call is audited by the vault.
"""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Protocol

import psycopg
from psycopg.types.json import Jsonb

from fintech.db import own_connection_execute
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
    """Authorizes once per `request.idempotency_key`: a key seen before gets the answer it got then. What the
    acquirer answered a key can be asked again later (None: it never received that request), and an approval
    voided (so it holds no funds on the card). Each raises AcquirerUnavailable when there is no answer."""

    def authorize(self, request: AuthorizationRequest) -> AuthorizationResult: ...

    def query(self, idempotency_key: str) -> AuthorizationResult | None: ...

    def void(self, idempotency_key: str) -> None: ...


APPROVED = "00"
# Card processors' sandbox numbers: response code and reason.
TEST_CARDS = {
    "4000000000000002": ("05", "card_declined"),
    "4000000000009995": ("51", "insufficient_funds"),
}
GATEWAY_ACTOR = SystemActor("acquirer-gateway")
DECLINE_RANGE = range(2000, 3000)
NETWORK_ERROR_AMOUNT = 3000


LOST_ANSWER_AMOUNT = 3001
# The stored answer's columns; the JSON as text, which this connection leaves to us to decode.
_ANSWER = "approved, response_code, reason, authorization_code, network_response::text"


class SimulatorGateway:
    """A sandbox acquirer: deterministic answers keyed on the amount and the test card, no network.

    It remembers what it answered by idempotency key, as an acquirer does on its side: in its own table,
    written on a connection of its own, so the answer stays whatever becomes of the caller's transaction or
    process. A key it has answered gets the same answer again without a second look at the card; a network
    error is no answer, so its key may be tried again. One key's requests are expected one at a time (the
    payment's lock sees to it)."""

    def authorize(self, request: AuthorizationRequest) -> AuthorizationResult:
        known = self.query(request.idempotency_key)
        if known is not None:
            return known
        result = self._authorize(request)
        rows = _acquirer_execute(
            "INSERT INTO payments_simulatedauthorization (idempotency_key, payment_id, created_at, approved, "  # noqa: S608
            "response_code, reason, authorization_code, network_response) VALUES (%s, %s, now(), %s, %s, %s, %s, %s) "
            f"ON CONFLICT (idempotency_key) DO NOTHING RETURNING {_ANSWER}",
            [
                request.idempotency_key,
                request.payment_id,
                result.approved,
                result.response_code,
                result.reason,
                result.authorization_code or "",
                Jsonb(result.network_response),
            ],
        )
        # Another request with the key answered first (or a resent insert had landed): its answer is the key's.
        stored = _result(rows[0]) if rows else self.query(request.idempotency_key)
        if request.amount.minor == LOST_ANSWER_AMOUNT:
            raise AcquirerUnavailable("the acquirer's answer was lost (simulated)")
        return stored

    def query(self, idempotency_key: str) -> AuthorizationResult | None:
        rows = _acquirer_execute(
            f"SELECT {_ANSWER} FROM payments_simulatedauthorization WHERE idempotency_key = %s",  # noqa: S608
            [idempotency_key],
        )
        return _result(rows[0]) if rows else None

    def void(self, idempotency_key: str) -> None:
        _acquirer_execute(
            "UPDATE payments_simulatedauthorization SET voided_at = coalesce(voided_at, now()) "
            "WHERE idempotency_key = %s AND approved",
            [idempotency_key],
        )

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


def _acquirer_execute(sql: str, params: list) -> list[tuple]:
    # The acquirer is another system: what it records commits on its own, whatever our transaction does, and
    # its being out of reach is no answer.
    try:
        return own_connection_execute(sql, params)
    except psycopg.Error as error:
        raise AcquirerUnavailable("the acquirer did not answer (simulator storage unreachable)") from error


def _result(row: tuple) -> AuthorizationResult:
    approved, response_code, reason, authorization_code, network_response = row
    return AuthorizationResult(
        approved=approved,
        response_code=response_code,
        reason=reason,
        authorization_code=authorization_code or None,
        network_response=json.loads(network_response),
    )
