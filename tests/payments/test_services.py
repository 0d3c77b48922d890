"""The payment services against real PostgreSQL: what each command appends, and what it refuses to append."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid

import pytest
from django.db import connection
from django.utils import timezone

from fintech import eventstore
from fintech.eventstore import ConcurrencyConflict, PreconditionFailed
from fintech.models import Event
from fintech.money import Money
from payments import services
from payments.domain import (
    AUTHORIZED,
    CANCELLED,
    CAPTURED,
    FAILED,
    INITIATED,
    PARTIALLY_REFUNDED,
    REFUNDED,
    InvalidAmount,
    InvalidTransition,
    PaymentInitiated,
)
from payments.gateway import AcquirerUnavailable, SimulatorGateway
from payments.selectors import payment_event_list
from tests.payments.helpers import (
    ACTOR,
    AMEX,
    DECLINED,
    INSUFFICIENT_FUNDS,
    JCB,
    MASTERCARD,
    MERCHANT,
    OTHER_MERCHANT,
    VISA,
    RecordingGateway,
    append_bypassing_the_lock,
    card_token,
    in_other_thread,
    jpy,
    unique_merchant_id,
)
from vault.models import Card, DetokenizationAudit

pytestmark = pytest.mark.django_db


def _types(payment_id: uuid.UUID) -> list[str]:
    return [r.event_type for r in eventstore.load(payment_id)]


def _event_count() -> int:
    return Event.objects.count()


# initiate -------------------------------------------------------------------------------------------------
def test_initiate_appends_payment_initiated_with_card_summary():
    # given a Mastercard test card vaulted for the merchant
    token = card_token(MERCHANT, MASTERCARD)
    # when
    payment = services.payment_initiate(
        merchant_id=MERCHANT, amount=jpy(1000), payment_method_token=token, description="x", actor=ACTOR
    )
    # then
    assert payment.status == INITIATED
    assert payment.version == 1
    assert payment.pending_events == []
    [recorded] = eventstore.load(payment.id)
    assert recorded.event_type == "PaymentInitiated"
    assert recorded.version == 1
    assert recorded.aggregate_type == "payment"
    assert recorded.metadata["actor"] == ACTOR
    assert recorded.event.payment_method == {"token": token, "brand": "mastercard", "last4": "4444"}
    assert recorded.event.merchant_id == MERCHANT
    assert eventstore.stream_version(payment.id) == 1


@pytest.mark.parametrize(
    ("number", "brand", "last4"),
    [(VISA, "visa", "4242"), (MASTERCARD, "mastercard", "4444"), (AMEX, "amex", "0005"), (JCB, "jcb", "0505")],
    ids=["visa", "mastercard", "amex", "jcb"],
)
def test_initiate_with_a_vaulted_token_keeps_the_vaults_brand_and_last4(number, brand, last4):
    # given a test card vaulted for the merchant
    token = card_token(MERCHANT, number)
    # when
    payment = services.payment_initiate(merchant_id=MERCHANT, amount=jpy(10), payment_method_token=token, actor=ACTOR)
    # then the payment holds the token and what the vault says may be shown of the card, never the number
    assert (payment.payment_method.token, payment.payment_method.brand, payment.payment_method.last4) == (
        token,
        brand,
        last4,
    )
    [recorded] = eventstore.load(payment.id)
    assert number not in str(recorded.event.to_data())


@pytest.mark.parametrize(
    "token",
    [
        "visa",
        "tok_",
        "tok_abc",
        "tok_ab-cd",
        "tok_Abc_123",
        "tok_visa",
        "tok_mastercard",
        "tok_" + "Ab3" * 8,  # shaped like a vault token, but the vault never issued it
        "tok_" + "a" * 65,
        "",
        VISA,
    ],
)
def test_initiate_unknown_token_raises_and_writes_nothing(token):
    before = _event_count()
    with pytest.raises(services.UnknownPaymentMethod):
        services.payment_initiate(merchant_id=MERCHANT, amount=jpy(1000), payment_method_token=token, actor=ACTOR)
    assert _event_count() == before


def test_initiate_another_merchants_token_raises_and_writes_nothing():
    # given a card vaulted for another merchant
    token = card_token(OTHER_MERCHANT)
    before = _event_count()
    # when this merchant pays with its token, then the token is as unknown as one never issued
    with pytest.raises(services.UnknownPaymentMethod):
        services.payment_initiate(merchant_id=MERCHANT, amount=jpy(1000), payment_method_token=token, actor=ACTOR)
    assert _event_count() == before


def test_initiate_expired_card_token_raises_and_writes_nothing():
    # given a card vaulted while valid, whose expiry has since passed
    token = card_token(MERCHANT)
    Card.objects.filter(token=token).update(exp_year=2020)
    before = _event_count()
    # when / then
    with pytest.raises(services.UnknownPaymentMethod):
        services.payment_initiate(merchant_id=MERCHANT, amount=jpy(1000), payment_method_token=token, actor=ACTOR)
    assert _event_count() == before


@pytest.mark.parametrize("minor", [0, -100])
def test_initiate_non_positive_amount_raises_invalid_amount_and_writes_nothing(minor):
    token = card_token(MERCHANT)
    before = _event_count()
    with pytest.raises(InvalidAmount):
        services.payment_initiate(merchant_id=MERCHANT, amount=jpy(minor), payment_method_token=token, actor=ACTOR)
    assert _event_count() == before


# authorize ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("minor", [1, 1000, 1999, 3002, 100_000])
def test_authorize_approved_amount_authorizes(make_payment, minor):
    # given
    payment = make_payment(INITIATED, amount=minor)
    # when
    authorized = services.payment_authorize(payment_id=payment.id, actor=ACTOR)
    # then
    assert authorized.status == AUTHORIZED
    assert authorized.version == 2
    assert authorized.authorized_amount == jpy(minor)
    assert len(authorized.authorization_code) == 6
    assert authorized.authorization_code.isalnum()
    [_, recorded] = eventstore.load(payment.id)
    assert recorded.event_type == "PaymentAuthorized"
    assert recorded.event.card_network_response["network"] == "simulator"
    assert services.payment_load(payment_id=payment.id).status == AUTHORIZED


@pytest.mark.parametrize("minor", [2000, 2500, 2999])
def test_authorize_declined_amount_fails_with_the_response_code(make_payment, minor):
    # given
    payment = make_payment(INITIATED, amount=minor)
    # when
    failed = services.payment_authorize(payment_id=payment.id, actor=ACTOR)
    # then
    assert failed.status == FAILED
    assert failed.failure_code == str(minor)
    assert failed.authorization_code is None
    [_, recorded] = eventstore.load(payment.id)
    assert recorded.event_type == "PaymentFailed"
    assert recorded.event.response_code == str(minor)
    reloaded = services.payment_load(payment_id=payment.id)
    assert (reloaded.status, reloaded.failure_code, reloaded.version) == (FAILED, str(minor), 2)


@pytest.mark.parametrize(
    ("card", "code", "reason"),
    [(DECLINED, "05", "card_declined"), (INSUFFICIENT_FUNDS, "51", "insufficient_funds")],
    ids=["declined", "insufficient-funds"],
)
def test_authorize_declining_test_card_fails_with_its_response_code(make_payment, card, code, reason):
    # given a payment of an ordinary amount, paid with a test card the simulator declines
    payment = make_payment(INITIATED, card=card)
    # when
    failed = services.payment_authorize(payment_id=payment.id, actor=ACTOR)
    # then
    assert failed.status == FAILED
    assert failed.failure_code == code
    assert failed.authorization_code is None
    [_, recorded] = eventstore.load(payment.id)
    assert recorded.event_type == "PaymentFailed"
    assert (recorded.event.response_code, recorded.event.reason) == (code, reason)
    assert card not in str(recorded.event.to_data())


def test_authorize_detokenises_through_the_vault_as_the_gateway_and_is_audited(make_payment):
    # given
    payment = make_payment(INITIATED)
    token = payment.payment_method.token
    assert not DetokenizationAudit.objects.filter(token=token).exists()
    # when
    services.payment_authorize(payment_id=payment.id, actor=ACTOR)
    # then the gateway's look-up of the number left an audit row in the vault
    audits = DetokenizationAudit.objects.filter(token=token, outcome="granted", channel="gateway")
    assert audits.exists()
    [audit] = audits
    assert audit.actor == "system:acquirer-gateway"
    assert audit.purpose == f"authorization of payment {payment.id}"


def test_authorize_declined_2500_fails_and_is_final(make_payment):
    payment = make_payment(INITIATED, amount=2500)
    failed = services.payment_authorize(payment_id=payment.id, actor=ACTOR)
    assert (failed.status, failed.failure_code) == (FAILED, "2500")
    with pytest.raises(InvalidTransition):
        services.payment_authorize(payment_id=payment.id, actor=ACTOR)
    with pytest.raises(InvalidTransition):
        services.payment_cancel(payment_id=payment.id, actor=ACTOR)
    assert _types(payment.id) == ["PaymentInitiated", "PaymentFailed"]


def test_authorize_acquirer_unavailable_writes_nothing_and_stays_retryable(make_payment):
    # given
    payment = make_payment(INITIATED, amount=3000)
    before = _event_count()
    # when
    with pytest.raises(AcquirerUnavailable):
        services.payment_authorize(payment_id=payment.id, actor=ACTOR)
    # then
    reloaded = services.payment_load(payment_id=payment.id)
    assert reloaded.status == INITIATED
    assert reloaded.version == 1
    assert _types(payment.id) == ["PaymentInitiated"]
    assert eventstore.stream_version(payment.id) == 1
    assert _event_count() == before
    # and a retry meets the acquirer again rather than a refused transition
    with pytest.raises(AcquirerUnavailable):
        services.payment_authorize(payment_id=payment.id, actor=ACTOR)
    assert services.payment_cancel(payment_id=payment.id, actor=ACTOR).status == CANCELLED


@pytest.mark.django_db(transaction=True)
def test_authorize_cancel_sent_during_the_acquirer_call_waits_then_voids(make_payment, monkeypatch):
    # given a cancel sent while the acquirer is answering the payment's authorization
    payment = make_payment(INITIATED, merchant_id=unique_merchant_id())
    cancel = {}

    def cancel_and_wait_until_it_queues(request):
        def run():
            cancel["result"] = _cancel_on_its_own_connection(request.payment_id)

        cancel["thread"] = threading.Thread(target=run)
        cancel["thread"].start()
        _wait_until_waiting_on_a_lock_or_done(cancel["thread"])

    gateway = RecordingGateway(during=cancel_and_wait_until_it_queues)
    monkeypatch.setattr(services, "_gateway", gateway)
    # when
    authorized = services.payment_authorize(payment_id=payment.id, actor=ACTOR)
    cancel["thread"].join(timeout=30)
    # then the cancel waited for the authorization to be recorded, and voided it after
    assert (authorized.status, authorized.version) == (AUTHORIZED, 2)
    assert (cancel["result"].status, cancel["result"].version) == (CANCELLED, 3)
    assert _types(payment.id) == ["PaymentInitiated", "PaymentAuthorized", "PaymentCancelled"]
    assert len(gateway.requests) == 1


def _cancel_on_its_own_connection(payment_id: uuid.UUID):
    try:
        return services.payment_cancel(payment_id=payment_id, reason="raced", actor=ACTOR)
    finally:
        connection.close()


def _wait_until_waiting_on_a_lock_or_done(thread: threading.Thread) -> None:
    # Polls the server rather than sleeping a guessed time: done when the other session waits on a lock.
    deadline = time.monotonic() + 10
    while thread.is_alive() and time.monotonic() < deadline:
        with connection.cursor() as cursor:
            # Inside the authorization's transaction: the statistics views are read once per transaction unless
            # told otherwise.
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event = 'advisory' AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0]:
                return
        time.sleep(0.01)


def _cancelled_bypassing_the_lock(request) -> None:
    in_other_thread(
        lambda: append_bypassing_the_lock(request.payment_id, lambda p: p.cancel(reason="raced", now=timezone.now()))
    )


@pytest.mark.django_db(transaction=True)
def test_authorize_payment_moved_by_a_writer_without_the_lock_is_rerun_and_refused(make_payment, monkeypatch):
    # given a payment cancelled, by a writer that does not take the payment's lock, during the acquirer call
    payment = make_payment(INITIATED, merchant_id=unique_merchant_id())
    gateway = RecordingGateway(during=_cancelled_bypassing_the_lock)
    monkeypatch.setattr(services, "_gateway", gateway)
    # when, then the compare-and-set refuses the authorization, and the re-run finds the payment cancelled
    with pytest.raises(InvalidTransition):
        services.payment_authorize(payment_id=payment.id, actor=ACTOR)
    assert len(gateway.requests) == 1
    assert _types(payment.id) == ["PaymentInitiated", "PaymentCancelled"]


@pytest.mark.django_db(transaction=True)
def test_authorize_pinned_payment_moved_by_a_writer_without_the_lock_fails_its_precondition(make_payment, monkeypatch):
    payment = make_payment(INITIATED, merchant_id=unique_merchant_id())
    monkeypatch.setattr(services, "_gateway", RecordingGateway(during=_cancelled_bypassing_the_lock))
    with pytest.raises(PreconditionFailed):
        services.payment_authorize(payment_id=payment.id, expected_version=1, actor=ACTOR)
    assert _types(payment.id) == ["PaymentInitiated", "PaymentCancelled"]


class _TransactionIdProbe(RecordingGateway):
    """Notes whether the authorizing transaction has a transaction id once the acquirer has answered."""

    transaction_id = "not probed"

    def authorize(self, request):
        result = super().authorize(request)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_current_xact_id_if_assigned()")
            self.transaction_id = cursor.fetchone()[0]
        return result


@pytest.mark.django_db(transaction=True)
def test_authorize_waiting_on_the_acquirer_holds_no_transaction_id(make_payment, monkeypatch):
    # given an authorization holding the payment's lock while the acquirer answers (and the card is decrypted)
    payment = make_payment(INITIATED, merchant_id=unique_merchant_id())
    probe = _TransactionIdProbe()
    monkeypatch.setattr(services, "_gateway", probe)
    # when
    services.payment_authorize(payment_id=payment.id, actor=ACTOR)
    # then its transaction had written nothing yet (the audit row went on its own connection), so it held no
    # transaction id that would hold the projections back
    assert probe.transaction_id is None


def test_authorize_refused_transition_never_reaches_the_acquirer(make_payment, monkeypatch):
    payment = make_payment(AUTHORIZED)
    gateway = RecordingGateway()
    monkeypatch.setattr(services, "_gateway", gateway)
    with pytest.raises(InvalidTransition):
        services.payment_authorize(payment_id=payment.id, actor=ACTOR)
    assert gateway.requests == []


def test_authorize_passes_the_acquirer_a_key_of_the_payment_and_attempt(make_payment, monkeypatch):
    payment = make_payment(INITIATED)
    gateway = RecordingGateway()
    monkeypatch.setattr(services, "_gateway", gateway)
    services.payment_authorize(payment_id=payment.id, actor=ACTOR)
    [request] = gateway.requests
    assert request.idempotency_key == f"{payment.id}:1:1"


def test_authorize_retried_after_a_lost_answer_gets_that_answer_without_a_second_decryption(make_payment, monkeypatch):
    # given an authorization whose approval was lost on the way back from the acquirer
    payment = make_payment(INITIATED)
    token = payment.payment_method.token
    gateway = RecordingGateway(lost_answers=1)
    monkeypatch.setattr(services, "_gateway", gateway)
    with pytest.raises(AcquirerUnavailable):
        services.payment_authorize(payment_id=payment.id, actor=ACTOR)
    assert _types(payment.id) == ["PaymentInitiated"]
    # when it is retried
    authorized = services.payment_authorize(payment_id=payment.id, actor=ACTOR)
    # then the acquirer answers the same attempt's key with the approval it gave, and saw the card once
    assert [r.idempotency_key for r in gateway.requests] == [f"{payment.id}:1:1"] * 2
    assert authorized.authorization_code == gateway.answers[0].authorization_code
    assert DetokenizationAudit.objects.filter(token=token, outcome="granted").count() == 1


def test_acquirer_gateway_is_the_configured_simulator():
    assert isinstance(services.acquirer_gateway(), SimulatorGateway)


# capture --------------------------------------------------------------------------------------------------
def test_capture_without_amount_captures_everything(make_payment):
    payment = make_payment(AUTHORIZED)
    captured = services.payment_capture(payment_id=payment.id, actor=ACTOR)
    assert captured.status == CAPTURED
    assert captured.captured_amount == jpy(1000)
    assert captured.version == 3
    recorded = eventstore.load(payment.id)[-1]
    assert recorded.event_type == "PaymentCaptured"
    assert recorded.event.settlement_date == services.settlement_date_for(recorded.occurred_at)


def test_capture_partial_amount_captures_that_amount(make_payment):
    payment = make_payment(AUTHORIZED)
    captured = services.payment_capture(payment_id=payment.id, amount=jpy(400), actor=ACTOR)
    assert captured.captured_amount == jpy(400)
    assert services.payment_load(payment_id=payment.id).captured_amount == jpy(400)


@pytest.mark.parametrize(
    "amount", [jpy(1001), jpy(0), jpy(-1), Money(1000, "USD")], ids=["above", "zero", "negative", "currency"]
)
def test_capture_bad_amount_raises_invalid_amount_and_writes_nothing(make_payment, amount):
    payment = make_payment(AUTHORIZED)
    with pytest.raises(InvalidAmount):
        services.payment_capture(payment_id=payment.id, amount=amount, actor=ACTOR)
    assert _types(payment.id) == ["PaymentInitiated", "PaymentAuthorized"]
    assert eventstore.stream_version(payment.id) == 2


@pytest.mark.parametrize("status", [INITIATED, CAPTURED, PARTIALLY_REFUNDED, REFUNDED, CANCELLED, FAILED])
def test_capture_outside_authorized_raises_invalid_transition_and_writes_nothing(make_payment, status):
    payment = make_payment(status)
    before = _types(payment.id)
    with pytest.raises(InvalidTransition):
        services.payment_capture(payment_id=payment.id, actor=ACTOR)
    assert _types(payment.id) == before


@pytest.mark.parametrize(
    ("captured_on", "settles_on"),
    [
        (dt.date(2025, 1, 6), dt.date(2025, 1, 7)),  # Monday -> Tuesday
        (dt.date(2025, 1, 9), dt.date(2025, 1, 10)),  # Thursday -> Friday
        (dt.date(2025, 1, 10), dt.date(2025, 1, 13)),  # Friday -> Monday
        (dt.date(2025, 1, 11), dt.date(2025, 1, 13)),  # Saturday -> Monday
        (dt.date(2025, 1, 12), dt.date(2025, 1, 13)),  # Sunday -> Monday
    ],
)
def test_settlement_date_for_is_the_next_business_day(captured_on, settles_on):
    captured_at = dt.datetime.combine(captured_on, dt.time(23, 59), tzinfo=dt.UTC)
    assert services.settlement_date_for(captured_at) == settles_on


# refund ---------------------------------------------------------------------------------------------------
def test_refund_several_partial_refunds_end_refunded(make_payment):
    # given
    payment = make_payment(CAPTURED)
    # when
    first = services.payment_refund(payment_id=payment.id, amount=jpy(300), reason="damaged", actor=ACTOR)
    second = services.payment_refund(payment_id=payment.id, amount=jpy(300), actor=ACTOR)
    last = services.payment_refund(payment_id=payment.id, amount=jpy(400), actor=ACTOR)
    # then
    assert (first.status, second.status, last.status) == (PARTIALLY_REFUNDED, PARTIALLY_REFUNDED, REFUNDED)
    assert last.refunded_amount == jpy(1000)
    assert last.version == 6
    refunds = [r.event for r in eventstore.load(payment.id) if r.event_type == "PaymentRefunded"]
    assert [e.refunded_amount for e in refunds] == [jpy(300), jpy(300), jpy(400)]
    assert refunds[0].reason == "damaged"
    assert len({e.refund_id for e in refunds}) == 3
    with pytest.raises(InvalidTransition):
        services.payment_refund(payment_id=payment.id, amount=jpy(1), actor=ACTOR)


@pytest.mark.parametrize(
    "amount", [jpy(751), jpy(0), Money(100, "USD")], ids=["above-remaining", "zero", "other-currency"]
)
def test_refund_bad_amount_raises_invalid_amount_and_writes_nothing(make_payment, amount):
    payment = make_payment(PARTIALLY_REFUNDED)  # 1000 captured, 250 refunded
    before = _types(payment.id)
    with pytest.raises(InvalidAmount):
        services.payment_refund(payment_id=payment.id, amount=amount, actor=ACTOR)
    assert _types(payment.id) == before


# cancel ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [INITIATED, AUTHORIZED])
def test_cancel_before_capture_cancels(make_payment, status):
    payment = make_payment(status)
    cancelled = services.payment_cancel(payment_id=payment.id, reason="customer asked", actor=ACTOR)
    assert cancelled.status == CANCELLED
    assert eventstore.load(payment.id)[-1].event.reason == "customer asked"


@pytest.mark.parametrize("status", [CAPTURED, PARTIALLY_REFUNDED, REFUNDED, CANCELLED, FAILED])
def test_cancel_after_capture_or_end_raises_invalid_transition(make_payment, status):
    payment = make_payment(status)
    before = _types(payment.id)
    with pytest.raises(InvalidTransition):
        services.payment_cancel(payment_id=payment.id, actor=ACTOR)
    assert _types(payment.id) == before


# loading, merchants, expected versions --------------------------------------------------------------------
def test_load_unknown_payment_raises_not_found():
    with pytest.raises(services.PaymentNotFound):
        services.payment_load(payment_id=uuid.uuid4())


def test_load_stream_of_another_aggregate_raises_not_found():
    # given a stream that is not a payment's
    stream_id = uuid.uuid4()
    event = PaymentInitiated(
        occurred_at=dt.datetime.now(tz=dt.UTC),
        payment_id=stream_id,
        merchant_id=MERCHANT,
        amount=jpy(1),
        payment_method={"token": "tok_visa", "brand": "visa", "last4": "4242"},
        description="",
        initiated_by=ACTOR,
    )
    eventstore.append(stream_id, [event], 0, aggregate_type="not_a_payment")
    # then
    with pytest.raises(services.PaymentNotFound):
        services.payment_load(payment_id=stream_id)


@pytest.mark.parametrize(
    "command",
    [
        lambda pid, m: services.payment_authorize(payment_id=pid, merchant_id=m, actor=ACTOR),
        lambda pid, m: services.payment_capture(payment_id=pid, merchant_id=m, actor=ACTOR),
        lambda pid, m: services.payment_refund(payment_id=pid, merchant_id=m, amount=jpy(1), actor=ACTOR),
        lambda pid, m: services.payment_cancel(payment_id=pid, merchant_id=m, actor=ACTOR),
        lambda pid, m: payment_event_list(payment_id=pid, merchant_id=m),
    ],
    ids=["authorize", "capture", "refund", "cancel", "events"],
)
def test_another_merchants_payment_is_not_found(make_payment, command):
    payment = make_payment(INITIATED, merchant_id=MERCHANT)
    with pytest.raises(services.PaymentNotFound):
        command(payment.id, OTHER_MERCHANT)
    assert _types(payment.id) == ["PaymentInitiated"]


def test_own_merchant_commands_succeed(make_payment):
    payment = make_payment(INITIATED)
    payment = services.payment_authorize(payment_id=payment.id, merchant_id=MERCHANT, actor=ACTOR)
    assert payment.status == AUTHORIZED


@pytest.mark.parametrize(
    ("status", "command"),
    [
        (INITIATED, lambda pid, v: services.payment_authorize(payment_id=pid, expected_version=v, actor=ACTOR)),
        (AUTHORIZED, lambda pid, v: services.payment_capture(payment_id=pid, expected_version=v, actor=ACTOR)),
        (
            CAPTURED,
            lambda pid, v: services.payment_refund(payment_id=pid, amount=jpy(1), expected_version=v, actor=ACTOR),
        ),
        (AUTHORIZED, lambda pid, v: services.payment_cancel(payment_id=pid, expected_version=v, actor=ACTOR)),
    ],
    ids=["authorize", "capture", "refund", "cancel"],
)
def test_stale_expected_version_raises_precondition_failed_and_writes_nothing(make_payment, status, command):
    payment = make_payment(status)
    before = _types(payment.id)
    with pytest.raises(PreconditionFailed):
        command(payment.id, payment.version - 1)
    assert _types(payment.id) == before


def test_matching_expected_version_is_accepted(make_payment):
    payment = make_payment(AUTHORIZED)
    captured = services.payment_capture(payment_id=payment.id, expected_version=2, actor=ACTOR)
    assert captured.version == 3
    refunded = services.payment_refund(payment_id=payment.id, amount=jpy(1), expected_version=3, actor=ACTOR)
    assert refunded.version == 4


def test_event_list_is_in_version_order(make_payment):
    payment = make_payment(REFUNDED)
    events = payment_event_list(payment_id=payment.id, merchant_id=MERCHANT)
    assert [r.version for r in events] == [1, 2, 3, 4]
    assert [r.event_type for r in events] == [
        "PaymentInitiated",
        "PaymentAuthorized",
        "PaymentCaptured",
        "PaymentRefunded",
    ]


def test_command_metadata_is_stored_with_the_events(make_payment):
    token = card_token(MERCHANT)
    with eventstore.command_metadata(trace_id="t-1", correlation_id="c-1", causation_id="r-1"):
        payment = services.payment_initiate(
            merchant_id=MERCHANT, amount=jpy(5), payment_method_token=token, actor=ACTOR
        )
    [recorded] = eventstore.load(payment.id)
    assert recorded.metadata == {"actor": ACTOR, "trace_id": "t-1", "correlation_id": "c-1", "causation_id": "r-1"}


# concurrency ----------------------------------------------------------------------------------------------
def _captured_events(payment_id: uuid.UUID) -> int:
    return sum(1 for r in eventstore.load(payment_id) if r.event_type == "PaymentCaptured")


@pytest.mark.django_db(transaction=True)
def test_concurrent_captures_capture_once(make_payment, run_concurrently):
    # given an authorized payment (committed: each thread has its own connection)
    payment = make_payment(AUTHORIZED, merchant_id=unique_merchant_id())

    def capture():
        return services.payment_capture(payment_id=payment.id, actor=ACTOR)

    # when two captures start at once
    results = run_concurrently(capture, capture)
    # then one wins, the other is refused, and the stream holds one capture
    outcomes = sorted(kind for kind, _ in results)
    assert outcomes == ["error", "ok"], results
    [error] = [value for kind, value in results if kind == "error"]
    assert isinstance(error, InvalidTransition), repr(error)
    assert _captured_events(payment.id) == 1
    assert [r.version for r in eventstore.load(payment.id)] == [1, 2, 3]
    assert eventstore.stream_version(payment.id) == 3


def _another_writer_on_load(monkeypatch, payment_id: uuid.UUID, decide, *, times: int = 1) -> list[int]:
    """Each of the first `times` loads of the payment by a command is followed by `decide` appended from
    another connection by a writer that does not take the payment's lock. Returns the running count of loads."""
    real_load = services.payment_load
    loads = [0]

    def load(**kwargs):
        payment = real_load(**kwargs)
        loads[0] += 1
        if loads[0] <= times:
            in_other_thread(lambda: append_bypassing_the_lock(payment_id, decide))
        return payment

    monkeypatch.setattr(services, "payment_load", load)
    return loads


def _refund_by_other_writer(minor: int):
    return lambda p: p.refund(refund_id=uuid.uuid4(), amount=jpy(minor), reason="other", now=timezone.now())


@pytest.mark.django_db(transaction=True)
def test_refund_losing_to_a_writer_without_the_lock_is_rerun_on_the_fresh_state(make_payment, monkeypatch):
    # given a captured payment that another writer refunds 200 of while our refund decides
    payment = make_payment(CAPTURED, merchant_id=unique_merchant_id())
    loads = _another_writer_on_load(monkeypatch, payment.id, _refund_by_other_writer(200))
    # when we refund 300 without pinning a version
    refunded = services.payment_refund(payment_id=payment.id, amount=jpy(300), actor=ACTOR)
    # then it was re-run on the fresh state and both refunds stand
    assert loads[0] == 2
    assert (refunded.version, refunded.refunded_amount) == (5, jpy(500))
    assert _types(payment.id)[-2:] == ["PaymentRefunded", "PaymentRefunded"]


@pytest.mark.django_db(transaction=True)
def test_pinned_refund_losing_to_a_writer_without_the_lock_fails_its_precondition(make_payment, monkeypatch):
    payment = make_payment(CAPTURED, merchant_id=unique_merchant_id())
    loads = _another_writer_on_load(monkeypatch, payment.id, _refund_by_other_writer(200))
    with pytest.raises(PreconditionFailed):
        services.payment_refund(payment_id=payment.id, amount=jpy(300), expected_version=3, actor=ACTOR)
    assert loads[0] == 1
    assert services.payment_load(payment_id=payment.id).refunded_amount == jpy(200)


@pytest.mark.django_db(transaction=True)
def test_refund_losing_every_attempt_raises_concurrency_conflict(make_payment, monkeypatch):
    payment = make_payment(CAPTURED, merchant_id=unique_merchant_id())
    loads = _another_writer_on_load(
        monkeypatch, payment.id, _refund_by_other_writer(100), times=services.COMMAND_ATTEMPTS
    )
    with pytest.raises(ConcurrencyConflict):
        services.payment_refund(payment_id=payment.id, amount=jpy(300), actor=ACTOR)
    assert loads[0] == services.COMMAND_ATTEMPTS
    assert services.payment_load(payment_id=payment.id).refunded_amount == jpy(100 * services.COMMAND_ATTEMPTS)


@pytest.mark.django_db(transaction=True)
def test_concurrent_authorizations_call_the_acquirer_once(make_payment, run_concurrently, monkeypatch):
    # given a payment and a gateway that counts the requests reaching it
    payment = make_payment(INITIATED, merchant_id=unique_merchant_id())
    gateway = RecordingGateway()
    monkeypatch.setattr(services, "_gateway", gateway)

    def authorize():
        return services.payment_authorize(payment_id=payment.id, actor=ACTOR)

    # when eight authorizations race
    results = run_concurrently(*[authorize] * 8)
    # then one reached the acquirer, the others found the payment authorized
    assert sorted(kind for kind, _ in results) == ["error"] * 7 + ["ok"], results
    assert all(isinstance(value, InvalidTransition) for kind, value in results if kind == "error"), results
    assert len(gateway.requests) == 1
    assert _types(payment.id) == ["PaymentInitiated", "PaymentAuthorized"]
