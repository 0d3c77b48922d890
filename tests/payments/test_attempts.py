"""Every authorization asked of the acquirer is on record before it is asked, and one whose answer nobody
recorded (a lost answer, a crash) is settled with the acquirer: replayed to a retry, or voided by the recovery
job. The attempts and the simulator's answers are committed on connections of their own, so these tests see
what another process would."""

from __future__ import annotations

import datetime as dt
import io
import uuid

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction

from payments import services
from payments.domain import AUTHORIZED, CANCELLED, FAILED, INITIATED
from payments.gateway import LOST_ANSWER_AMOUNT, NETWORK_ERROR_AMOUNT, AcquirerUnavailable, SimulatorGateway
from payments.models import AuthorizationAttempt as Attempt
from payments.models import SimulatedAuthorization
from tests.payments.helpers import ACTOR, RecordingGateway
from vault.models import DetokenizationAudit

NOW = dt.timedelta(0)


def _attempts(payment_id) -> list[tuple[str, str, str]]:
    """(key, outcome, resolved_by) of the payment's attempts."""
    return list(
        Attempt.objects.filter(payment_id=payment_id)
        .order_by("payment_version", "number")
        .values_list("idempotency_key", "outcome", "resolved_by")
    )


def _committed_attempts(payment_id) -> list[tuple[str, str, str]]:
    """The same, as another connection sees them."""
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as other:
        return other.execute(
            "SELECT idempotency_key, outcome, resolved_by FROM payments_authorizationattempt "
            "WHERE payment_id = %s ORDER BY payment_version, number",
            [payment_id],
        ).fetchall()


def _types(payment_id) -> list[str]:
    return [e.event_type for e in services.eventstore.load(payment_id)]


@pytest.fixture
def lost(make_payment, monkeypatch):
    """A payment whose authorization's answer was lost on the way back: the acquirer decided (approved, or
    declined at 2500), the caller heard nothing. Later calls to the acquirer are heard."""

    def make(amount: int = 1000):
        payment = make_payment(INITIATED, amount=amount)
        monkeypatch.setattr(services, "_gateway", RecordingGateway(lost_answers=1))
        with pytest.raises(AcquirerUnavailable):
            services.payment_authorize(payment_id=payment.id, actor=ACTOR)
        return payment

    return make


# the record of an attempt -----------------------------------------------------------------------------------
def test_attempt_is_committed_before_the_acquirer_is_asked(make_payment, monkeypatch):
    # given a gateway that looks, from another connection, for the attempt while the acquirer is asked
    payment = make_payment(INITIATED)
    seen = []
    gateway = RecordingGateway(during=lambda request: seen.extend(_committed_attempts(request.payment_id)))
    monkeypatch.setattr(services, "_gateway", gateway)
    # when the payment is authorized
    services.payment_authorize(payment_id=payment.id, actor=ACTOR)
    # then the attempt was on record, open, under the key the acquirer got
    assert seen == [(f"{payment.id}:1:1", Attempt.OPEN, "")]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("amount", "status", "outcome"), [(1000, AUTHORIZED, "approved"), (2500, FAILED, "declined")])
def test_attempt_outcome_commits_with_the_answer(make_payment, amount, status, outcome):
    payment = make_payment(INITIATED, amount=amount)
    assert services.payment_authorize(payment_id=payment.id, actor=ACTOR).status == status
    assert _committed_attempts(payment.id) == [(f"{payment.id}:1:1", outcome, Attempt.BY_COMMAND)]


def test_attempt_outcome_is_set_once_and_the_record_is_never_deleted(make_payment):
    payment = make_payment(AUTHORIZED)
    attempt = Attempt.objects.get(payment_id=payment.id)
    for change in (
        lambda: Attempt.objects.filter(id=attempt.id).update(outcome=Attempt.VOIDED),
        lambda: Attempt.objects.filter(id=attempt.id).update(amount=1),
        lambda: Attempt.objects.filter(id=attempt.id).delete(),
    ):
        with pytest.raises(IntegrityError, match="authorization attempt"), transaction.atomic():
            change()


# a lost answer ------------------------------------------------------------------------------------------------
def test_lost_answer_leaves_the_payment_initiated_and_the_attempt_open(make_payment):
    # given the simulator's amount whose answer is lost
    payment = make_payment(INITIATED, amount=LOST_ANSWER_AMOUNT)
    # when it is authorized, then the caller hears nothing
    with pytest.raises(AcquirerUnavailable):
        services.payment_authorize(payment_id=payment.id, actor=ACTOR)
    # and nothing is recorded on the payment, while the attempt stays open and the acquirer approved it
    assert _types(payment.id) == ["PaymentInitiated"]
    assert _committed_attempts(payment.id) == [(f"{payment.id}:1:1", Attempt.OPEN, "")]
    assert SimulatorGateway().query(f"{payment.id}:1:1").approved


def test_retry_after_a_lost_answer_records_that_approval_without_a_second_one(lost):
    # given an approval lost on the way back
    payment = lost()
    lost = SimulatorGateway().query(f"{payment.id}:1:1")
    # when the authorization is retried
    authorized = services.payment_authorize(payment_id=payment.id, actor=ACTOR)
    # then the approval the acquirer gave is the one recorded, the card was read once, and the attempt is closed
    assert authorized.status == AUTHORIZED
    assert authorized.authorization_code == lost.authorization_code
    assert DetokenizationAudit.objects.filter(token=payment.payment_method.token, outcome="granted").count() == 1
    assert [outcome for _, outcome, _ in _attempts(payment.id)] == [Attempt.APPROVED]


# recovery -----------------------------------------------------------------------------------------------------
def test_recovery_voids_an_approval_nobody_recorded(lost, no_leftover_attempts):
    # given an approval lost on the way back, and nobody retrying
    payment = lost()
    key = f"{payment.id}:1:1"
    # when the recovery job runs
    recovered = services.payment_authorizations_recover(older_than=NOW)
    # then it voided the approval at the acquirer and closed the attempt; the payment is as recorded
    assert [(r.idempotency_key, r.outcome) for r in recovered] == [(key, Attempt.VOIDED)]
    assert SimulatedAuthorization.objects.get(idempotency_key=key).voided_at is not None
    assert _attempts(payment.id) == [(key, Attempt.VOIDED, Attempt.BY_RECOVERY)]
    assert _types(payment.id) == ["PaymentInitiated"]
    # and a second run has nothing left to do
    assert services.payment_authorizations_recover(older_than=NOW) == []


def test_after_a_void_the_payment_is_authorized_afresh_under_a_new_key(lost, no_leftover_attempts, monkeypatch):
    # given a lost approval the recovery voided
    payment = lost()
    services.payment_authorizations_recover(older_than=NOW)
    voided = SimulatorGateway().query(f"{payment.id}:1:1")
    # when the payment is authorized again
    gateway = RecordingGateway()
    monkeypatch.setattr(services, "_gateway", gateway)
    authorized = services.payment_authorize(payment_id=payment.id, actor=ACTOR)
    # then it is a second attempt, a new authorization, not the voided one replayed
    assert [r.idempotency_key for r in gateway.requests] == [f"{payment.id}:1:2"]
    assert authorized.status == AUTHORIZED
    assert authorized.authorization_code != voided.authorization_code
    assert [o for _, o, _ in _attempts(payment.id)] == [Attempt.VOIDED, Attempt.APPROVED]


def test_recovery_voids_the_approval_of_a_payment_cancelled_meanwhile(lost, no_leftover_attempts):
    payment = lost()
    assert services.payment_cancel(payment_id=payment.id, actor=ACTOR).status == CANCELLED
    [recovered] = services.payment_authorizations_recover(older_than=NOW)
    assert recovered.outcome == Attempt.VOIDED


@pytest.mark.parametrize(
    ("amount", "outcome"), [(NETWORK_ERROR_AMOUNT, Attempt.NOT_RECEIVED), (LOST_ANSWER_AMOUNT, Attempt.VOIDED)]
)
def test_recovery_asks_the_acquirer_what_became_of_the_request(make_payment, no_leftover_attempts, amount, outcome):
    # given the simulator's amounts of a request that never arrived, and of an approval whose answer is lost
    payment = make_payment(INITIATED, amount=amount)
    with pytest.raises(AcquirerUnavailable):
        services.payment_authorize(payment_id=payment.id, actor=ACTOR)
    # when, then
    [recovered] = services.payment_authorizations_recover(older_than=NOW)
    assert recovered.outcome == outcome


def test_recovery_closes_a_lost_decline_without_a_void(lost, no_leftover_attempts):
    # given a decline whose answer was lost
    lost(2500)
    # when, then
    [recovered] = services.payment_authorizations_recover(older_than=NOW)
    assert recovered.outcome == Attempt.DECLINED
    assert SimulatedAuthorization.objects.get(idempotency_key=recovered.idempotency_key).voided_at is None


def test_recovery_leaves_recent_attempts_for_a_retry(lost, no_leftover_attempts):
    payment = lost()
    assert services.payment_authorizations_recover(older_than=dt.timedelta(minutes=1)) == []
    assert _attempts(payment.id)[0][1] == Attempt.OPEN


def test_recovery_skips_a_payment_being_authorized_right_now(lost, no_leftover_attempts):
    # given an open attempt whose payment's lock another session holds (an authorization in flight)
    payment = lost()
    with psycopg.connect(**connection.get_connection_params()) as other:
        other.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"payment:{payment.id}"])
        # when the recovery runs, then it neither waits nor touches the attempt
        assert services.payment_authorizations_recover(older_than=NOW) == []
    assert _attempts(payment.id)[0][1] == Attempt.OPEN


class _Unreachable(SimulatorGateway):
    def query(self, idempotency_key):
        raise AcquirerUnavailable("the acquirer did not answer")


def test_recovery_leaves_an_attempt_open_while_the_acquirer_cannot_be_asked(lost, no_leftover_attempts, monkeypatch):
    payment = lost()
    monkeypatch.setattr(services, "_gateway", _Unreachable())
    assert services.payment_authorizations_recover(older_than=NOW) == []
    assert _attempts(payment.id)[0][1] == Attempt.OPEN


def test_recover_authorizations_command_reports_what_it_settled(lost, no_leftover_attempts):
    payment = lost()
    out = io.StringIO()
    call_command("recover_authorizations", "--older-than", "0", stdout=out)
    assert out.getvalue().splitlines() == [f"{payment.id}:1:1: voided", "1 attempt(s) settled"]


def test_recover_authorizations_command_refuses_a_negative_age(db):
    with pytest.raises(CommandError, match="negative"):
        call_command("recover_authorizations", "--older-than", "-1")


def test_attempt_key_is_unique_per_payment_version_and_number(db):
    # the key names one attempt: the same payment, version and number cannot be recorded twice
    payment_id = uuid.uuid4()
    fields = {"merchant_id": "m", "amount": 1, "currency": "JPY", "started_at": dt.datetime.now(dt.UTC)}
    Attempt.objects.create(payment_id=payment_id, payment_version=1, number=1, idempotency_key="a", **fields)
    with pytest.raises(IntegrityError), transaction.atomic():
        Attempt.objects.create(payment_id=payment_id, payment_version=1, number=1, idempotency_key="b", **fields)
