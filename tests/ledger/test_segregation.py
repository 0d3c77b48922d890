"""Segregation of customer funds: money moves by a command only between account kinds where the ledger rules
let it (ledger.domain.MOVEMENTS); the company's trust, clearing and suspense accounts move only with the
ledger's own bookings."""

import uuid

import pytest

from accounts.services import api_token_issue, customer_register, merchant_get_or_create
from fintech.money import Money
from ledger import services
from ledger.domain import AccountKind, MovementNotAllowed
from ledger.journal import company_account_id
from ledger.models import Account, Hold, JournalEntry
from ledger.reconciliation import ledger_reconcile
from tests.accounts.helpers import customer_details
from tests.ledger.conftest import ACTOR
from tests.vault.helpers import api_client

pytestmark = pytest.mark.django_db(transaction=True)

COMPANY_ONLY = (AccountKind.SEGREGATED_TRUST, AccountKind.CLEARING, AccountKind.SUSPENSE)


@pytest.fixture
def finance():
    return api_client(api_token_issue(username=f"fin-{uuid.uuid4().hex[:6]}", group="finance"))


def _open(finance, body) -> str:
    response = finance.post("/api/v1/accounts", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def test_hold_on_the_trust_account_settled_to_a_merchant_is_refused_and_the_ledger_reconciles(finance):
    # given a funded customer (so the trust account stands at minus what customers hold) and a merchant
    customer = customer_register(**customer_details(), actor="test")
    alice = _open(
        finance, {"owner_type": "customer", "owner_id": str(customer.id), "currency": "JPY", "kind": "customer_balance"}
    )
    deposit = finance.post(
        f"/api/v1/accounts/{alice}/deposits", {"amount": {"amount": 10_000, "currency": "JPY"}}, format="json"
    )
    assert deposit.status_code == 201
    merchant_id = merchant_get_or_create(merchant_id=f"m-seg-{uuid.uuid4().hex[:8]}").id
    merchant = _open(
        finance, {"owner_type": "merchant", "owner_id": merchant_id, "currency": "JPY", "kind": "merchant_payable"}
    )
    trust = company_account_id(kind=AccountKind.SEGREGATED_TRUST, currency="JPY")
    trust_before = Account.objects.get(id=trust).available
    # when finance places a hold on the trust account (it has no floor) to settle it to the merchant
    hold = finance.post(
        f"/api/v1/accounts/{trust}/holds", {"amount": {"amount": 10_000, "currency": "JPY"}}, format="json"
    )
    # then it is refused as a movement the ledger does not allow, and nothing moved
    assert hold.status_code == 422, hold.content
    assert hold["Content-Type"] == "application/problem+json"
    assert hold.json()["code"] == "movement_not_allowed"
    assert not Hold.objects.filter(account_id=trust).exists()
    assert Account.objects.get(id=trust).available == trust_before
    # and a transfer out of clearing or suspense to the merchant is refused the same way
    for kind in (AccountKind.CLEARING, AccountKind.SUSPENSE):
        source = company_account_id(kind=kind, currency="JPY")
        transfer = finance.post(
            "/api/v1/transfers",
            {"from_account": str(source), "to_account": merchant, "amount": {"amount": 1, "currency": "JPY"}},
            format="json",
        )
        assert (transfer.status_code, transfer.json()["code"]) == (422, "movement_not_allowed")
    # and the ledger still reconciles: customer funds equal the trust account
    report = ledger_reconcile()
    assert report.ok, report


def test_a_hold_settled_into_a_company_only_account_is_refused(customer_account):
    alice = customer_account(funded=1_000)
    hold = services.hold_place(account_id=alice.id, amount=Money(300, "JPY"), actor=ACTOR)
    for kind in COMPANY_ONLY:
        with pytest.raises(MovementNotAllowed):
            services.hold_settle(hold_id=hold.id, to_account=company_account_id(kind=kind, currency="JPY"), actor=ACTOR)
    assert Hold.objects.get(id=hold.id).status == "held"
    # while settling it to a merchant is one of the movements the rules allow
    merchant = services.account_open(
        owner_type="merchant",
        owner_id=merchant_get_or_create(merchant_id=f"m-seg-{uuid.uuid4().hex[:8]}").id,
        currency="JPY",
        kind=AccountKind.MERCHANT_PAYABLE,
        actor=ACTOR,
    )
    services.hold_settle(hold_id=hold.id, to_account=merchant.id, actor=ACTOR)
    assert Hold.objects.get(id=hold.id).status == "settled"


@pytest.mark.parametrize("kind", COMPANY_ONLY)
def test_company_only_accounts_take_no_hold_transfer_or_deposit(customer_account, kind):
    alice = customer_account(funded=1_000)
    company = company_account_id(kind=kind, currency="JPY")
    entries = JournalEntry.objects.count()
    with pytest.raises(MovementNotAllowed):
        services.hold_place(account_id=company, amount=Money(1, "JPY"), actor=ACTOR)
    with pytest.raises(MovementNotAllowed):
        services.transfer_create(from_account=alice.id, to_account=company, amount=Money(1, "JPY"), actor=ACTOR)
    with pytest.raises(MovementNotAllowed):
        services.transfer_create(from_account=company, to_account=alice.id, amount=Money(1, "JPY"), actor=ACTOR)
    with pytest.raises(MovementNotAllowed):
        services.account_deposit(account_id=company, amount=Money(1, "JPY"), actor=ACTOR)
    assert JournalEntry.objects.count() == entries
