"""The payment aggregate on its own: state machine, amounts, rebuilding from events. No database."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fintech.events import decode_event
from fintech.money import Money
from payments.domain import (
    AUTHORIZED,
    CANCELLED,
    CAPTURED,
    FAILED,
    INITIATED,
    PARTIALLY_REFUNDED,
    REFUNDED,
    STATUSES,
    InvalidAmount,
    InvalidTransition,
    Payment,
    PaymentAuthorized,
    PaymentCancelled,
    PaymentCaptured,
    PaymentError,
    PaymentFailed,
    PaymentInitiated,
    PaymentMethod,
    PaymentRefunded,
)
from tests.payments.helpers import jpy

NOW = dt.datetime(2025, 1, 6, 12, 0, tzinfo=dt.UTC)
SETTLES = dt.date(2025, 1, 7)
CARD = PaymentMethod(token="tok_visa", brand="visa", last4="4242")


# builders -------------------------------------------------------------------------------------------------
def _commit(payment: Payment) -> Payment:
    """What the service's save does once the append succeeded: count the events, forget them as pending."""
    payment.version += len(payment.pending_events)
    payment.pending_events.clear()
    return payment


def _initiated(amount: Money | None = None) -> Payment:
    return Payment.initiate(
        payment_id=uuid.uuid4(),
        merchant_id="m-alpha",
        amount=amount or jpy(1000),
        payment_method=CARD,
        description="order 42",
        initiated_by="user:1",
        now=NOW,
    )


def _build(status: str | None, *, amount: Money | None = None) -> Payment:
    """A payment in `status` (None: an aggregate no event was applied to), reached by legal commands only."""
    if status is None:
        return Payment(id=uuid.uuid4())
    payment = _initiated(amount)
    if status == CANCELLED:
        payment.cancel(reason="customer asked", now=NOW)
    elif status == FAILED:
        payment.fail(reason="declined", response_code="2500", card_network_response={}, now=NOW)
    elif status != INITIATED:
        payment.authorize(authorization_code="A1B2C3", card_network_response={"network": "test"}, now=NOW)
        if status in (CAPTURED, PARTIALLY_REFUNDED, REFUNDED):
            payment.capture(amount=None, settlement_date=SETTLES, now=NOW)
        if status == PARTIALLY_REFUNDED:
            payment.refund(refund_id=uuid.uuid4(), amount=jpy(300), reason="damaged", now=NOW)
        if status == REFUNDED:
            payment.refund(refund_id=uuid.uuid4(), amount=payment.refundable_amount, reason="returned", now=NOW)
    assert payment.status == status
    return _commit(payment)


ACTIONS = {
    "authorize": lambda p: p.authorize(authorization_code="Z9Y8X7", card_network_response={}, now=NOW),
    "fail": lambda p: p.fail(reason="declined", response_code="2051", card_network_response={}, now=NOW),
    "capture": lambda p: p.capture(amount=None, settlement_date=SETTLES, now=NOW),
    "refund": lambda p: p.refund(refund_id=uuid.uuid4(), amount=jpy(100), reason="", now=NOW),
    "cancel": lambda p: p.cancel(reason="", now=NOW),
}

# (status, action) -> (status after, event recorded).
LEGAL = {
    (INITIATED, "authorize"): (AUTHORIZED, PaymentAuthorized),
    (INITIATED, "fail"): (FAILED, PaymentFailed),
    (INITIATED, "cancel"): (CANCELLED, PaymentCancelled),
    (AUTHORIZED, "capture"): (CAPTURED, PaymentCaptured),
    (AUTHORIZED, "cancel"): (CANCELLED, PaymentCancelled),
    (CAPTURED, "refund"): (PARTIALLY_REFUNDED, PaymentRefunded),
    (PARTIALLY_REFUNDED, "refund"): (PARTIALLY_REFUNDED, PaymentRefunded),
}
# What each status refuses, written out by hand (not as the complement of LEGAL, which would restate it): the
# coverage test below then checks that the two tables together name every pair exactly once.
REFUSED = {
    None: ("authorize", "fail", "capture", "refund", "cancel"),
    INITIATED: ("capture", "refund"),
    AUTHORIZED: ("authorize", "fail", "refund"),
    CAPTURED: ("authorize", "fail", "capture", "cancel"),
    PARTIALLY_REFUNDED: ("authorize", "fail", "capture", "cancel"),
    REFUNDED: ("authorize", "fail", "capture", "refund", "cancel"),
    CANCELLED: ("authorize", "fail", "capture", "refund", "cancel"),
    FAILED: ("authorize", "fail", "capture", "refund", "cancel"),
}
ALL_STATUSES = (None, *STATUSES)
ILLEGAL = [(status, action) for status, actions in REFUSED.items() for action in actions]


def _label(status: str | None) -> str:
    return status or "blank"


# state machine --------------------------------------------------------------------------------------------
def test_statuses_are_the_documented_seven():
    assert set(STATUSES) == {INITIATED, AUTHORIZED, CAPTURED, PARTIALLY_REFUNDED, REFUNDED, CANCELLED, FAILED}


@pytest.mark.parametrize(("status", "action"), list(LEGAL), ids=[f"{s}-{a}" for s, a in LEGAL])
def test_legal_transition_records_one_event_and_moves_status(status, action):
    # given
    payment = _build(status)
    version = payment.version
    # when
    ACTIONS[action](payment)
    # then
    expected_status, expected_event = LEGAL[(status, action)]
    assert payment.status == expected_status
    assert [type(e) for e in payment.pending_events] == [expected_event]
    assert payment.version == version, "the version moves only when the events are saved"


@pytest.mark.parametrize(("status", "action"), ILLEGAL, ids=[f"{_label(s)}-{a}" for s, a in ILLEGAL])
def test_illegal_transition_raises_invalid_transition_and_changes_nothing(status, action):
    # given
    payment = _build(status)
    before = copy.deepcopy(payment)
    # when
    with pytest.raises(InvalidTransition) as caught:
        ACTIONS[action](payment)
    # then
    assert caught.value.code == "invalid_transition"
    assert caught.value.status == status
    assert payment == before
    assert payment.pending_events == []


def test_every_status_and_action_pair_is_either_legal_or_refused_once():
    pairs = [*LEGAL, *ILLEGAL]
    assert len(pairs) == len(set(pairs)), "a pair is both legal and refused, or refused twice"
    assert set(pairs) == {(status, action) for status in ALL_STATUSES for action in ACTIONS}


def test_invalid_transition_message_names_action_and_status():
    with pytest.raises(InvalidTransition, match="cannot capture a payment that is cancelled"):
        _build(CANCELLED).capture(amount=None, settlement_date=SETTLES, now=NOW)
    with pytest.raises(InvalidTransition, match="cannot refund a payment that is not initiated"):
        ACTIONS["refund"](_build(None))


def test_fail_from_anything_but_initiated_is_an_invalid_authorize():
    # A decline is the outcome of an authorization: it is refused where an authorization would be.
    with pytest.raises(InvalidTransition) as caught:
        ACTIONS["fail"](_build(AUTHORIZED))
    assert caught.value.action == "authorize"


# initiate -------------------------------------------------------------------------------------------------
def test_initiate_records_payment_initiated_with_card_summary():
    payment = _initiated(jpy(1500))
    assert payment.status == INITIATED
    assert payment.version == 0
    [event] = payment.pending_events
    assert isinstance(event, PaymentInitiated)
    assert event.payment_id == payment.id
    assert event.amount == jpy(1500)
    assert event.payment_method == {"token": "tok_visa", "brand": "visa", "last4": "4242"}
    assert payment.authorized_amount == payment.captured_amount == payment.refunded_amount == jpy(0)
    assert payment.created_at == NOW


@pytest.mark.parametrize("minor", [0, -1, -1000])
def test_initiate_non_positive_amount_raises_invalid_amount(minor):
    with pytest.raises(InvalidAmount):
        _initiated(jpy(minor))


def test_initiate_without_merchant_raises_payment_error():
    with pytest.raises(PaymentError, match="merchant"):
        Payment.initiate(
            payment_id=uuid.uuid4(),
            merchant_id="",
            amount=jpy(100),
            payment_method=CARD,
            description="",
            initiated_by="user:1",
            now=NOW,
        )


# authorize / fail -----------------------------------------------------------------------------------------
def test_authorize_authorizes_the_whole_amount():
    payment = _build(INITIATED, amount=Money(1234, "USD"))
    payment.authorize(authorization_code="ABC123", card_network_response={"rc": "00"}, now=NOW)
    assert payment.authorized_amount == Money(1234, "USD")
    assert payment.authorization_code == "ABC123"
    assert payment.pending_events[0].authorized_amount == Money(1234, "USD")


def test_fail_keeps_the_response_code():
    payment = _build(INITIATED)
    payment.fail(reason="declined", response_code="2500", card_network_response={}, now=NOW)
    assert payment.status == FAILED
    assert payment.failure_code == "2500"
    assert payment.authorized_amount == jpy(0)


# capture --------------------------------------------------------------------------------------------------
def test_capture_without_amount_captures_everything_authorized():
    payment = _build(AUTHORIZED)
    payment.capture(amount=None, settlement_date=SETTLES, now=NOW)
    assert payment.captured_amount == jpy(1000)
    assert payment.pending_events[0].settlement_date == SETTLES


def test_capture_partial_amount_leaves_only_that_to_refund():
    # given
    payment = _build(AUTHORIZED)
    # when
    payment.capture(amount=jpy(600), settlement_date=SETTLES, now=NOW)
    # then
    assert payment.status == CAPTURED
    assert payment.captured_amount == jpy(600)
    assert payment.refundable_amount == jpy(600)
    with pytest.raises(InvalidAmount):
        payment.refund(refund_id=uuid.uuid4(), amount=jpy(601), reason="", now=NOW)


def test_capture_exactly_the_authorized_amount_is_allowed():
    payment = _build(AUTHORIZED)
    payment.capture(amount=jpy(1000), settlement_date=SETTLES, now=NOW)
    assert payment.captured_amount == jpy(1000)


def test_capture_twice_raises_invalid_transition():
    payment = _build(AUTHORIZED)
    payment.capture(amount=jpy(400), settlement_date=SETTLES, now=NOW)
    with pytest.raises(InvalidTransition):
        payment.capture(amount=jpy(400), settlement_date=SETTLES, now=NOW)


@pytest.mark.parametrize(
    "amount",
    [jpy(1001), jpy(0), jpy(-5), Money(1000, "USD"), Money(500, "EUR")],
    ids=["above-authorized", "zero", "negative", "other-currency-same-minor", "other-currency-smaller"],
)
def test_capture_bad_amount_raises_invalid_amount_and_changes_nothing(amount):
    payment = _build(AUTHORIZED)
    before = copy.deepcopy(payment)
    with pytest.raises(InvalidAmount):
        payment.capture(amount=amount, settlement_date=SETTLES, now=NOW)
    assert payment == before


# refund ---------------------------------------------------------------------------------------------------
def test_refund_several_partial_refunds_up_to_captured_ends_refunded():
    # given
    payment = _build(CAPTURED)
    # when / then
    for minor, refunded, status in [(100, 100, PARTIALLY_REFUNDED), (250, 350, PARTIALLY_REFUNDED)]:
        payment.refund(refund_id=uuid.uuid4(), amount=jpy(minor), reason="", now=NOW)
        assert payment.refunded_amount == jpy(refunded)
        assert payment.status == status
    payment.refund(refund_id=uuid.uuid4(), amount=jpy(650), reason="rest", now=NOW)
    assert payment.status == REFUNDED
    assert payment.refunded_amount == payment.captured_amount == jpy(1000)
    assert payment.refundable_amount == jpy(0)
    assert [type(e) for e in payment.pending_events] == [PaymentRefunded] * 3
    assert len({e.refund_id for e in payment.pending_events}) == 3


def test_refund_of_a_partial_capture_ends_refunded_at_the_captured_amount():
    payment = _build(AUTHORIZED)
    payment.capture(amount=jpy(700), settlement_date=SETTLES, now=NOW)
    payment.refund(refund_id=uuid.uuid4(), amount=jpy(200), reason="", now=NOW)
    payment.refund(refund_id=uuid.uuid4(), amount=jpy(500), reason="", now=NOW)
    assert payment.status == REFUNDED


def test_refund_in_one_go_ends_refunded():
    payment = _build(CAPTURED)
    payment.refund(refund_id=uuid.uuid4(), amount=jpy(1000), reason="", now=NOW)
    assert payment.status == REFUNDED


@pytest.mark.parametrize(
    ("status", "amount"),
    [
        (CAPTURED, jpy(1001)),
        (PARTIALLY_REFUNDED, jpy(701)),
        (CAPTURED, jpy(0)),
        (CAPTURED, jpy(-1)),
        (CAPTURED, Money(100, "USD")),
        (PARTIALLY_REFUNDED, Money(100, "KWD")),
    ],
    ids=["above-captured", "above-remaining", "zero", "negative", "other-currency", "other-currency-partial"],
)
def test_refund_bad_amount_raises_invalid_amount_and_changes_nothing(status, amount):
    payment = _build(status)
    before = copy.deepcopy(payment)
    with pytest.raises(InvalidAmount):
        payment.refund(refund_id=uuid.uuid4(), amount=amount, reason="", now=NOW)
    assert payment == before


@settings(deadline=None, database=None)
@given(
    captured=st.integers(min_value=1, max_value=10_000),
    parts=st.lists(st.integers(min_value=-5, max_value=4_000), max_size=12),
)
def test_refunds_never_exceed_the_captured_amount(captured, parts):
    # given an authorized payment captured (in part or in full), its whole history kept pending
    payment = _initiated(jpy(10_000))
    ACTIONS["authorize"](payment)
    payment.capture(amount=jpy(captured), settlement_date=SETTLES, now=NOW)
    # when any sequence of refunds is attempted
    for minor in parts:
        try:
            payment.refund(refund_id=uuid.uuid4(), amount=jpy(minor), reason="", now=NOW)
        except (InvalidAmount, InvalidTransition):
            pass
    # then what was refunded is what the accepted events say, never more than captured
    accepted = [e.refunded_amount.minor for e in payment.pending_events if isinstance(e, PaymentRefunded)]
    assert payment.refunded_amount == jpy(sum(accepted)) <= jpy(captured)
    assert all(minor > 0 for minor in accepted)
    expected = REFUNDED if sum(accepted) == captured else (PARTIALLY_REFUNDED if accepted else CAPTURED)
    assert payment.status == expected
    assert _rebuilt(payment) == _committed_copy(payment)


# cancel ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [INITIATED, AUTHORIZED])
def test_cancel_before_capture_cancels(status):
    payment = _build(status)
    payment.cancel(reason="customer asked", now=NOW)
    assert payment.status == CANCELLED
    assert payment.pending_events[0].reason == "customer asked"


# rebuilding and versions ----------------------------------------------------------------------------------
def _history(payment: Payment) -> list:
    return list(payment.pending_events)


def _committed_copy(payment: Payment) -> Payment:
    return _commit(copy.deepcopy(payment))


def _rebuilt(payment: Payment) -> Payment:
    return Payment.from_events(payment.id, _history(payment))


def _full_history(status: str) -> Payment:
    """Like _build, but with every event still pending so the whole history can be replayed."""
    payment = _initiated()
    for action in {
        INITIATED: [],
        AUTHORIZED: ["authorize"],
        CAPTURED: ["authorize", "capture"],
        PARTIALLY_REFUNDED: ["authorize", "capture", "refund"],
        REFUNDED: ["authorize", "capture", "refund"],
        CANCELLED: ["authorize", "cancel"],
        FAILED: ["fail"],
    }[status]:
        ACTIONS[action](payment)
    if status == REFUNDED:
        payment.refund(refund_id=uuid.uuid4(), amount=payment.refundable_amount, reason="", now=NOW)
    assert payment.status == status
    return payment


@pytest.mark.parametrize("status", STATUSES)
def test_from_events_rebuilds_the_same_state(status):
    # given the history that led to a status
    payment = _full_history(status)
    # when it is replayed
    rebuilt = _rebuilt(payment)
    # then the state is the one the commands produced, at a version counting every event
    assert rebuilt == _committed_copy(payment)
    assert rebuilt.version == len(payment.pending_events)
    assert rebuilt.pending_events == []


@pytest.mark.parametrize("status", STATUSES)
def test_from_events_after_a_json_round_trip_rebuilds_the_same_state(status):
    # given events as the store keeps them (JSON data, occurred_at apart)
    payment = _full_history(status)
    stored = [
        (e.event_type, e.event_version, json.loads(json.dumps(e.to_data())), e.occurred_at)
        for e in payment.pending_events
    ]
    # when they are decoded and replayed
    events = [decode_event(t, v, data, occurred_at=at) for t, v, data, at in stored]
    # then
    assert events == payment.pending_events
    assert Payment.from_events(payment.id, events) == _committed_copy(payment)


def test_from_events_of_nothing_is_a_blank_payment():
    payment_id = uuid.uuid4()
    payment = Payment.from_events(payment_id, [])
    assert payment.version == 0
    assert payment.status is None


def test_version_counts_saved_events_only():
    # given
    payment = _initiated()
    assert payment.version == 0
    _commit(payment)
    assert payment.version == 1
    # when two commands are decided before one save
    ACTIONS["authorize"](payment)
    ACTIONS["capture"](payment)
    # then
    assert payment.version == 1
    assert len(payment.pending_events) == 2
    _commit(payment)
    assert payment.version == 3
    # and a failed command adds nothing
    with pytest.raises(InvalidTransition):
        ACTIONS["authorize"](payment)
    assert payment.version == 3
    assert payment.pending_events == []


def test_version_of_a_rebuilt_payment_continues_from_the_stream():
    payment = _full_history(PARTIALLY_REFUNDED)
    rebuilt = _rebuilt(payment)
    assert rebuilt.version == 4
    ACTIONS["refund"](rebuilt)
    _commit(rebuilt)
    assert rebuilt.version == 5


def test_from_events_rejects_a_foreign_event():
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class NotAPaymentEvent:
        occurred_at: dt.datetime

    with pytest.raises(TypeError):
        Payment.from_events(uuid.uuid4(), [NotAPaymentEvent(occurred_at=NOW)])


# events ---------------------------------------------------------------------------------------------------
def test_events_are_immutable():
    [event] = _initiated().pending_events
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.amount = jpy(1)


def test_events_carry_no_card_number():
    [event] = _initiated().pending_events
    assert set(event.payment_method) == {"token", "brand", "last4"}


def test_payment_initiated_v1_is_upcast_to_v2():
    # given the seed's shape: a bare token, no description
    data = {
        "payment_id": str(uuid.uuid4()),
        "merchant_id": "m-alpha",
        "amount": {"amount": 500, "currency": "JPY"},
        "payment_method": "tok_visa",
        "initiated_by": "user:1",
    }
    # when
    event = decode_event("PaymentInitiated", 1, data, occurred_at=NOW)
    # then
    assert event.payment_method == {"token": "tok_visa", "brand": "unknown", "last4": ""}
    assert event.description == ""
    payment = Payment.from_events(event.payment_id, [event])
    assert payment.status == INITIATED
    assert payment.payment_method == PaymentMethod(token="tok_visa", brand="unknown", last4="")
