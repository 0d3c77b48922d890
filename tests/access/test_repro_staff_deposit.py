"""Staff status is an admin login, nothing more: a support user cannot create money through the API, whether it
calls with its admin session or with an API token."""

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from accounts.services import api_token_issue
from fintech.money import Money
from ledger.models import Account

pytestmark = pytest.mark.django_db(transaction=True)


def _support_user(username: str):
    return get_user_model().objects.create_user(username, password="x-test-only", is_staff=True)


@pytest.mark.parametrize("login", ["session", "token"])
def test_deposit_by_staff_only_support_user_is_forbidden_and_creates_no_money(customer_account, login):
    # given a customer account and a staff user in no role
    account = customer_account()
    user = _support_user(f"support-{login}")
    client = APIClient()
    if login == "session":
        client.force_login(user)
    else:
        client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_issue(username=user.username)}")
    # when it deposits money
    response = client.post(
        f"/api/v1/accounts/{account.id}/deposits", {"amount": Money(10_000, "JPY").to_json()}, format="json"
    )
    # then it is refused and the balance is unchanged
    assert response.status_code == 403, response.content
    assert response.json()["code"] == "permission_denied"
    assert Account.objects.get(id=account.id).available == 0
