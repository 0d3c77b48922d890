"""`issue_api_token`: the command that hands out API tokens, checked against the payments API it opens."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from accounts.authentication import api_token_hash
from accounts.models import ApiToken, Merchant, MerchantUser
from tests.payments.helpers import card_token

pytestmark = pytest.mark.django_db


def _payment(merchant_id: str) -> dict:
    """A payment body paid with a test card vaulted for the merchant (tokens are the merchant's own)."""
    return {"amount": {"amount": 1000, "currency": "JPY"}, "payment_method": {"token": card_token(merchant_id)}}


def _issue(*args: str) -> tuple[str, str]:
    """Run the command; return its whole output and its last line."""
    out = StringIO()
    call_command("issue_api_token", *args, stdout=out)
    output = out.getvalue()
    return output, output.rstrip("\n").splitlines()[-1]


def _client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def test_issue_with_merchant_prints_only_the_token_on_the_last_line():
    # when
    _, last = _issue("bob", "--merchant", "m1")
    # then
    assert last.strip() == last
    assert len(last) == 40
    # and only its hash and prefix are stored, never the key
    stored = ApiToken.objects.get(user__username="bob")
    assert (stored.key_hash, stored.prefix) == (api_token_hash(last), last[:8])
    assert last not in str(ApiToken.objects.filter(user__username="bob").values().get())
    assert MerchantUser.objects.get(user__username="bob").merchant_id == "m1"


def test_issue_token_works_against_the_api():
    # given
    _, token = _issue("bob", "--merchant", "m1")
    # when
    response = _client(token).post("/api/v1/payments", _payment("m1"), format="json")
    # then
    assert response.status_code == 201, response.content
    assert response.json()["merchant_id"] == "m1"
    events = _client(token).get(f"/api/v1/payments/{response.json()['id']}/events")
    assert events.status_code == 200


def test_issue_rerun_issues_another_token_and_both_work():
    # a key is shown once and cannot be shown again: a rerun issues a new one, the first stays valid
    _, first = _issue("bob", "--merchant", "m1")
    _, second = _issue("bob", "--merchant", "m1")
    assert first != second
    assert get_user_model().objects.filter(username="bob").count() == 1
    assert ApiToken.objects.filter(user__username="bob").count() == 2
    assert MerchantUser.objects.filter(user__username="bob").count() == 1
    for token in (first, second):
        assert _client(token).post("/api/v1/payments", _payment("m1"), format="json").status_code == 201


def test_issue_with_group_only_joins_the_group_and_no_merchant():
    # when
    _, token = _issue("carol", "--group", "cde")
    # then
    user = get_user_model().objects.get(username="carol")
    assert list(user.groups.values_list("name", flat=True)) == ["cde"]
    assert not MerchantUser.objects.filter(user=user).exists()
    assert not Merchant.objects.filter(id="carol").exists()
    # and the token authenticates but may not act for a merchant
    response = _client(token).post("/api/v1/payments", _payment("m1"), format="json")
    assert response.status_code == 403
    assert response["Content-Type"].startswith("application/problem+json")
    assert response.json()["code"] == "permission_denied"


def test_issue_without_flags_gives_the_user_a_merchant_named_after_it():
    # when
    _, token = _issue("dave")
    # then
    assert Merchant.objects.filter(id="dave").exists()
    assert MerchantUser.objects.get(user__username="dave").merchant_id == "dave"
    response = _client(token).post("/api/v1/payments", _payment("dave"), format="json")
    assert response.status_code == 201
    assert response.json()["merchant_id"] == "dave"


def test_issue_with_merchant_and_group_does_both():
    _, token = _issue("erin", "--merchant", "m2", "--group", "support")
    assert MerchantUser.objects.get(user__username="erin").merchant_id == "m2"
    assert get_user_model().objects.get(username="erin").groups.filter(name="support").exists()
    assert _client(token).post("/api/v1/payments", _payment("m2"), format="json").status_code == 201


def test_issue_users_of_one_merchant_share_its_payments():
    _, bob = _issue("bob", "--merchant", "m1")
    _, frank = _issue("frank", "--merchant", "m1")
    assert bob != frank
    created = _client(bob).post("/api/v1/payments", _payment("m1"), format="json").json()
    response = _client(frank).get(f"/api/v1/payments/{created['id']}/events")
    assert response.status_code == 200


def test_issue_invalid_merchant_id_fails_and_creates_nothing():
    with pytest.raises(CommandError, match="merchant id"):
        _issue("grace", "--merchant", "not a merchant id!")
    assert not get_user_model().objects.filter(username="grace").exists()
    assert not ApiToken.objects.filter(user__username="grace").exists()


def test_issue_unknown_role_fails_and_creates_nothing():
    with pytest.raises(CommandError, match="unknown role"):
        _issue("heidi", "--group", "admins")
    assert not get_user_model().objects.filter(username="heidi").exists()
