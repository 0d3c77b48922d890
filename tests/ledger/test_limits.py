"""Bounds at the edge of the ledger API: amounts above LEDGER_MAX_AMOUNT, and integers beyond 64 bits, answer
400 problem+json, never a 5xx."""

import uuid

import pytest
from django.db import connection

from accounts.services import api_token_issue, customer_register
from fintech.money import Money
from ledger.models import Account, JournalEntry
from payments import domain as payment_domain
from payments import services as payment_services
from tests.accounts.helpers import customer_details
from tests.vault.helpers import EXP_MONTH, EXP_YEAR, VISA, api_client
from vault.services import card_tokenize

pytestmark = pytest.mark.django_db(transaction=True)

HUGE = 2**64 + 1


@pytest.fixture
def finance():
    return api_client(api_token_issue(username=f"fin-{uuid.uuid4().hex[:6]}", group="finance"))


def _customer_body(**extra) -> dict:
    customer = customer_register(**customer_details(), actor="test")
    body = {"owner_type": "customer", "owner_id": str(customer.id), "currency": "JPY", "kind": "customer_balance"}
    return {**body, **extra}


def _open(finance) -> str:
    response = finance.post("/api/v1/accounts", _customer_body(), format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def _event_count() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM fintech_event")
        return cursor.fetchone()[0]


def _problem(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == code


@pytest.mark.parametrize("floor", [2**63, -(2**63) - 1, HUGE, -HUGE, 10**40, 2**53])
def test_open_account_with_a_floor_beyond_range_is_400(finance, floor):
    _problem(finance.post("/api/v1/accounts", _customer_body(floor=floor), format="json"), 400, "validation_error")


@pytest.mark.parametrize("owner_id", [HUGE, 10**40, -1])
def test_open_account_with_a_huge_integer_owner_id_is_not_a_server_error(finance, owner_id):
    response = finance.post("/api/v1/accounts", _customer_body(owner_id=owner_id), format="json")
    # a number is taken as the text of an id (a customer of another system): valid ids open, others are 400
    assert response.status_code in (201, 400), response.content


@pytest.mark.parametrize("cursor", [str(2**63), str(HUGE), "9" * 400, "-1", "0"])
def test_entries_with_a_cursor_beyond_range_is_400(finance, cursor):
    account = _open(finance)
    _problem(finance.get(f"/api/v1/accounts/{account}/entries?cursor={cursor}"), 400, "validation_error")


@pytest.mark.parametrize("limit", [str(2**63), str(HUGE), "9" * 400])
def test_entries_with_a_huge_limit_is_400(finance, limit):
    account = _open(finance)
    _problem(finance.get(f"/api/v1/accounts/{account}/entries?limit={limit}"), 400, "validation_error")


def _writes(finance, account: str, other: str, money: dict) -> list:
    """A deposit, a hold and a transfer of `money`."""
    return [
        finance.post(f"/api/v1/accounts/{account}/deposits", {"amount": money}, format="json"),
        finance.post(f"/api/v1/accounts/{account}/holds", {"amount": money}, format="json"),
        finance.post(
            "/api/v1/transfers", {"from_account": account, "to_account": other, "amount": money}, format="json"
        ),
    ]


@pytest.mark.parametrize("amount", [2**63, HUGE, -HUGE, 2**53])
def test_amounts_beyond_money_are_400_everywhere(finance, amount):
    account, other = _open(finance), _open(finance)
    money = {"amount": amount, "currency": "JPY"}
    for response in _writes(finance, account, other, money):
        assert response.status_code == 400, response.content
        assert response["Content-Type"] == "application/problem+json"


def test_amounts_above_the_ledger_limit_are_400_amount_too_large(finance, settings):
    settings.LEDGER_MAX_AMOUNT = 1_000  # major units: 1,000 JPY, 1,000.00 USD
    account, other = _open(finance), _open(finance)
    entries = JournalEntry.objects.count()
    over, limit = {"amount": 1_001, "currency": "JPY"}, {"amount": 1_000, "currency": "JPY"}
    for response in _writes(finance, account, other, over):
        _problem(response, 400, "amount_too_large")
    assert JournalEntry.objects.count() == entries
    # the limit itself is allowed
    assert finance.post(f"/api/v1/accounts/{account}/deposits", {"amount": limit}, format="json").status_code == 201
    assert Account.objects.get(id=account).available == 1_000
    # and it scales with the currency's exponent: 1,000.00 USD passes, 1,000.01 does not
    dollars = finance.post("/api/v1/accounts", _customer_body(currency="USD"), format="json").json()["id"]
    deposit = finance.post(
        f"/api/v1/accounts/{dollars}/deposits", {"amount": {"amount": 100_000, "currency": "USD"}}, format="json"
    )
    assert deposit.status_code == 201
    _problem(
        finance.post(
            f"/api/v1/accounts/{dollars}/deposits", {"amount": {"amount": 100_001, "currency": "USD"}}, format="json"
        ),
        400,
        "amount_too_large",
    )


def test_a_payment_above_the_payments_limit_is_400_amount_too_large(settings):
    # given a merchant user with a card token, and a limit of 1,000 major units per payment
    settings.PAYMENTS_MAX_AMOUNT = 1_000
    merchant = f"m-lim-{uuid.uuid4().hex[:8]}"
    client = api_client(api_token_issue(username=f"mu-{uuid.uuid4().hex[:6]}", merchant_id=merchant))
    token = card_tokenize(card_number=VISA, exp_month=EXP_MONTH, exp_year=EXP_YEAR, merchant_id=merchant).token

    def create(minor: int, currency: str = "JPY"):
        body = {"amount": {"amount": minor, "currency": currency}, "payment_method": {"token": token}}
        return client.post("/api/v1/payments", body, format="json")

    # when a payment of 1,001 JPY (or 1,000.01 USD) is created, then it is refused with nothing written
    events = _event_count()
    _problem(create(1_001), 400, "amount_too_large")
    _problem(create(100_001, "USD"), 400, "amount_too_large")
    assert _event_count() == events
    assert create(1_000).status_code == 201
    assert create(100_000, "USD").status_code == 201
    # and the service refuses it too, below the API
    with pytest.raises(payment_domain.AmountTooLarge):
        payment_services.payment_initiate(
            merchant_id=merchant, amount=Money(1_001, "JPY"), payment_method_token=token, actor="test"
        )


@pytest.mark.parametrize("field", ["from_account", "to_account"])
def test_transfer_naming_an_account_by_a_huge_integer_is_400(finance, field):
    account, other = _open(finance), _open(finance)
    body = {"from_account": account, "to_account": other, "amount": {"amount": 1, "currency": "JPY"}, field: 2**200}
    _problem(finance.post("/api/v1/transfers", body, format="json"), 400, "validation_error")
