"""Plain helpers shared by the payments tests (fixtures live in conftest.py)."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable

from django.db import connection

from fintech import eventstore
from fintech.money import Money
from payments.domain import Payment
from payments.gateway import AcquirerUnavailable, AuthorizationRequest, AuthorizationResult, SimulatorGateway
from vault.services import card_tokenize

MERCHANT = "m-alpha"
OTHER_MERCHANT = "m-beta"
ACTOR = "user:test"

# Card processors' test numbers: what the vault derives from them, and what the simulator answers.
VISA = "4242424242424242"  # visa, 4242
MASTERCARD = "5555555555554444"  # mastercard, 4444
AMEX = "378282246310005"  # amex, 0005
JCB = "3566002020360505"  # jcb, 0505
DECLINED = "4000000000000002"  # declined, response code 05
INSUFFICIENT_FUNDS = "4000000000009995"  # insufficient funds, response code 51
# A few years ahead of whenever the suite runs, so the cards never expire under it.
EXP_MONTH, EXP_YEAR = 12, dt.datetime.now(tz=dt.UTC).year + 4


def jpy(minor: int) -> Money:
    return Money(minor, "JPY")


def unique_merchant_id() -> str:
    """A merchant id no other test uses: events outlive transactional tests, merchants do not."""
    return f"m-{uuid.uuid4().hex[:12]}"


def card_token(merchant_id: str, number: str = VISA) -> str:
    """The vault token of a test card for the merchant, tokenised through the vault's service: payments accept
    only their own merchant's unexpired vault tokens. The same card keeps its token within a merchant."""
    card = card_tokenize(card_number=number, exp_month=EXP_MONTH, exp_year=EXP_YEAR, merchant_id=merchant_id)
    return card.token


class RecordingGateway:
    """The real simulator underneath, recording every request that reaches the gateway. `during(request)` runs
    before the simulator answers (another writer acting while the acquirer is asked); the first `lost_answers`
    answers are lost on the way back (the simulator answered, the caller sees AcquirerUnavailable)."""

    def __init__(self, *, during: Callable[[AuthorizationRequest], None] | None = None, lost_answers: int = 0):
        self.simulator = SimulatorGateway()
        self.requests: list[AuthorizationRequest] = []
        self.answers: list[AuthorizationResult] = []
        self.during = during
        self.lost_answers = lost_answers
        self._lock = threading.Lock()

    def authorize(self, request: AuthorizationRequest) -> AuthorizationResult:
        with self._lock:
            self.requests.append(request)
        if self.during is not None:
            self.during(request)
        result = self.simulator.authorize(request)
        with self._lock:
            self.answers.append(result)
            if self.lost_answers:
                self.lost_answers -= 1
                raise AcquirerUnavailable("the acquirer's answer was lost (simulated)")
        return result

    def query(self, idempotency_key: str) -> AuthorizationResult | None:
        return self.simulator.query(idempotency_key)

    def void(self, idempotency_key: str) -> None:
        self.simulator.void(idempotency_key)


def append_bypassing_the_lock(payment_id: uuid.UUID, decide: Callable[[Payment], None]) -> None:
    """Append what `decide` does to the payment as a writer that does not take the payment's lock would: load,
    decide, append at the loaded version, committed at once on this thread's connection."""
    payment = Payment.from_events(payment_id, [r.event for r in eventstore.load(payment_id)])
    decide(payment)
    eventstore.append(payment.id, payment.pending_events, payment.version, metadata={"actor": "bypass"})


def in_other_thread(target: Callable[[], object]) -> object:
    """Run `target` on a thread of its own (so on a database connection of its own, closed afterwards) and
    wait for it; its exception is raised here."""
    outcome: list[tuple[str, object]] = []

    def run() -> None:
        try:
            outcome.append(("ok", target()))
        except Exception as exc:  # noqa: BLE001 - raised again in the calling thread
            outcome.append(("error", exc))
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=30)
    assert outcome, "the other thread did not finish"
    kind, value = outcome[0]
    if kind == "error":
        raise value
    return value
