"""Payments move money through the real worker: bookings, the balance read model and its cache; balances keep
answering from the table while Redis is down."""

from __future__ import annotations

import uuid

import pytest
from django_redis import get_redis_connection
from rest_framework.test import APIClient

from accounts import services as accounts_services
from fintech.money import Money
from ledger import services as ledger_services
from ledger.models import Account
from payments import services
from projections.balances import BALANCES
from projections.cache import balance_from_hash, balance_key
from projections.engine import projection_run
from tests.accounts.helpers import customer_details
from tests.integration.conftest import wait_for
from tests.integration.helpers import ACTOR, card_token, unique_merchant_id
from tests.vault.helpers import api_client

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

DEAD_REDIS = "redis://127.0.0.1:1/0"


def _finance() -> APIClient:
    return api_client(accounts_services.api_token_issue(username=f"fin-{uuid.uuid4().hex[:6]}", group="finance"))


def test_captured_payment_reaches_merchant_balance_and_its_cache_through_the_worker(worker, redis_db, settings):
    # given a running worker whose beat stays quiet: only wake-ups can bring the events in
    settings.LEDGER_CAPTURE_FEE_BPS = 360
    merchant = unique_merchant_id("ledger")
    token = card_token(merchant)
    worker.env["PROJECTIONS_CATCH_UP_SECONDS"] = "3600"
    worker.env["LEDGER_CAPTURE_FEE_BPS"] = "360"
    worker.start()
    # when a 1,000 yen payment is captured through the services
    payment = services.payment_initiate(
        merchant_id=merchant, amount=Money(1000, "JPY"), payment_method_token=token, actor=ACTOR
    )
    services.payment_authorize(payment_id=payment.id, actor=ACTOR)
    services.payment_capture(payment_id=payment.id, actor=ACTOR)

    # then the worker books it (merchant pending 964 after the 36 yen fee) and the balance reaches Redis
    def booked() -> Account | None:
        return Account.objects.filter(owner_type="merchant", owner_id=merchant, currency="JPY", pending=964).first()

    account = wait_for(booked, what="the capture booked on the merchant's account", worker=worker)

    def cached() -> dict | None:
        document = balance_from_hash(redis_db.client().hgetall(balance_key(account.id)))
        return document if document and document["pending"]["amount"] == 964 else None

    document = wait_for(cached, what="balance:{id} with the booking in Redis", worker=worker)
    assert document["version"] == account.version
    assert document["available"] == {"amount": 0, "currency": "JPY"}
    # and the API answers it from the cache
    body = _finance().get(f"/api/v1/accounts/{account.id}/balance").json()
    assert (body["source"], body["pending"]["amount"]) == ("cache", 964)


def test_balance_reads_fall_back_to_the_table_while_redis_is_down(redis_db, settings):
    # given a funded customer account
    customer = accounts_services.customer_register(**customer_details(), actor=ACTOR)
    account = ledger_services.account_open(
        owner_type="customer", owner_id=str(customer.id), currency="JPY", kind="customer_balance", actor=ACTOR
    )
    ledger_services.account_deposit(account_id=account.id, amount=Money(2_500, "JPY"), actor=ACTOR)
    client = _finance()
    # when Redis is down while the balance projection runs and the balance is read
    settings.CACHES = {**settings.CACHES, "default": {**settings.CACHES["default"], "LOCATION": DEAD_REDIS}}
    assert projection_run(name=BALANCES) > 0
    response = client.get(f"/api/v1/accounts/{account.id}/balance")
    # then the table answers
    assert response.status_code == 200, response.content
    assert (response.json()["source"], response.json()["available"]["amount"]) == ("table", 2_500)
    # and once Redis is back, rebuild_cache puts the balance there
    settings.CACHES = {**settings.CACHES, "default": {**settings.CACHES["default"], "LOCATION": redis_db.cache_url}}
    from django.core.management import call_command

    call_command("rebuild_cache", BALANCES)
    assert get_redis_connection("default").exists(balance_key(account.id))
    assert client.get(f"/api/v1/accounts/{account.id}/balance").json()["source"] == "cache"
