"""The projection and reconciliation pages: replay a projection, rebuild its cache or reconcile, run by Celery with
their progress recorded; one of a kind at a time, a cut-off one abandoned, a broker that does not take it said
so; only the operators replay and rebuild, finance and the operators reconcile, auditors read."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from console.models import Operation
from fintech.models import StaffAuditRecord
from ledger.models import ReconciliationRun
from projections import services as projections_services
from projections.models import PaymentView
from tests.integration.conftest import _switch_broker

pytestmark = pytest.mark.django_db(transaction=True)

PROJECTIONS = "/admin/console/projections/"
RECONCILIATION = "/admin/console/reconciliation/"


def _start(client, name: str, kind: str):
    return client.post(f"{PROJECTIONS}{name}/{kind}/", follow=True)


def _messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_operator_replays_a_projection_from_the_console(staff, pay, project, tasks_at_once):
    payment = pay(7000)
    project()
    client = staff(None, superuser=True)
    PaymentView.objects.filter(payment_id=payment.id).delete()
    # when an operator asks for a replay of the payments read model
    response = _start(client, "payments", "replay")
    # then it ran, the row is back, and the page shows the operation done with its progress
    operation = Operation.objects.get()
    assert (operation.kind, operation.target, operation.state) == ("replay", "payments", "done")
    assert operation.result.startswith("replayed ")
    assert operation.done > 0
    assert operation.remaining == 0
    assert operation.requested_by == client.user.username
    assert PaymentView.objects.filter(payment_id=payment.id).exists()
    assert 'data-state="done"' in response.content.decode()
    # and the command is in the staff audit trail
    assert StaffAuditRecord.objects.filter(
        username=client.user.username, action="command", object="console.replay", detail="payments"
    ).exists()


def test_rebuild_cache_from_the_console(staff, pay, project, tasks_at_once):
    pay(7000)
    project()
    client = staff(None, superuser=True)
    _start(client, "payments", "rebuild_cache")
    operation = Operation.objects.get()
    assert operation.state == "done", operation.error
    assert operation.result.startswith("wrote ")


def test_a_second_replay_while_one_is_open_is_refused(staff):
    client = staff(None, superuser=True)
    open_one = Operation.objects.create(
        kind="replay",
        target="payments",
        requested_by="other",
        requested_at=timezone.now(),
        state="running",
        heartbeat_at=timezone.now(),
    )
    response = _start(client, "payments", "replay")
    assert _messages(response) == ["replay projection payments is already queued or running"]
    assert list(Operation.objects.values_list("id", flat=True)) == [open_one.id]


def test_an_operation_cut_off_long_ago_is_abandoned_and_a_new_one_runs(staff, tasks_at_once):
    client = staff(None, superuser=True)
    long_ago = timezone.now() - dt.timedelta(seconds=settings.CONSOLE_OPERATION_STALE_SECONDS + 60)
    stale = Operation.objects.create(
        kind="replay",
        target="payments",
        requested_by="other",
        requested_at=long_ago,
        state="running",
        heartbeat_at=long_ago,
    )
    _start(client, "payments", "replay")
    stale.refresh_from_db()
    assert stale.state == "failed"
    assert stale.error.startswith("abandoned: no progress since ")
    assert Operation.objects.exclude(id=stale.id).get().state == "done"


def test_replay_refused_while_another_connection_replays(staff, tasks_at_once):
    # given another session (the command on a server) replaying the payments read model: it holds the lock
    params = connection.get_connection_params()
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(hashtextextended('projection-replay:payments', 0))")
        with pytest.raises(projections_services.ReplayRunning):
            projections_services.projection_replay(name="payments")
        # and from the console, the operation fails saying why, leaving the live tables alone
        _start(staff(None, superuser=True), "payments", "replay")
        operation = Operation.objects.get()
        assert operation.state == "failed"
        assert operation.error == "ReplayRunning: a replay of payments is already running"
        # (released here: a closed session's locks go when its server process ends, a moment later)
        other.execute("SELECT pg_advisory_unlock(hashtextextended('projection-replay:payments', 0))")
    # once it is released, a replay runs
    assert projections_services.projection_replay(name="payments") >= 0


def test_broker_that_does_not_take_the_task_fails_the_operation_saying_so(staff):
    client = staff(None, superuser=True)
    previous = settings.CELERY_BROKER_URL
    _switch_broker("redis://127.0.0.1:1/0")
    try:
        response = _start(client, "payments", "replay")
    finally:
        _switch_broker(previous)
    assert response.status_code == 200
    operation = Operation.objects.get()
    assert operation.state == "failed"
    assert operation.error.startswith("the task queue did not take it")


def test_unknown_or_unsuitable_targets_are_refused(staff):
    client = staff(None, superuser=True)
    assert _messages(_start(client, "nope", "replay")) == ["no projection named 'nope'"]
    assert _messages(_start(client, "ledger_bookings", "replay")) == [
        "ledger_bookings is a process manager, not a read model: it is never replayed"
    ]
    assert _start(client, "payments", "drop_tables").status_code == 403
    assert not Operation.objects.exists()


@pytest.mark.parametrize("role", ["support", "finance", "cde", "auditor"])
def test_only_operators_replay_or_rebuild(staff, role):
    client = staff(role)
    for kind in ("replay", "rebuild_cache"):
        assert client.post(f"{PROJECTIONS}payments/{kind}/").status_code == 403
    assert not Operation.objects.exists()


def test_auditor_reads_the_projection_page_without_actions(staff):
    page = staff("auditor").get(PROJECTIONS).content.decode()
    assert 'id="projection-payments"' in page
    assert 'value="Replay"' not in page
    operator_page = staff(None, superuser=True).get(PROJECTIONS).content.decode()
    assert 'value="Replay"' in operator_page
    assert 'value="Rebuild cache"' in operator_page
    assert staff("finance").get(PROJECTIONS).status_code == 403
    assert staff("support").get(PROJECTIONS).status_code == 403


def test_finance_runs_a_reconciliation_and_sees_its_verdict(staff, tasks_at_once):
    client = staff("finance")
    response = client.post(f"{RECONCILIATION}run/", follow=True)
    run = ReconciliationRun.objects.order_by("-id").first()
    assert run.actor == f"{client.user.username} (console)"
    operation = Operation.objects.get()
    assert (operation.kind, operation.state) == ("reconcile", "done")
    page = response.content.decode()
    assert 'id="reconciliation-verdict"' in page
    assert ("the ledger reconciles" in page) == run.ok
    assert f"{run.id}" in operation.result


def test_auditor_reads_verdicts_but_does_not_run_them(staff):
    client = staff("auditor")
    assert client.get(RECONCILIATION).status_code == 200
    assert 'value="Run reconciliation"' not in client.get(RECONCILIATION).content.decode()
    assert client.post(f"{RECONCILIATION}run/").status_code == 403
    assert staff("support").get(RECONCILIATION).status_code == 403
    assert not Operation.objects.exists()
