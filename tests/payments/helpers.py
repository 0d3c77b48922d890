"""Plain helpers shared by the payments tests (fixtures live in conftest.py)."""

from __future__ import annotations

import datetime as dt
import uuid

from fintech.money import Money
from vault.services import card_tokenize

MERCHANT = "m-alpha"
OTHER_MERCHANT = "m-beta"
ACTOR = "user:test"

# Card processors' test numbers: what the vault derives from them, and what the simulator answers.
VISA = "4242424242424242"  # visa, 4242
MASTERCARD = "5555555555554444"  # mastercard, 4444
AMEX = "378282246310005"  # amex, 0005
JCB = "3566002020360505"  # jcb, 0505
DECLINED = "4000000000000002"  # declined, response code 05
INSUFFICIENT_FUNDS = "4000000000009995"  # insufficient funds, response code 51
# A few years ahead of whenever the suite runs, so the cards never expire under it.
EXP_MONTH, EXP_YEAR = 12, dt.datetime.now(tz=dt.UTC).year + 4


def jpy(minor: int) -> Money:
    return Money(minor, "JPY")


def unique_merchant_id() -> str:
    """A merchant id no other test uses: events outlive transactional tests, merchants do not."""
    return f"m-{uuid.uuid4().hex[:12]}"


def card_token(merchant_id: str, number: str = VISA) -> str:
    """The vault token of a test card for the merchant, tokenised through the vault's service: payments accept
    only their own merchant's unexpired vault tokens. The same card keeps its token within a merchant."""
    card = card_tokenize(card_number=number, exp_month=EXP_MONTH, exp_year=EXP_YEAR, merchant_id=merchant_id)
    return card.token
