"""Every free-text field of the API refuses a card number, however it is separated (fintech.api.no_card_numbers
over fintech.masking.mask_pans); the admin transfer form's reference is tested in tests/ledger/test_admin.py."""

from __future__ import annotations

import uuid

import pytest

from accounts.services import api_token_issue, merchant_get_or_create
from tests.vault.helpers import api_client
from vault import services

pytestmark = pytest.mark.django_db

SEPARATED = ["4242.4242.4242.4242", "4242  4242 4242  4242", "4242-4242 4242.4242", "4242/4242/4242/4242"]
ANY_ID = str(uuid.uuid4())

# (who, path, body builder, the field that must be refused)
FIELDS = [
    ("merchant", "/api/v1/payments", lambda pan: _payment(description=f"order {pan}"), "description"),
    ("merchant", "/api/v1/payments", lambda pan: _payment(method=pan), "payment_method"),
    ("merchant", f"/api/v1/payments/{ANY_ID}/refunds", lambda pan: {"reason": pan}, "reason"),
    ("merchant", f"/api/v1/payments/{ANY_ID}/cancel", lambda pan: {"reason": pan}, "reason"),
    ("merchant", "/api/v1/vault/tokens", lambda pan: _card(cardholder_name=pan), "cardholder_name"),
    ("finance", "/api/v1/accounts", lambda pan: _account(owner_id=pan), "owner_id"),
    ("finance", f"/api/v1/accounts/{ANY_ID}/deposits", lambda pan: {**_amount(), "reference": pan}, "reference"),
    ("finance", f"/api/v1/accounts/{ANY_ID}/holds", lambda pan: {**_amount(), "reference": pan}, "reference"),
    ("finance", "/api/v1/transfers", lambda pan: _transfer(reference=pan), "reference"),
    ("cde", "/api/v1/vault/tokens/tok_x/detokenize", lambda pan: {"purpose": f"check {pan}"}, "purpose"),
]


def _amount() -> dict:
    return {"amount": {"amount": 100, "currency": "JPY"}}


def _payment(*, description: str = "", method: str = "tok_x") -> dict:
    return {**_amount(), "payment_method": {"token": method}, "description": description}


def _card(**extra) -> dict:
    return {"card_number": "4242424242424242", "exp_month": 12, "exp_year": 2035, **extra}


def _account(**extra) -> dict:
    return {"owner_type": "merchant", "currency": "JPY", "kind": "merchant_settlement", **extra}


def _transfer(**extra) -> dict:
    return {"from_account": ANY_ID, "to_account": str(uuid.uuid4()), **_amount(), **extra}


@pytest.fixture
def clients():
    services.role_groups_ensure()
    merchant = merchant_get_or_create(merchant_id=f"m-{uuid.uuid4().hex[:8]}").id
    return {
        "merchant": api_client(api_token_issue(username=f"m-{uuid.uuid4().hex[:6]}", merchant_id=merchant)),
        "finance": api_client(api_token_issue(username=f"f-{uuid.uuid4().hex[:6]}", group="finance")),
        "cde": api_client(api_token_issue(username=f"c-{uuid.uuid4().hex[:6]}", group="cde")),
    }


@pytest.mark.parametrize("pan", SEPARATED)
@pytest.mark.parametrize(("who", "path", "body", "field"), FIELDS, ids=[f"{f[1]}:{f[3]}" for f in FIELDS])
def test_free_text_with_separated_card_number_refused(clients, who, path, body, field, pan):
    # when a card number, separated any way, is sent in a free-text field
    response = clients[who].post(path, body(pan), format="json")
    # then the request is refused as invalid, naming that field, and the answer does not repeat the number
    assert response.status_code == 400, response.content
    problem = response.json()
    assert problem["code"] == "validation_error"
    assert field in problem["errors"]
    assert "card number" in str(problem["errors"][field])
    assert "42424242" not in "".join(char for char in response.content.decode() if char.isdigit() or char == "*")
