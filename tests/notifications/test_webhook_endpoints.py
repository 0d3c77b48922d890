"""Merchants' webhook endpoints (issue 15): registered, listed, read and deleted through the API by the merchant
alone; the signing secret shown once and kept only sealed by the vault; URLs that would reach into our own network
refused in production."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.db import connection, connections

from accounts.services import api_token_issue
from notifications import services
from notifications.domain import ENDPOINTS_PER_MERCHANT, TYPES, WebhookEndpointLimit
from notifications.models import WebhookEndpoint
from tests.vault.helpers import api_client
from vault import keys
from vault import services as vault_services

pytestmark = pytest.mark.django_db

ENDPOINTS = "/api/v1/webhook-endpoints"
BODY = {"url": "https://hooks.example.org/fintech", "events": ["payment.authorized", "payment.captured"]}


def _merchant_client():
    merchant = f"m-hooks-{uuid.uuid4().hex[:8]}"
    client = api_client(api_token_issue(username=merchant, merchant_id=merchant))
    client.merchant = merchant
    return client


@pytest.fixture
def merchant():
    return _merchant_client()


@pytest.fixture
def other():
    return _merchant_client()


def test_create_answers_the_secret_once_and_never_again(merchant):
    # when a merchant registers an endpoint
    response = merchant.post(ENDPOINTS, BODY, format="json")
    # then the answer holds the endpoint and its signing secret, not to be cached
    assert response.status_code == 201, response.content
    created = response.json()
    assert set(created) == {"id", "url", "events", "secret", "created_at"}
    assert (created["url"], created["events"]) == (BODY["url"], BODY["events"])
    assert created["secret"].startswith("whsec_")
    assert len(created["secret"]) > 40
    assert response["Cache-Control"] == "no-store"
    # and neither the list nor the endpoint's page shows the secret again
    listed = merchant.get(ENDPOINTS).json()["results"]
    assert [endpoint["id"] for endpoint in listed] == [created["id"]]
    detail = merchant.get(f"{ENDPOINTS}/{created['id']}").json()
    assert "secret" not in listed[0]
    assert "secret" not in detail
    assert detail == {key: created[key] for key in ("id", "url", "events", "created_at")}
    # and the database holds it only sealed, which the vault opens again
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT wrapped_key::text, wrapped_key FROM notifications_webhook_endpoint WHERE id = %s", [created["id"]]
        )
        as_text, sealed = cursor.fetchone()
    assert created["secret"] not in as_text
    assert created["secret"].encode() not in bytes(sealed)
    endpoint = WebhookEndpoint.objects.get(id=created["id"])
    assert services.webhook_endpoint_secret(endpoint=endpoint) == created["secret"]


def test_a_merchant_sees_and_deletes_only_its_own(merchant, other):
    # given an endpoint of another merchant's
    theirs = other.post(ENDPOINTS, BODY, format="json").json()["id"]
    # then this merchant neither lists, reads nor deletes it
    assert merchant.get(ENDPOINTS).json()["results"] == []
    assert merchant.get(f"{ENDPOINTS}/{theirs}").status_code == 404
    assert merchant.delete(f"{ENDPOINTS}/{theirs}").status_code == 404
    assert other.get(f"{ENDPOINTS}/{theirs}").status_code == 200
    # and unknown or malformed ids are 404 as well
    assert merchant.get(f"{ENDPOINTS}/{uuid.uuid4()}").status_code == 404
    assert merchant.get(f"{ENDPOINTS}/not-an-id").status_code == 404


def test_delete_stops_the_endpoint(merchant):
    # given an endpoint
    endpoint_id = merchant.post(ENDPOINTS, BODY, format="json").json()["id"]
    # when the merchant deletes it
    assert merchant.delete(f"{ENDPOINTS}/{endpoint_id}").status_code == 204
    # then it is gone from the API, a second delete is 404, and its row stays for its deliveries
    assert merchant.get(f"{ENDPOINTS}/{endpoint_id}").status_code == 404
    assert merchant.get(ENDPOINTS).json()["results"] == []
    assert merchant.delete(f"{ENDPOINTS}/{endpoint_id}").status_code == 404
    assert WebhookEndpoint.objects.get(id=endpoint_id).deleted_at is not None


def test_staff_and_anonymous_callers_have_no_endpoints():
    from rest_framework.test import APIClient

    finance = api_client(api_token_issue(username=f"fin-{uuid.uuid4().hex[:6]}", group="finance"))
    assert finance.post(ENDPOINTS, BODY, format="json").status_code == 403
    assert finance.get(ENDPOINTS).status_code == 403
    assert APIClient().get(ENDPOINTS).status_code in {401, 403}


@pytest.mark.parametrize(
    "body",
    [
        {**BODY, "url": "ftp://hooks.example.org/x"},
        {**BODY, "url": "https://user:pass@hooks.example.org/x"},
        {**BODY, "url": "https://hooks.example.org/x#frag"},
        {**BODY, "url": "https:///x"},
        {**BODY, "url": "https://hooks.example.org:99999/x"},
        {**BODY, "url": "https://hooks.example.org/caf\u00e9"},
        {**BODY, "url": "https://" + "a" * 2050 + ".org/"},
        {**BODY, "events": ["payment.exploded"]},
        {**BODY, "events": []},
        {**BODY, "events": "payment.captured"},
        {"url": 7, "events": [None]},
        {},
    ],
)
def test_bad_endpoints_are_refused_with_a_problem(merchant, body):
    response = merchant.post(ENDPOINTS, body, format="json")
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert merchant.get(ENDPOINTS).json()["results"] == []


def test_junk_bodies_never_answer_5xx(merchant):
    for raw in (b"{", b"[]", b"null", b'{"url": {"a": 1}, "events": {"b": 2}}', b"\xff\xfe"):
        response = merchant.generic("POST", ENDPOINTS, raw, content_type="application/json")
        assert 400 <= response.status_code < 500, (raw, response.status_code)


@pytest.mark.parametrize(
    "url",
    [
        "http://93.184.216.34/hook",
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://[fd00::1]/hook",
        "https://0.0.0.0/hook",
        "https://no-such-host.invalid/hook",
    ],
)
def test_production_refuses_plain_http_and_addresses_of_our_own_network(merchant, settings, url):
    settings.PRODUCTION = True
    response = merchant.post(ENDPOINTS, {**BODY, "url": url}, format="json")
    assert response.status_code == 400, (url, response.content)
    assert response["Content-Type"] == "application/problem+json"
    # (IPv6 literals are refused by the URL's shape already: hosts are names or IPv4 addresses.)
    if "[" not in url:
        assert response.json()["code"] == "invalid_webhook_endpoint"


def test_production_accepts_https_to_a_public_address(merchant, settings):
    settings.PRODUCTION = True
    response = merchant.post(ENDPOINTS, {**BODY, "url": "https://93.184.216.34/hook"}, format="json")
    assert response.status_code == 201, response.content


def test_development_accepts_a_local_receiver(merchant):
    response = merchant.post(ENDPOINTS, {**BODY, "url": "http://127.0.0.1:8081/hook"}, format="json")
    assert response.status_code == 201, response.content


def test_a_merchant_has_a_bounded_number_of_endpoints(merchant):
    for _ in range(ENDPOINTS_PER_MERCHANT):
        assert merchant.post(ENDPOINTS, BODY, format="json").status_code == 201
    response = merchant.post(ENDPOINTS, BODY, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "too_many_webhook_endpoints"


def test_every_notification_type_can_be_chosen(merchant):
    response = merchant.post(ENDPOINTS, {**BODY, "events": list(TYPES)}, format="json")
    assert response.status_code == 201
    assert response.json()["events"] == list(TYPES)


@pytest.mark.django_db(transaction=True)
def test_two_creations_at_once_cannot_both_pass_the_limit():
    # given a merchant one endpoint short of the limit
    merchant_id = f"m-race-{uuid.uuid4().hex[:8]}"
    for _ in range(ENDPOINTS_PER_MERCHANT - 1):
        services.webhook_endpoint_create(merchant_id=merchant_id, url=BODY["url"], events=BODY["events"], actor="t")
    # when two connections create one each at the same moment
    barrier, outcomes = threading.Barrier(2), []

    def create() -> None:
        try:
            barrier.wait(10)
            services.webhook_endpoint_create(merchant_id=merchant_id, url=BODY["url"], events=BODY["events"], actor="t")
            outcomes.append("created")
        except WebhookEndpointLimit:
            outcomes.append("limit")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=create) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    # then exactly one got in
    assert sorted(outcomes) == ["created", "limit"]
    assert (
        WebhookEndpoint.objects.filter(merchant_id=merchant_id, deleted_at__isnull=True).count()
        == ENDPOINTS_PER_MERCHANT
    )


def test_key_rotation_reseals_the_secrets(settings, tmp_path):
    # given an endpoint sealed under a KEK of the test's own
    settings.VAULT_KEYS_DIR = str(tmp_path / "keys")
    settings.VAULT_KEK_KEYSET = None
    keys.key_provider_reset()
    try:
        created = services.webhook_endpoint_create(
            merchant_id="m-rotate", url=BODY["url"], events=BODY["events"], actor="t"
        )
        first_key = created.endpoint.kek_key_id
        # when the KEK rotates, the old key cannot be retired while the endpoint still depends on it
        keys.key_provider().rotate()
        with pytest.raises(keys.VaultKeyError):
            vault_services.keys_retire()
        # and once everything is re-sealed, the endpoint is under the new primary and its secret unchanged
        for _ in vault_services.keys_rewrap():
            pass
        endpoint = WebhookEndpoint.objects.get(id=created.endpoint.id)
        assert endpoint.kek_key_id == keys.key_provider().primary_key_id() != first_key
        assert vault_services.keys_retire() == {first_key}
        assert services.webhook_endpoint_secret(endpoint=endpoint) == created.secret
    finally:
        keys.key_provider_reset()
