"""The read path that touches no database (accounts.fastread): `GET /payments/{id}` and `GET
/accounts/{id}/balance` of a cached document, by a token seen before, are answered from Redis alone, byte for byte
as DRF answers them; revoking the token or changing what its user may do takes effect on the next request; rate
limits count each request once, whichever path answers it."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_redis import get_redis_connection

from accounts.models import ApiToken, MerchantUser
from accounts.principals import principal_key, principal_remember
from accounts.services import api_token_issue, api_token_revoke, merchant_get_or_create
from fintech.money import Money
from fintech.policy import FINANCE
from ledger import services as ledger
from ledger.domain import AccountKind
from payments import services as payments
from projections.balances import BALANCES
from projections.engine import projection_run
from tests.vault.helpers import api_client
from vault.services import card_tokenize

pytestmark = pytest.mark.django_db(transaction=True)

ACTOR = "user:fast-read-test"


def _merchant() -> str:
    return merchant_get_or_create(merchant_id=f"m-fast-{uuid.uuid4().hex[:8]}").id


def _captured_payment(merchant_id: str) -> uuid.UUID:
    token = card_tokenize(card_number="5555555555554444", exp_month=12, exp_year=2035, merchant_id=merchant_id).token
    payment = payments.payment_initiate(
        merchant_id=merchant_id, amount=Money(4100, "JPY"), payment_method_token=token, actor=ACTOR
    )
    payments.payment_authorize(payment_id=payment.id, actor=ACTOR)
    payments.payment_capture(payment_id=payment.id, actor=ACTOR)
    projection_run(name="payments")
    return payment.id


def _get(client, url: str):
    """(response, SQL statements it ran)."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    return response, len(queries)


PER_REQUEST = {"Date", "X-Request-ID", "X-Correlation-ID"}


def _headers(response) -> dict[str, str]:
    return {name: value for name, value in response.items() if name not in PER_REQUEST}


@pytest.fixture
def payment_url():
    merchant_id = _merchant()
    payment_id = _captured_payment(merchant_id)
    key = api_token_issue(username=f"fast-{merchant_id}", merchant_id=merchant_id)
    return f"/api/v1/payments/{payment_id}", key, merchant_id


def test_a_cached_payment_is_answered_without_the_database_exactly_as_drf_answers_it(payment_url):
    url, key, _ = payment_url
    client = api_client(key)
    through_drf, drf_queries = _get(client, url)
    fast, fast_queries = _get(client, url)
    assert through_drf.status_code == fast.status_code == 200
    assert drf_queries > 0
    assert fast_queries == 0
    assert fast.content == through_drf.content
    assert _headers(fast) == _headers(through_drf)
    assert fast.json()["freshness"]["source"] == "cache"


def test_a_revoked_token_is_refused_on_its_next_request(payment_url):
    url, key, _ = payment_url
    client = api_client(key)
    client.get(url)
    assert _get(client, url)[1] == 0
    token = ApiToken.objects.get(prefix=key[:8])
    api_token_revoke(token_ids=[token.id])
    refused = client.get(url)
    assert refused.status_code == 401
    assert refused.json()["code"] == "authentication_failed"
    # and it stays refused: the tombstone is not taken for a principal, nor replaced by one
    assert client.get(url).status_code == 401
    assert get_redis_connection("default").get(principal_key(token.key_hash)) == b"revoked"


def test_a_deactivated_user_or_another_merchant_is_refused_on_the_next_request(payment_url):
    url, key, _ = payment_url
    client = api_client(key)
    client.get(url)
    assert _get(client, url)[1] == 0
    link = MerchantUser.objects.get(user__api_tokens__prefix=key[:8])
    link.merchant = merchant_get_or_create(merchant_id=f"m-fast-{uuid.uuid4().hex[:8]}")
    link.save()
    assert client.get(url).status_code == 404  # not this merchant's payment any more
    user = link.user
    user.is_active = False
    user.save()
    assert client.get(url).status_code == 401


def test_a_token_that_expired_while_cached_is_refused(payment_url):
    url, key, _ = payment_url
    client = api_client(key)
    client.get(url)
    token = ApiToken.objects.get(prefix=key[:8])
    # Expired behind the cache's back (an update() sends no signal): the entry's own expiry still refuses it.
    past = timezone.now() - dt.timedelta(seconds=1)
    ApiToken.objects.filter(id=token.id).update(expires_at=past)
    token.expires_at = past
    get_redis_connection("default").delete(principal_key(token.key_hash))
    principal_remember(token, merchant_id=token.user.merchant_link.merchant_id, finance=False)
    refused = client.get(url)
    assert refused.status_code == 401
    assert "expired" in refused.json()["detail"]


def test_another_merchants_payment_and_odd_requests_go_through_drf(payment_url):
    url, _, _ = payment_url
    other_merchant = _merchant()
    other = api_client(api_token_issue(username=f"fast-{other_merchant}", merchant_id=other_merchant))
    other.get("/api/v1/payments/00000000-0000-0000-0000-000000000000")  # caches its principal
    assert other.get(url).status_code == 404
    assert other.get("/api/v1/payments/not-an-id").status_code == 404
    assert other.get(url, HTTP_ACCEPT="text/html").status_code == 406


def test_rate_limits_count_each_request_once_whichever_path_answers(settings, payment_url):
    url, key, _ = payment_url
    settings.API_THROTTLE_RATES = {**settings.API_THROTTLE_RATES, "token": "4/minute"}
    client = api_client(key)
    answers = [client.get(url).status_code for _ in range(3)]  # DRF, then fast, fast
    answers.append(client.get("/api/v1/payments/00000000-0000-0000-0000-000000000000").status_code)  # fast → DRF
    limited = client.get(url)
    assert answers == [200, 200, 200, 404]
    assert limited.status_code == 429
    assert int(limited["Retry-After"]) > 0


def test_the_first_request_of_a_token_caches_it_and_redis_down_still_answers(settings, payment_url):
    url, key, _ = payment_url
    client = api_client(key)
    token = ApiToken.objects.get(prefix=key[:8])
    assert get_redis_connection("default").get(principal_key(token.key_hash)) is None
    client.get(url)
    assert get_redis_connection("default").get(principal_key(token.key_hash)) is not None
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"},
    }
    down = client.get(url)
    assert down.status_code == 200
    assert down.json()["freshness"]["source"] == "table"


def _balance_account(merchant_id: str) -> uuid.UUID:
    account = ledger.account_open(
        owner_type="merchant",
        owner_id=merchant_id,
        currency="JPY",
        kind=AccountKind.MERCHANT_PAYABLE,
        actor=ACTOR,
    )
    projection_run(name=BALANCES)
    return account.id


def test_a_cached_balance_is_answered_without_the_database_and_follows_the_role(settings):
    merchant_id = _merchant()
    url = f"/api/v1/accounts/{_balance_account(merchant_id)}/balance"
    merchant = api_client(api_token_issue(username=f"fast-{merchant_id}", merchant_id=merchant_id))
    through_drf, _ = _get(merchant, url)
    fast, queries = _get(merchant, url)
    assert through_drf.status_code == fast.status_code == 200
    assert queries == 0
    assert fast.content == through_drf.content
    assert _headers(fast) == _headers(through_drf)
    # finance reads every account; losing the role, it reads none the next request
    key = api_token_issue(username=f"fast-finance-{merchant_id}", group=FINANCE)
    finance = api_client(key)
    assert finance.get(url).status_code == 200
    assert _get(finance, url)[1] == 0
    Group.objects.get(name=FINANCE).user_set.remove(ApiToken.objects.get(prefix=key[:8]).user)
    assert finance.get(url).status_code == 404


def test_the_benchs_one_get_view_is_not_mounted_outside_the_bench(payment_url):
    url, key, _ = payment_url
    payment_id = url.rsplit("/", 1)[1]
    assert api_client(key).get(f"/bench/redis-get/{payment_id}").status_code == 404
