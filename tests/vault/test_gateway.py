"""The acquirer gateway detokenises inside the CDE as a system actor: test cards decide, every call audited."""

import json
import uuid

import pytest
from django.db import connection, transaction

from fintech.money import Money
from payments import gateway
from payments import services as payments
from payments.domain import AUTHORIZED, CAPTURED, FAILED
from payments.gateway import (
    LOST_ANSWER_AMOUNT,
    NETWORK_ERROR_AMOUNT,
    AcquirerUnavailable,
    AuthorizationRequest,
    SimulatorGateway,
)
from payments.models import SimulatedAuthorization
from tests.vault.helpers import DECLINED, INSUFFICIENT_FUNDS, VISA, pan_text_forms
from vault.models import Card, DetokenizationAudit

pytestmark = pytest.mark.django_db

ACTOR = "user:checkout"


def _pay(tokenize, merchant_id: str, pan: str, *, amount: int = 1000):
    token = tokenize(pan).token
    payment = payments.payment_initiate(
        merchant_id=merchant_id, amount=Money(amount, "JPY"), payment_method_token=token, actor=ACTOR
    )
    return token, payments.payment_authorize(payment_id=payment.id, actor=ACTOR)


@pytest.mark.parametrize(("pan", "code"), [(DECLINED, "05"), (INSUFFICIENT_FUNDS, "51")])
def test_payment_authorize_test_card_declined_with_code(tokenize, merchant_id, pan, code):
    # given a payment with a sandbox test card's token, when it is authorised
    token, payment = _pay(tokenize, merchant_id, pan)
    # then the acquirer declines it with the card's response code
    assert payment.status == FAILED
    assert payment.failure_code == code
    # and the gateway's detokenisation is audited as the system actor's, through the gateway channel
    [audit] = DetokenizationAudit.objects.filter(token=token)
    assert (audit.actor, audit.user_id, audit.outcome, audit.channel) == (
        "system:acquirer-gateway",
        None,
        DetokenizationAudit.GRANTED,
        "gateway",
    )
    assert audit.purpose == f"authorization of payment {payment.id}"


def test_payment_authorize_declined_test_card_wins_over_amount(tokenize, merchant_id):
    _, payment = _pay(tokenize, merchant_id, DECLINED, amount=2500)
    assert (payment.status, payment.failure_code) == (FAILED, "05")


def test_payment_authorize_ordinary_card_approved_and_audited(tokenize, merchant_id):
    token, payment = _pay(tokenize, merchant_id, VISA)
    assert payment.status == AUTHORIZED
    assert payments.payment_capture(payment_id=payment.id, actor=ACTOR).status == CAPTURED
    [audit] = DetokenizationAudit.objects.filter(token=token)
    assert (audit.actor, audit.channel, audit.outcome) == ("system:acquirer-gateway", "gateway", "granted")


def test_payment_authorize_decline_amount_still_applies_to_ordinary_card(tokenize, merchant_id):
    _, payment = _pay(tokenize, merchant_id, VISA, amount=2051)
    assert (payment.status, payment.failure_code) == (FAILED, "2051")


@pytest.mark.parametrize("pan", [DECLINED, INSUFFICIENT_FUNDS, VISA])
def test_payment_authorize_events_hold_no_number(tokenize, merchant_id, pan):
    from django.db import connection

    _, payment = _pay(tokenize, merchant_id, pan)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT event_data::text || metadata::text FROM fintech_event WHERE aggregate_id = %s", [payment.id]
        )
        stored = " ".join(row[0] for row in cursor.fetchall())
    assert stored
    for form in pan_text_forms(pan):
        assert form not in stored


def test_payment_authorize_card_expired_since_initiation_declined_54(tokenize, merchant_id):
    # given a payment initiated with a valid card that has expired since
    token = tokenize(VISA).token
    payment = payments.payment_initiate(
        merchant_id=merchant_id, amount=Money(1000, "JPY"), payment_method_token=token, actor=ACTOR
    )
    Card.objects.filter(token=token).update(exp_year=2020)
    # when it is authorised, then the acquirer declines it as expired without detokenising
    payment = payments.payment_authorize(payment_id=payment.id, actor=ACTOR)
    assert (payment.status, payment.failure_code) == (FAILED, "54")
    assert not DetokenizationAudit.objects.filter(token=token).exists()


def test_payment_authorize_token_unknown_to_vault_declined_14_not_404():
    # given a payment whose token the vault never issued (a v1 event from before the vault)
    payment_id = uuid.uuid4()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO fintech_event (event_id, aggregate_id, aggregate_type, event_type, event_version, "
            "event_data, version, occurred_at) VALUES (gen_random_uuid(), %s, 'payment', 'PaymentInitiated', 1, "
            "%s::jsonb, 1, now())",
            [
                payment_id,
                json.dumps(
                    {
                        "payment_id": str(payment_id),
                        "merchant_id": "m-old",
                        "amount": {"amount": 900, "currency": "JPY"},
                        "payment_method": "tok_legacy",
                        "initiated_by": "user:legacy",
                    }
                ),
            ],
        )
    # when it is authorised, then it is declined (invalid card), not answered "not found"
    payment = payments.payment_authorize(payment_id=payment_id, actor=ACTOR)
    assert (payment.status, payment.failure_code) == (FAILED, "14")


# idempotency keys ---------------------------------------------------------------------------------------------
# The simulator keeps its answers in its own table, committed on its own connection whatever the test's
# transaction does: every test's keys are its own.
def _key() -> str:
    return f"{uuid.uuid4()}:1:1"


def _request(token: str, merchant_id: str, key: str, *, amount: int = 1000) -> AuthorizationRequest:
    return AuthorizationRequest(
        payment_id=uuid.uuid4(), merchant_id=merchant_id, amount=Money(amount, "JPY"), token=token, idempotency_key=key
    )


@pytest.mark.parametrize(("pan", "amount"), [(VISA, 1000), (DECLINED, 1000), (VISA, 2051)])
def test_simulator_same_key_gets_the_same_answer_and_sees_the_card_once(tokenize, merchant_id, pan, amount):
    # given a simulator that has answered one key
    token, key = tokenize(pan).token, _key()
    first = SimulatorGateway().authorize(_request(token, merchant_id, key, amount=amount))
    # when the same key is sent again, even to another instance (another process)
    again = SimulatorGateway().authorize(_request(token, merchant_id, key, amount=amount))
    # then it answers as before, without a second decryption
    assert again == first
    assert DetokenizationAudit.objects.filter(token=token).count() == 1


def test_simulator_another_key_is_another_authorization(tokenize, merchant_id):
    token = tokenize(VISA).token
    simulator = SimulatorGateway()
    first = simulator.authorize(_request(token, merchant_id, _key()))
    second = simulator.authorize(_request(token, merchant_id, _key()))
    assert first.network_response["reference"] != second.network_response["reference"]
    assert DetokenizationAudit.objects.filter(token=token).count() == 2


def test_simulator_network_error_is_no_answer_and_may_be_retried(tokenize, merchant_id, monkeypatch):
    # given a key whose first try met a network error
    token, key = tokenize(VISA).token, _key()
    simulator = SimulatorGateway()
    with pytest.raises(AcquirerUnavailable):
        simulator.authorize(_request(token, merchant_id, key, amount=NETWORK_ERROR_AMOUNT))
    # then the acquirer knows nothing of it
    assert simulator.query(key) is None
    # when the acquirer answers the retry, then that answer is the key's
    monkeypatch.setattr(gateway, "NETWORK_ERROR_AMOUNT", -1)
    answer = simulator.authorize(_request(token, merchant_id, key, amount=NETWORK_ERROR_AMOUNT))
    assert answer.approved
    assert simulator.authorize(_request(token, merchant_id, key, amount=NETWORK_ERROR_AMOUNT)) == answer
    assert simulator.query(key) == answer


@pytest.mark.parametrize(("pan", "approved"), [(VISA, True), (DECLINED, False)])
def test_simulator_lost_answer_was_decided_and_can_be_queried(tokenize, merchant_id, pan, approved):
    # given an authorization whose answer is lost on the way back
    token, key = tokenize(pan).token, _key()
    simulator = SimulatorGateway()
    with pytest.raises(AcquirerUnavailable):
        simulator.authorize(_request(token, merchant_id, key, amount=LOST_ANSWER_AMOUNT))
    # when the acquirer is asked about the key, then it tells what it decided
    answer = simulator.query(key)
    assert answer is not None
    assert answer.approved is approved
    assert (answer.authorization_code is not None) is approved


def test_simulator_remembers_outside_the_callers_transaction(tokenize, merchant_id):
    # given an answer given inside a transaction that then rolls back
    token, key = tokenize(VISA).token, _key()
    answers = []

    def authorize_then_roll_back():
        with transaction.atomic():
            answers.append(SimulatorGateway().authorize(_request(token, merchant_id, key)))
            raise RuntimeError("the caller's transaction rolls back")

    with pytest.raises(RuntimeError):
        authorize_then_roll_back()
    [answer] = answers
    # then the acquirer still has it, as a real one would
    assert SimulatorGateway().query(key) == answer


def test_simulator_void_marks_an_approval_voided_once(tokenize, merchant_id):
    token, key = tokenize(VISA).token, _key()
    simulator = SimulatorGateway()
    simulator.authorize(_request(token, merchant_id, key))
    simulator.void(key)
    first = _voided_at(key)
    simulator.void(key)
    assert first is not None
    assert _voided_at(key) == first


def test_simulator_void_leaves_a_decline_alone(tokenize, merchant_id):
    token, key = tokenize(DECLINED).token, _key()
    simulator = SimulatorGateway()
    simulator.authorize(_request(token, merchant_id, key))
    simulator.void(key)
    assert _voided_at(key) is None


def _voided_at(key: str):
    return SimulatedAuthorization.objects.get(idempotency_key=key).voided_at
