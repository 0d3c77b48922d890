"""Ledger tests commit (the balance rule is a deferred constraint, checked at commit) and work on accounts of
their own: ledger tables are never flushed, so every test opens fresh owners."""

from __future__ import annotations

import uuid

import pytest

from accounts import services as accounts_services
from fintech.money import Money
from ledger import services
from ledger.domain import AccountKind
from tests.accounts.helpers import customer_details

ACTOR = "user:ledger-test"


@pytest.fixture
def customer_account(transactional_db):
    """Open a customer balance account (a new customer each call) in a currency, optionally funded."""

    def open_(currency: str = "JPY", funded: int = 0, **options):
        customer = accounts_services.customer_register(**customer_details(), actor=ACTOR)
        account = services.account_open(
            owner_type="customer",
            owner_id=str(customer.id),
            currency=currency,
            kind=AccountKind.CUSTOMER_BALANCE,
            actor=ACTOR,
            **options,
        )
        if funded:
            services.account_deposit(account_id=account.id, amount=Money(funded, currency), actor=ACTOR)
        return account

    return open_


@pytest.fixture
def merchant_account(transactional_db):
    def open_(currency: str = "JPY", merchant_id: str | None = None):
        merchant = accounts_services.merchant_get_or_create(
            merchant_id=merchant_id or f"m-ledger-{uuid.uuid4().hex[:8]}"
        )
        return services.account_open(
            owner_type="merchant",
            owner_id=merchant.id,
            currency=currency,
            kind=AccountKind.MERCHANT_PAYABLE,
            actor=ACTOR,
        )

    return open_
