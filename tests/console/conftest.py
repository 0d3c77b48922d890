"""Fixtures of the console's tests: staff of each role, logged in through TOTP, and payments built through the
services and projected."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from fintech.celery import app as celery_app
from fintech.money import Money
from payments import services as payments
from projections.engine import projection_run
from tests.staff import staff_login
from vault import services as vault

ACTOR = "user:console-test"


@pytest.fixture
def staff() -> Callable[..., Client]:
    """A client logged in (password and TOTP) as a new staff user of a role, or a superuser (role None)."""

    def login(role: str | None, *, superuser: bool = False) -> Client:
        vault.role_groups_ensure()
        user = get_user_model().objects.create_user(
            f"{role or 'root'}-{uuid.uuid4().hex[:8]}", password="x-test-only", is_staff=True, is_superuser=superuser
        )
        if role:
            user.groups.add(Group.objects.get(name=role))
        client = staff_login(Client(), user)
        client.user = user
        return client

    return login


@pytest.fixture
def merchant() -> str:
    # Events outlive every test: each works under a merchant of its own.
    return f"m-console-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def pay(merchant) -> Callable[..., object]:
    """A payment of `minor` JPY for the test's merchant, taken to `status` (initiated, failed, captured, refunded)
    through the services."""
    token = vault.card_tokenize(card_number="4242424242424242", exp_month=12, exp_year=2035, merchant_id=merchant).token

    def make(minor: int = 7000, status: str = "captured"):
        payment = payments.payment_initiate(
            merchant_id=merchant, amount=Money(minor, "JPY"), payment_method_token=token, actor=ACTOR
        )
        if status == "initiated":
            return payment
        payment = payments.payment_authorize(payment_id=payment.id, actor=ACTOR)
        if status in ("authorized", "failed"):
            return payment
        payment = payments.payment_capture(payment_id=payment.id, actor=ACTOR)
        if status == "refunded":
            payment = payments.payment_refund(payment_id=payment.id, amount=Money(1000, "JPY"), actor=ACTOR)
        return payment

    make.token = token
    return make


@pytest.fixture
def project() -> Callable[[], None]:
    """Run the payments read model and the ledger's bookings over what is committed."""

    def run() -> None:
        for name in ("payments", "ledger_bookings"):
            projection_run(name=name)

    return run


@pytest.fixture
def tasks_at_once():
    """Celery tasks sent by this process run in it, at once (the integration tests use a real worker)."""
    celery_app.conf.task_always_eager = True
    try:
        yield
    finally:
        celery_app.conf.task_always_eager = False
