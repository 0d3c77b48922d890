"""The ledger API contract: accounts, deposits, transfers, balances, entries; roles; idempotency."""

import uuid

import pytest
from django_redis import get_redis_connection

from accounts.services import api_token_issue, customer_register, merchant_get_or_create
from projections.balances import BALANCES
from projections.engine import projection_run
from tests.accounts.helpers import customer_details
from tests.vault.helpers import api_client

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def finance():
    return api_client(api_token_issue(username=f"fin-{uuid.uuid4().hex[:6]}", group="finance"))


@pytest.fixture
def merchant_id():
    return merchant_get_or_create(merchant_id=f"m-api-{uuid.uuid4().hex[:8]}").id


@pytest.fixture
def merchant_user(merchant_id):
    return api_client(api_token_issue(username=f"mu-{uuid.uuid4().hex[:6]}", merchant_id=merchant_id))


def _open_customer(finance, currency="JPY", **extra) -> str:
    customer = customer_register(**customer_details(), actor="test")
    body = {"owner_type": "customer", "owner_id": str(customer.id), "currency": currency, "kind": "customer_balance"}
    response = finance.post("/api/v1/accounts", {**body, **extra}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def _deposit(finance, account_id, amount, currency="JPY"):
    return finance.post(
        f"/api/v1/accounts/{account_id}/deposits",
        {"amount": {"amount": amount, "currency": currency}, "reference": "wire 42"},
        format="json",
    )


def test_open_deposit_transfer_and_read_balance(finance):
    # given two customer accounts, one funded by a deposit
    alice, bob = _open_customer(finance), _open_customer(finance)
    deposit = _deposit(finance, alice, 10_000)
    assert deposit.status_code == 201
    assert deposit.json()["status"] == "completed"
    # when 2,500 yen are transferred
    response = finance.post(
        "/api/v1/transfers",
        {"from_account": alice, "to_account": bob, "amount": {"amount": 2500, "currency": "JPY"}, "reference": "r1"},
        format="json",
    )
    # then the transfer completed, and once projected the balances say so
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "completed"
    assert uuid.UUID(body["id"])
    assert body["amount"] == {"amount": 2500, "currency": "JPY"}
    projection_run(name=BALANCES)
    balance = finance.get(f"/api/v1/accounts/{alice}/balance").json()
    assert balance["available"] == {"amount": 7500, "currency": "JPY"}
    assert balance["pending"] == {"amount": 0, "currency": "JPY"}
    assert balance["updated_at"]
    assert finance.get(f"/api/v1/accounts/{bob}/balance").json()["available"]["amount"] == 2500


def test_transfer_below_floor_is_422_and_currency_mismatch_400(finance):
    alice, bob, dollars = _open_customer(finance), _open_customer(finance), _open_customer(finance, "USD")
    _deposit(finance, alice, 100)
    below = finance.post(
        "/api/v1/transfers",
        {"from_account": alice, "to_account": bob, "amount": {"amount": 101, "currency": "JPY"}},
        format="json",
    )
    assert below.status_code == 422
    assert below.json()["code"] == "insufficient_funds"
    mismatch = finance.post(
        "/api/v1/transfers",
        {"from_account": alice, "to_account": dollars, "amount": {"amount": 1, "currency": "JPY"}},
        format="json",
    )
    assert mismatch.status_code == 400
    assert mismatch.json()["code"] == "currency_mismatch"
    floats = finance.post(
        "/api/v1/transfers",
        {"from_account": alice, "to_account": bob, "amount": {"amount": 1.5, "currency": "JPY"}},
        format="json",
    )
    assert floats.status_code == 400


def test_transfer_retried_with_the_same_key_happens_once(finance):
    alice, bob = _open_customer(finance), _open_customer(finance)
    _deposit(finance, alice, 1_000)
    body = {"from_account": alice, "to_account": bob, "amount": {"amount": 300, "currency": "JPY"}}
    first = finance.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY="t-1")
    again = finance.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY="t-1")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["id"] == first.json()["id"]
    assert again["Idempotent-Replayed"] == "true"
    projection_run(name=BALANCES)
    assert finance.get(f"/api/v1/accounts/{alice}/balance").json()["available"]["amount"] == 700


def test_open_account_refuses_bad_input_and_duplicates(finance, merchant_id):
    bad_kind = finance.post(
        "/api/v1/accounts",
        {"owner_type": "merchant", "owner_id": merchant_id, "currency": "JPY", "kind": "customer_balance"},
        format="json",
    )
    assert bad_kind.status_code == 400
    malformed = finance.post(
        "/api/v1/accounts",
        {"owner_type": "customer", "owner_id": "not an id", "currency": "JPY", "kind": "customer_balance"},
        format="json",
    )
    assert malformed.status_code == 400
    unknown_currency = finance.post(
        "/api/v1/accounts",
        {"owner_type": "customer", "owner_id": "c-1", "currency": "XXZ", "kind": "customer_balance"},
        format="json",
    )
    assert unknown_currency.status_code == 400
    # a customer of another system may hold several accounts of a kind
    customer = {"owner_type": "customer", "owner_id": f"ext-{uuid.uuid4().hex[:8]}", "currency": "JPY"}
    for _ in range(2):
        assert (
            finance.post("/api/v1/accounts", {**customer, "kind": "customer_balance"}, format="json").status_code == 201
        )
    # a merchant holds one payable account per currency
    body = {"owner_type": "merchant", "owner_id": merchant_id, "currency": "EUR", "kind": "merchant_payable"}
    assert finance.post("/api/v1/accounts", body, format="json").status_code == 201
    duplicate = finance.post("/api/v1/accounts", body, format="json")
    assert duplicate.status_code == 409
    assert duplicate.json()["code"] == "account_exists"


def test_merchants_read_only_their_own_accounts_and_write_nothing(finance, merchant_id, merchant_user):
    own = finance.post(
        "/api/v1/accounts",
        {"owner_type": "merchant", "owner_id": merchant_id, "currency": "JPY", "kind": "merchant_payable"},
        format="json",
    ).json()["id"]
    customer = _open_customer(finance)
    projection_run(name=BALANCES)
    assert merchant_user.get(f"/api/v1/accounts/{own}/balance").status_code == 200
    assert merchant_user.get(f"/api/v1/accounts/{own}/entries").status_code == 200
    assert merchant_user.get(f"/api/v1/accounts/{customer}/balance").status_code == 404
    assert merchant_user.get(f"/api/v1/accounts/{customer}/entries").status_code == 404
    assert _deposit(merchant_user, own, 100).status_code == 403
    transfer = merchant_user.post(
        "/api/v1/transfers",
        {"from_account": own, "to_account": customer, "amount": {"amount": 1, "currency": "JPY"}},
        format="json",
    )
    assert transfer.status_code == 403


def test_balance_falls_back_to_the_table_on_a_cache_miss(finance):
    alice = _open_customer(finance)
    _deposit(finance, alice, 500)
    projection_run(name=BALANCES)
    assert finance.get(f"/api/v1/accounts/{alice}/balance").json()["source"] == "cache"
    get_redis_connection("default").delete(f"balance:{alice}")
    fallback = finance.get(f"/api/v1/accounts/{alice}/balance").json()
    assert (fallback["source"], fallback["available"]["amount"]) == ("table", 500)


def test_entries_are_postings_paginated_by_cursor(finance):
    alice, bob = _open_customer(finance), _open_customer(finance)
    _deposit(finance, alice, 1_000)
    for _ in range(4):
        finance.post(
            "/api/v1/transfers",
            {"from_account": alice, "to_account": bob, "amount": {"amount": 10, "currency": "JPY"}},
            format="json",
        )
    first = finance.get(f"/api/v1/accounts/{alice}/entries?limit=3").json()
    assert len(first["results"]) == 3
    rest = finance.get(f"/api/v1/accounts/{alice}/entries?limit=3&cursor={first['next_cursor']}").json()
    assert len(rest["results"]) == 2
    assert rest["next_cursor"] is None
    amounts = [r["amount"]["amount"] for r in first["results"] + rest["results"]]
    assert amounts == [-10, -10, -10, -10, 1000]
    assert {r["kind"] for r in first["results"] + rest["results"]} == {"transfer", "deposit"}


def test_holds_over_the_api(finance):
    alice, bob = _open_customer(finance), _open_customer(finance)
    _deposit(finance, alice, 1_000)
    hold = finance.post(
        f"/api/v1/accounts/{alice}/holds", {"amount": {"amount": 400, "currency": "JPY"}}, format="json"
    )
    assert hold.status_code == 201
    settled = finance.post(f"/api/v1/holds/{hold.json()['id']}/settle", {"to_account": bob}, format="json")
    assert settled.json()["status"] == "settled"
    again = finance.post(f"/api/v1/holds/{hold.json()['id']}/release", format="json")
    assert again.status_code == 409
    projection_run(name=BALANCES)
    assert finance.get(f"/api/v1/accounts/{bob}/balance").json()["available"]["amount"] == 400


def test_balance_right_after_a_write_is_the_new_one_without_waiting_for_the_projection(finance):
    # given an account funded and paid from, with no projection run since
    alice, bob = _open_customer(finance), _open_customer(finance)
    _deposit(finance, alice, 900)
    finance.post(
        "/api/v1/transfers",
        {"from_account": alice, "to_account": bob, "amount": {"amount": 250, "currency": "JPY"}},
        format="json",
    )
    # when the balances are read at once, then Redis already holds them (written through after the commit)
    balance = finance.get(f"/api/v1/accounts/{alice}/balance").json()
    assert (balance["source"], balance["available"]["amount"], balance["version"]) == ("cache", 650, 3)
    assert finance.get(f"/api/v1/accounts/{bob}/balance").json()["available"]["amount"] == 250


def test_balance_of_an_account_nothing_has_projected_comes_from_the_ledger_row(finance, settings):
    settings.BALANCES_WRITE_THROUGH = False
    alice = _open_customer(finance)
    _deposit(finance, alice, 400)
    balance = finance.get(f"/api/v1/accounts/{alice}/balance").json()
    assert (balance["source"], balance["available"]["amount"]) == ("ledger", 400)
    assert finance.get(f"/api/v1/accounts/{uuid.uuid4()}/balance").status_code == 404
