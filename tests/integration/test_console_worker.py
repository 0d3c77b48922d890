"""The console's operations on a real worker: an operator's replay from the projections page is taken by the
worker, writes its progress as it goes and ends done, with the read model rebuilt."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from console.models import Operation
from fintech.money import Money
from payments import services
from projections.models import PaymentView
from tests.integration.conftest import wait_for
from tests.integration.helpers import ACTOR, card_token, unique_merchant_id
from tests.staff import staff_login

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _operator() -> Client:
    user = get_user_model().objects.create_user(f"op-{uuid.uuid4().hex[:8]}", is_staff=True, is_superuser=True)
    return staff_login(Client(), user)


def test_replay_started_from_the_console_runs_on_the_worker_with_progress(worker):
    # given payments the worker has projected
    merchant = unique_merchant_id("console")
    token = card_token(merchant)
    made = [
        services.payment_initiate(
            merchant_id=merchant, amount=Money(1000 + i, "JPY"), payment_method_token=token, actor=ACTOR
        )
        for i in range(5)
    ]
    worker.start()
    wait_for(
        lambda: PaymentView.objects.filter(merchant_id=merchant).count() == len(made),
        what="the payments projected",
        worker=worker,
    )
    # when an operator asks for a replay from the projections page
    response = _operator().post("/admin/console/projections/payments/replay/")
    assert response.status_code == 302
    operation = Operation.objects.get()
    # then the worker runs it to the end, its progress written, and the rows are all there
    wait_for(
        lambda: Operation.objects.filter(id=operation.id, state="done").exists(),
        what="the replay done",
        timeout=60,
        worker=worker,
    )
    operation.refresh_from_db()
    assert operation.done > 0
    assert operation.remaining == 0
    assert operation.started_at is not None
    assert operation.result == f"replayed {operation.done} events and swapped the tables in"
    assert PaymentView.objects.filter(merchant_id=merchant).count() == len(made)
