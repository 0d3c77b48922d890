"""Which database a query goes to with a read replica configured (fintech.dbrouter): read-model reads of safe
requests to the replica, everything else to the primary, and nothing to a replica that cannot serve.

Here the "replica" alias is a second connection to the test database (the real streaming replica is in
tests/faults/test_read_replica.py), so these tests say where each query went, not what a lagging copy returns;
`replica_usable` is set by hand except where the check itself is under test."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator

import pytest
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.services import api_token_issue
from fintech import dbrouter
from fintech.money import Money
from payments import services as payments
from projections import cache
from projections.engine import projection_run
from projections.models import PaymentView
from vault.services import card_tokenize

# The alias exists for the whole module, declared before the test database is set up for a test, so that the test
# case does not fence it off as a database it did not declare; a mirror, so that it is not flushed twice.
pytestmark = pytest.mark.django_db(transaction=True, databases=[DEFAULT_DB_ALIAS, dbrouter.REPLICA])

ROUTER = "fintech.dbrouter.ReplicaRouter"
MIDDLEWARE = "fintech.dbrouter.ReplicaReadsMiddleware"


@pytest.fixture(scope="module", autouse=True)
def _replica_alias():
    connections.settings[dbrouter.REPLICA] = {
        **connections.settings[DEFAULT_DB_ALIAS],
        "TEST": {"MIRROR": DEFAULT_DB_ALIAS},
    }
    yield
    _replica_connection_drop()
    del connections.settings[dbrouter.REPLICA]


def _replica_connection_drop() -> None:
    connections[dbrouter.REPLICA].close()
    del connections[dbrouter.REPLICA]


@contextlib.contextmanager
def _replica_settings(**changes) -> Iterator[None]:
    """The replica alias connected elsewhere meanwhile."""
    saved = connections.settings[dbrouter.REPLICA]
    _replica_connection_drop()
    connections.settings[dbrouter.REPLICA] = {**saved, **changes}
    try:
        yield
    finally:
        _replica_connection_drop()
        connections.settings[dbrouter.REPLICA] = saved


@pytest.fixture
def health():
    """A fresh process-wide health record, put back afterwards."""
    saved = dbrouter.health
    dbrouter.health = dbrouter.ReplicaHealth()
    yield dbrouter.health
    dbrouter.health = saved


@pytest.fixture
def replica(settings, health, monkeypatch):
    """The router and its middleware installed, the replica reported usable."""
    settings.DATABASE_ROUTERS = [ROUTER]
    settings.MIDDLEWARE = [*settings.MIDDLEWARE[:-1], MIDDLEWARE, settings.MIDDLEWARE[-1]]
    monkeypatch.setattr(health, "replica_usable", lambda: True)


@pytest.fixture
def merchant_client():
    merchant = f"m-replica-{uuid.uuid4().hex[:8]}"
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_issue(username=merchant, merchant_id=merchant)}")
    client.merchant = merchant
    return client


def _projected_payment(merchant: str) -> uuid.UUID:
    token = card_tokenize(card_number="5555555555554444", exp_month=12, exp_year=2035, merchant_id=merchant).token
    payment = payments.payment_initiate(
        merchant_id=merchant, amount=Money(1200, "JPY"), payment_method_token=token, actor="user:t"
    )
    projection_run(name="payments")
    return payment.id


def _read_model_queries(queries) -> list[str]:
    return [query["sql"] for query in queries if "projections_payment" in query["sql"]]


def test_get_list_reads_the_read_model_on_the_replica(replica, merchant_client):
    # given a projected payment
    payment_id = _projected_payment(merchant_client.merchant)
    # when the merchant lists its payments
    with (
        CaptureQueriesContext(connections[DEFAULT_DB_ALIAS]) as primary,
        CaptureQueriesContext(connections[dbrouter.REPLICA]) as replica_queries,
    ):
        response = merchant_client.get("/api/v1/payments")
    # then the page is read on the replica, the primary reads no read table, and the page is whole
    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [str(payment_id)]
    assert _read_model_queries(replica_queries.captured_queries)
    assert _read_model_queries(primary.captured_queries) == []
    # and the checkpoint it reports is the replica's own (read there, not from Redis)
    assert any("projections_projectionstate" in q["sql"] for q in replica_queries.captured_queries)


def test_table_read_on_the_replica_does_not_fill_redis(replica, merchant_client):
    # given a projected payment whose Redis document is gone
    payment_id = _projected_payment(merchant_client.merchant)
    cache.client().delete(cache.payment_key(payment_id))
    # when the merchant reads it: Redis misses, the replica's table answers
    response = merchant_client.get(f"/api/v1/payments/{payment_id}")
    # then it is served from the table, and the key stays empty: a replica's row may be older than the projection
    assert response.status_code == 200
    assert response.json()["freshness"]["source"] == "table"
    assert cache.client().get(cache.payment_key(payment_id)) is None


def test_table_read_on_the_primary_still_fills_redis(replica, merchant_client, health, monkeypatch):
    # given a replica that cannot serve, and a payment whose Redis document is gone
    monkeypatch.setattr(health, "replica_usable", lambda: False)
    payment_id = _projected_payment(merchant_client.merchant)
    cache.client().delete(cache.payment_key(payment_id))
    # when the merchant reads it
    response = merchant_client.get(f"/api/v1/payments/{payment_id}")
    # then the primary's table answers and fills Redis again
    assert response.json()["freshness"]["source"] == "table"
    assert cache.client().get(cache.payment_key(payment_id)) is not None


def test_reads_outside_a_safe_request_go_to_the_primary(replica):
    # given the router: a command, a task or a management command runs outside replica_reads()
    router = dbrouter.ReplicaRouter()
    # then even a read-model read goes to the primary there
    assert router.db_for_read(PaymentView) is None
    with dbrouter.replica_reads():
        # and inside, read models go to the replica, while the write side, users and tokens never do
        assert router.db_for_read(PaymentView) == dbrouter.REPLICA
        from django.contrib.auth import get_user_model

        from accounts.models import ApiToken
        from fintech.models import Stream

        for model in (get_user_model(), ApiToken, Stream):
            assert router.db_for_read(model) is None
        # and a read inside a transaction on the primary stays in it (its snapshot)
        with transaction.atomic():
            assert router.db_for_read(PaymentView) is None
    assert router.db_for_write(PaymentView) == DEFAULT_DB_ALIAS
    assert router.allow_migrate(dbrouter.REPLICA, "projections") is False
    assert router.allow_migrate(DEFAULT_DB_ALIAS, "projections") is True


def test_post_reads_on_the_primary(replica, merchant_client):
    # given a payment
    payment_id = _projected_payment(merchant_client.merchant)
    # when a command comes in (POST): its reads and writes all run on the primary
    with CaptureQueriesContext(connections[dbrouter.REPLICA]) as replica_queries:
        response = merchant_client.post(f"/api/v1/payments/{payment_id}/authorize", {}, format="json")
    assert response.status_code == 200, response.content
    assert replica_queries.captured_queries == []


def test_a_server_not_in_recovery_is_not_used_as_a_replica(settings, health):
    # given DATABASE_REPLICA_URL pointing at a primary (the test database itself): it follows no one
    settings.DATABASE_ROUTERS = [ROUTER]
    # then the check refuses it, and read models are read on the primary
    with dbrouter.replica_reads():
        assert dbrouter.read_alias(PaymentView) == DEFAULT_DB_ALIAS
    assert health.usable is False
    assert health.checked_at > float("-inf")


def test_an_unreachable_replica_is_left_alone_quickly(settings, health):
    # given a replica address where nothing listens
    settings.DATABASE_ROUTERS = [ROUTER]
    with _replica_settings(HOST="127.0.0.1", PORT="9"), dbrouter.replica_reads():
        # when a request would read a read model
        assert dbrouter.read_alias(PaymentView) == DEFAULT_DB_ALIAS
        checked_at = health.checked_at
        # then the primary serves it, and the next reads within the second do not try the replica again
        assert dbrouter.read_alias(PaymentView) == DEFAULT_DB_ALIAS
        assert health.checked_at == checked_at
        # and once the second has passed it is tried again
        health.checked_at = time.monotonic() - dbrouter.CHECK_SECONDS
        assert dbrouter.read_alias(PaymentView) == DEFAULT_DB_ALIAS
        assert health.checked_at > checked_at
