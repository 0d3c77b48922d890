"""One path served by views of two apps, one per method (fintech.routing.method_routes): each method reaches its
own view, the others answer as DRF does, and Allow names them all."""

import pytest

from tests.payments.helpers import MERCHANT, card_token

pytestmark = pytest.mark.django_db

PAYMENTS = "/api/v1/payments"
ALLOW = "POST, GET, HEAD, OPTIONS"


@pytest.mark.parametrize("path", [PAYMENTS, f"{PAYMENTS}/"])
def test_each_method_reaches_its_own_apps_view(merchant_client, path):
    created = merchant_client.post(
        path,
        {"amount": {"amount": 1000, "currency": "JPY"}, "payment_method": {"token": card_token(MERCHANT)}},
        format="json",
    )
    assert created.status_code == 201, created.content
    listed = merchant_client.get(path)
    assert listed.status_code == 200
    # the read model's page (the projection has not run: the payment is not in it yet)
    assert set(listed.json()) >= {"results"}
    assert created["Allow"] == listed["Allow"] == ALLOW


def test_a_method_nobody_serves_is_a_405_problem_naming_the_allowed_ones(merchant_client):
    response = merchant_client.delete(PAYMENTS)
    assert response.status_code == 405
    assert response["Content-Type"].startswith("application/problem+json")
    assert response.json()["code"] == "method_not_allowed"
    assert response["Allow"] == ALLOW


def test_head_and_options_are_answered(merchant_client):
    assert merchant_client.head(PAYMENTS).status_code == 200
    options = merchant_client.options(PAYMENTS)
    assert options.status_code == 200
    assert options["Allow"] == ALLOW


def test_unauthenticated_is_refused_on_every_method(client):
    assert client.get(PAYMENTS).status_code == 401
    assert client.post(PAYMENTS, {}, content_type="application/json").status_code == 401
