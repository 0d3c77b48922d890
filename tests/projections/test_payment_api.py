import uuid

import pytest
from rest_framework.test import APIClient

from accounts.services import api_token_issue
from fintech.money import Money
from payments import services as payments
from projections.engine import projection_run
from vault.models import Card
from vault.services import card_tokenize

# Projections read only committed events: these tests commit, and each uses a merchant of its own because
# events (never flushed) outlive a test.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def merchant():
    return f"m-read-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def merchant_client(merchant):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_issue(username=merchant, merchant_id=merchant)}")
    client.merchant = merchant
    return client


@pytest.fixture
def token(merchant):
    return card_tokenize(card_number="5555555555554444", exp_month=12, exp_year=2035, merchant_id=merchant).token


def _payment(token, minor, *, capture=False):
    merchant = Card.objects.get(token=token).merchant_id
    payment = payments.payment_initiate(
        merchant_id=merchant, amount=Money(minor, "JPY"), payment_method_token=token, actor="user:t"
    )
    if capture:
        payments.payment_authorize(payment_id=payment.id, actor="user:t")
        payment = payments.payment_capture(payment_id=payment.id, actor="user:t")
    return payment


def test_get_payment_answers_read_model_with_freshness(merchant_client, other_merchant_client, token):
    payment = _payment(token, 4100, capture=True)
    projection_run(name="payments")
    response = merchant_client.get(f"/api/v1/payments/{payment.id}")
    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["status"], body["version"]) == (str(payment.id), "captured", 3)
    assert body["amount"] == {"amount": 4100, "currency": "JPY"}
    assert body["captured_amount"] == {"amount": 4100, "currency": "JPY"}
    assert body["payment_method"]["last4"] == "4444"
    assert body["captured_at"]
    assert body["created_at"]
    assert body["freshness"]["read_model_version"] == 3
    assert response["ETag"] == '"3"'
    # another merchant, an unknown id and a malformed id are all 404
    assert other_merchant_client.get(f"/api/v1/payments/{payment.id}").status_code == 404
    assert merchant_client.get("/api/v1/payments/00000000-0000-0000-0000-000000000000").status_code == 404
    assert merchant_client.get("/api/v1/payments/nope").status_code == 404


def test_list_payments_filters_and_pages_with_cursor(merchant_client, token):
    made = [_payment(token, minor, capture=minor % 2 == 0) for minor in (1000, 1001, 1002, 1003, 1004)]
    projection_run(name="payments")
    # filters
    captured = merchant_client.get("/api/v1/payments", {"status": "captured"}).json()["results"]
    assert sorted(p["amount"]["amount"] for p in captured) == [1000, 1002, 1004]
    ranged = merchant_client.get("/api/v1/payments", {"amount_min": 1001, "amount_max": 1003}).json()["results"]
    assert sorted(p["amount"]["amount"] for p in ranged) == [1001, 1002, 1003]
    # pages of two, newest first, every payment exactly once
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = merchant_client.get("/api/v1/payments", params).json()
        seen += [p["id"] for p in page["results"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [str(p.id) for p in reversed(made)]


def test_list_payments_bad_filters_are_400(merchant_client):
    for params in ({"status": "nope"}, {"amount_min": "-1"}, {"cursor": "garbage"}, {"limit": "0"}):
        response = merchant_client.get("/api/v1/payments", params)
        assert response.status_code == 400, params
        assert response["Content-Type"] == "application/problem+json"
