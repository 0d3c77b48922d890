"""Rate limits: per API token and per client IP on the whole API, stricter per token on detokenisation, 429
problem+json with Retry-After over the rate, and no limit at all (never a 5xx) while Redis is down."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django_redis import get_redis_connection
from rest_framework.test import APIClient

from accounts.services import api_token_issue
from fintech import throttling
from tests.payments.helpers import card_token
from vault.services import role_groups_ensure

pytestmark = pytest.mark.django_db

PAYMENTS = "/api/v1/payments"
DEAD_REDIS = "redis://127.0.0.1:1/0"


def _clear_windows() -> None:
    redis = get_redis_connection("default")
    prefix = django_settings.CACHES["default"].get("KEY_PREFIX", "")
    for key in redis.scan_iter(match=f"{prefix}:{throttling.KEY_PREFIX}:*", count=1000):
        redis.delete(key)


@pytest.fixture(autouse=True)
def _fresh_windows():
    """Per-IP windows are shared by every test client (all 127.0.0.1): each test here starts and ends clean."""
    _clear_windows()
    yield
    _clear_windows()


@pytest.fixture
def rates(settings):
    def set_(**rates):
        settings.API_THROTTLE_RATES = {"token": None, "ip": None, "detokenize": None, **rates}

    return set_


def _client(username: str, *, group: str | None = None, ip: str = "127.0.0.1") -> APIClient:
    if group:
        role_groups_ensure()
    key = api_token_issue(username=username, merchant_id=None if group else f"m-{username}", group=group)
    client = APIClient(REMOTE_ADDR=ip)
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def _assert_throttled(response) -> None:
    assert response.status_code == 429, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    assert response.json()["code"] == "throttled"
    assert 1 <= int(response["Retry-After"]) <= 60


def test_token_over_its_rate_gets_429_with_retry_after_and_other_tokens_go_on(rates):
    rates(token="2/minute")
    alice, bob = _client("thr-alice"), _client("thr-bob")
    # when one token sends a third request within the minute
    assert [alice.get(PAYMENTS).status_code for _ in range(2)] == [200, 200]
    # then it is refused with the time to wait
    _assert_throttled(alice.get(PAYMENTS))
    # and another token is counted on its own
    assert bob.get(PAYMENTS).status_code == 200


def test_ip_over_its_rate_gets_429_whatever_the_token(rates):
    rates(ip="2/minute")
    first, second = _client("thr-carol"), _client("thr-dave")
    elsewhere = _client("thr-erin", ip="192.0.2.7")
    assert first.get(PAYMENTS).status_code == 200
    assert second.get(PAYMENTS).status_code == 200
    # when a third request comes from the same address with yet another token, then it is refused
    _assert_throttled(first.get(PAYMENTS))
    # and another address is counted on its own
    assert elsewhere.get(PAYMENTS).status_code == 200


def test_ip_rate_not_escaped_by_a_forged_forwarded_for(rates):
    rates(ip="2/minute")
    client = _client("thr-ivan")
    # when a client names another address of its own in each request
    statuses = [client.get(PAYMENTS, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code for n in range(3)]
    # then it is still counted under the address it connects from
    assert statuses[:2] == [200, 200]
    assert statuses[2] == 429


def test_detokenize_has_a_stricter_rate_of_its_own(rates):
    rates(token="100/minute", detokenize="1/minute")
    cde = _client("thr-cde", group="cde")
    token = card_token("m-thr-cards")
    url = f"/api/v1/vault/tokens/{token}/detokenize"
    # when the CDE user detokenises twice within the minute
    assert cde.post(url, {"purpose": "chargeback 1"}, format="json").status_code == 200
    # then the second is refused, while the rest of the API still answers it
    _assert_throttled(cde.post(url, {"purpose": "chargeback 2"}, format="json"))
    assert cde.get(PAYMENTS).status_code == 403  # not throttled: acts for no merchant


def test_throttled_post_is_not_stored_for_idempotent_replay(rates):
    rates(token="1/minute")
    client = _client("thr-frank")
    body = {"amount": {"amount": 1000, "currency": "JPY"}, "payment_method": {"token": card_token("m-thr-frank")}}
    assert client.post(PAYMENTS, body, format="json", HTTP_IDEMPOTENCY_KEY="k1").status_code == 201
    _assert_throttled(client.post(PAYMENTS, body, format="json", HTTP_IDEMPOTENCY_KEY="k2"))


def test_windows_expire_in_redis(rates):
    rates(token="5/minute")
    _client("thr-grace").get(PAYMENTS)
    redis = get_redis_connection("default")
    keys = list(redis.scan_iter(match=f"*:{throttling.KEY_PREFIX}:token:*"))
    assert len(keys) == 1
    assert 0 < redis.ttl(keys[0]) <= 61


def test_redis_down_lets_requests_through(rates, settings, caplog):
    rates(token="1/minute", ip="1/minute")
    client = _client("thr-heidi")
    # when Redis cannot be reached
    live = settings.CACHES
    settings.CACHES = {**live, "default": {**live["default"], "LOCATION": DEAD_REDIS}}
    try:
        statuses = [client.get(PAYMENTS).status_code for _ in range(3)]
    finally:
        settings.CACHES = live  # before the windows are cleared (the settings fixture is undone after that)
    # then the limits are not enforced (fail open) and the API answers, never a 5xx
    assert statuses == [200, 200, 200]
    assert "rate limits not enforced" in caplog.text


def test_default_rates_are_parseable_and_generous():
    parsed = {scope: throttling.rate_parse(rate) for scope, rate in django_settings.API_THROTTLE_RATES.items()}
    assert parsed["token"][0] / parsed["token"][1] >= 100  # per second: the suite and make bench stay below
    assert parsed["ip"][0] / parsed["ip"][1] >= parsed["token"][0] / parsed["token"][1]
    assert parsed["detokenize"][0] / parsed["detokenize"][1] < parsed["token"][0] / parsed["token"][1]


@pytest.mark.parametrize(
    ("rate", "parsed"),
    [("100/minute", (100, 60)), ("5/s", (5, 1)), ("7/hour", (7, 3600)), ("1/day", (1, 86400)), (None, None)],
)
def test_rate_parse(rate, parsed):
    assert throttling.rate_parse(rate) == parsed
