"""GET /metrics: Prometheus's text format with request latency per route, API commands and their outcomes,
ledger entries, vault counters and projection lag; closed to anyone outside METRICS_ALLOWED_NETWORKS, and to
anyone without METRICS_TOKEN when one is set (404: as if it did not exist)."""

from __future__ import annotations

import re
import uuid

import pytest
from django.test import Client

from fintech.money import Money
from payments import services as payments
from tests.payments.helpers import ACTOR, MERCHANT, card_token

pytestmark = pytest.mark.django_db


def _value(body: str, name: str, **labels) -> float:
    """The sample of `name` whose labels include `labels` (0 when absent)."""
    for line in body.splitlines():
        if not (line.startswith(name + "{") or line.startswith(name + " ")):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0])) if "{" in line else {}
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _metrics(client=None, **extra) -> str:
    response = (client or Client()).get("/metrics", **extra)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def test_requests_are_timed_per_route_never_per_path():
    client = Client()
    before = _value(_metrics(client), "fintech_http_request_duration_seconds_count", route="healthz", method="GET")
    client.get("/healthz")
    body = _metrics(client)
    assert _value(body, "fintech_http_request_duration_seconds_count", route="healthz", method="GET") == before + 1
    # a path with an id is counted under its pattern: no series per payment
    client.get(f"/api/v1/payments/{uuid.uuid4()}")
    body = _metrics(client)
    assert not re.search(r'route="[^"]*[0-9a-f]{8}-[0-9a-f]{4}-', body)
    assert re.search(r'route="api/v1/payments/<[^>]+>"', body)


def test_commands_are_counted_with_their_outcome(merchant_client):
    visa_token = card_token(MERCHANT)
    body = _metrics()
    created = _value(body, "fintech_api_commands_total", route="api/v1/payments", status="201")
    refused = _value(body, "fintech_api_commands_total", route="api/v1/payments", status="400")
    merchant_client.post(
        "/api/v1/payments",
        {"amount": {"amount": 1000, "currency": "JPY"}, "payment_method": {"token": visa_token}},
        format="json",
    )
    merchant_client.post("/api/v1/payments", {"amount": "nonsense"}, format="json")
    body = _metrics()
    assert _value(body, "fintech_api_commands_total", route="api/v1/payments", status="201") == created + 1
    assert _value(body, "fintech_api_commands_total", route="api/v1/payments", status="400") == refused + 1


def test_vault_and_projection_lag_are_exported():
    before = _value(_metrics(), "fintech_vault_tokenisations_total")
    card_token(MERCHANT)
    payments.payment_initiate(
        merchant_id=MERCHANT, amount=Money(1000, "JPY"), payment_method_token=card_token(MERCHANT), actor=ACTOR
    )
    body = _metrics()
    assert _value(body, "fintech_vault_tokenisations_total") >= before + 1
    assert 'fintech_projection_lag_events{projection="payments"}' in body
    assert 'fintech_projection_stopped{projection="payments"} 0.0' in body


def test_closed_to_other_networks_and_without_the_token(settings):
    assert Client(REMOTE_ADDR="203.0.113.5").get("/metrics").status_code == 404
    settings.METRICS_TOKEN = "s3cret-scraper-token"
    assert Client().get("/metrics").status_code == 404
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 404
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scraper-token").status_code == 200
