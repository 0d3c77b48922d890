"""The web process dies between the acquirer's approval and the commit (SIGKILL, in a real server): nothing is
recorded on the payment, but the attempt is, so the approval is never left unaccounted for at the card network:
the client's retry gets it replayed and recorded, or the recovery job voids it."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from accounts.services import api_token_issue
from fintech.models import IdempotencyRecord
from payments import services
from payments.domain import AUTHORIZED
from payments.gateway import SimulatorGateway
from payments.models import AuthorizationAttempt as Attempt
from payments.models import SimulatedAuthorization
from tests.integration.conftest import database_url, wait_for
from tests.payments.helpers import ACTOR, card_token, jpy
from tests.vault.helpers import api_client, unique_merchant_id
from vault.models import DetokenizationAudit

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

NOW = dt.timedelta(0)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """`manage.py runserver` on the test database, its acquirer dying after each approval."""

    def __init__(self, log: Path) -> None:
        self.port = _free_port()
        env = {
            **os.environ,
            "DATABASE_URL": database_url(settings.DATABASE_URL, connection.settings_dict["NAME"]),
            "PAYMENTS_ACQUIRER_GATEWAY": "tests.faults.gateways.DiesAfterApproval",
            "PROJECTIONS_WAKE_ON_COMMIT": "false",
            "DEBUG": "false",
        }
        command = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{self.port}", "--noreload"]
        with log.open("wb") as out:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
                command, cwd=settings.BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        self.log = log
        wait_for(self._answers, what="the server to answer", timeout=30)

    def _answers(self) -> bool:
        assert self.process.poll() is None, self.log.read_text()
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
        except OSError:
            return False
        return True

    def post(self, path: str, *, token: str, key: str) -> None:
        """POST that the server never answers: the connection drops when the process dies."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Authorization": f"Token {token}", "Idempotency-Key": key, "Content-Type": "application/json"}
        try:
            conn.request("POST", path, body=json.dumps({}), headers=headers)
            with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
                conn.getresponse()
        finally:
            conn.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


@pytest.fixture
def crashed(tmp_path, no_leftover_attempts) -> tuple:
    """A payment whose authorization request killed the server between the acquirer's approval and the commit:
    (payment, the client's token, the request's Idempotency-Key, the acquirer's key)."""
    merchant_id = unique_merchant_id()
    token = api_token_issue(username=f"user-{merchant_id}", merchant_id=merchant_id)
    payment = services.payment_initiate(
        merchant_id=merchant_id, amount=jpy(1000), payment_method_token=card_token(merchant_id), actor=ACTOR
    )
    server = Server(tmp_path / "server.log")
    try:
        server.post(f"/api/v1/payments/{payment.id}/authorize", token=token, key="crash-1")
        server.process.wait(timeout=10)
    finally:
        server.stop()
    assert server.process.returncode == -9, server.log.read_text()
    return payment, token, "crash-1", f"{payment.id}:1:1"


def test_killed_between_approval_and_commit_leaves_the_attempt_and_nothing_else(crashed):
    payment, _, request_key, key = crashed
    # then the payment is as it was, and no answer of the request is stored to be replayed
    assert [e.event_type for e in services.eventstore.load(payment.id)] == ["PaymentInitiated"]
    assert not IdempotencyRecord.objects.filter(key=request_key).exists()
    # but the attempt is on record, open, and the acquirer holds an approval for it
    assert list(Attempt.objects.filter(payment_id=payment.id).values_list("idempotency_key", "outcome")) == [
        (key, Attempt.OPEN)
    ]
    assert SimulatorGateway().query(key).approved


def test_client_retry_after_the_crash_records_the_approval_the_acquirer_gave(crashed):
    payment, token, request_key, key = crashed
    approval = SimulatorGateway().query(key)
    # when the client retries its request with the same Idempotency-Key, on a healthy server
    response = api_client(token).post(
        f"/api/v1/payments/{payment.id}/authorize", {}, format="json", headers={"Idempotency-Key": request_key}
    )
    # then it runs once: the acquirer's approval is replayed and recorded, the card read once in all
    assert response.status_code == 200, response.content
    assert response.json()["status"] == AUTHORIZED
    assert services.payment_load(payment_id=payment.id).authorization_code == approval.authorization_code
    assert Attempt.objects.get(idempotency_key=key).outcome == Attempt.APPROVED
    assert DetokenizationAudit.objects.filter(token=payment.payment_method.token, outcome="granted").count() == 1
    # and nothing is left for the recovery job
    assert services.payment_authorizations_recover(older_than=NOW) == []


def test_recovery_after_the_crash_voids_the_approval_nobody_recorded(crashed):
    payment, _, _, key = crashed
    # when nobody retries and the recovery job runs
    recovered = services.payment_authorizations_recover(older_than=NOW)
    # then the approval is voided at the acquirer, and the payment may be authorized afresh
    assert [(r.idempotency_key, r.outcome) for r in recovered] == [(key, Attempt.VOIDED)]
    assert SimulatedAuthorization.objects.get(idempotency_key=key).voided_at is not None
    authorized = services.payment_authorize(payment_id=payment.id, actor=ACTOR)
    assert authorized.status == AUTHORIZED
    assert Attempt.objects.get(payment_id=payment.id, number=2).outcome == Attempt.APPROVED
