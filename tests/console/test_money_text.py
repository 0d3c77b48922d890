"""Amounts on the console's pages: exact, in the currency's decimals, and shown even past one payment's limit
(a day's sum)."""

import pytest

from console.selectors import money_text
from fintech.money import MAX_MINOR


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (0, "JPY", "0 JPY"),
        (1234500, "JPY", "1,234,500 JPY"),
        (1050, "USD", "10.50 USD"),
        (5, "USD", "0.05 USD"),
        (-1050, "USD", "-10.50 USD"),
        (1, "BHD", "0.001 BHD"),
        (MAX_MINOR * 1000 + 7, "JPY", f"{MAX_MINOR * 1000 + 7:,} JPY"),
        (10**30 + 1, "USD", "10,000,000,000,000,000,000,000,000,000.01 USD"),
    ],
)
def test_money_text(minor, currency, text):
    assert money_text(minor, currency) == text
