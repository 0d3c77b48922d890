"""Card rules with no I/O: number and expiry validation, brand by BIN range, the masked form.

Error messages never contain the number: they reach API clients and logs.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from fintech.masking import mask

_SEPARATORS = re.compile(r"[ -]")


class VaultError(Exception):
    code = "vault_error"


class InvalidCard(VaultError):
    code = "invalid_card"


class TokenNotFound(VaultError):
    code = "not_found"


class DetokenizationDenied(VaultError):
    code = "permission_denied"


@dataclass(frozen=True)
class CardNumber:
    """A validated PAN. Its repr hides the digits, so it cannot leak through a traceback or a debugger dump."""

    digits: str

    def __repr__(self) -> str:
        return f"CardNumber({self.masked})"

    __str__ = __repr__

    @property
    def last4(self) -> str:
        return self.digits[-4:]

    @property
    def masked(self) -> str:
        return mask(self.digits)

    @property
    def brand(self) -> str:
        return brand_of(self.digits)


def card_number_parse(raw: object) -> CardNumber:
    if not isinstance(raw, str):
        raise InvalidCard("card_number must be a string of digits")
    digits = _SEPARATORS.sub("", raw.strip())
    if not digits.isascii() or not digits.isdigit():
        raise InvalidCard("card_number may contain only digits, spaces and dashes")
    if not 12 <= len(digits) <= 19:
        raise InvalidCard("card_number must have 12 to 19 digits")
    if not luhn_valid(digits):
        raise InvalidCard("card_number fails the Luhn check")
    return CardNumber(digits)


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def expiry_check(exp_month: object, exp_year: object, *, today: dt.date) -> tuple[int, int]:
    """(month, four-digit year); a card is valid through the last day of its expiry month."""
    month, year = _integer("exp_month", exp_month), _integer("exp_year", exp_year)
    if not 1 <= month <= 12:
        raise InvalidCard("exp_month must be 1 to 12")
    if year < 100:
        year += 2000
    if year > today.year + 50:
        raise InvalidCard("exp_year is too far ahead")
    if is_expired(month, year, today=today):
        raise InvalidCard("the card has expired")
    return month, year


def _integer(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidCard(f"{name} must be an integer")
    return value


def is_expired(exp_month: int, exp_year: int, *, today: dt.date) -> bool:
    return (exp_year, exp_month) < (today.year, today.month)


# (first digits low, high, brand) on the BIN prefix, longest prefixes checked first.
_BIN_RANGES = [
    (2221, 2720, 4, "mastercard"),
    (3528, 3589, 4, "jcb"),
    (6011, 6011, 4, "discover"),
    (644, 649, 3, "discover"),
    (300, 305, 3, "diners"),
    (51, 55, 2, "mastercard"),
    (34, 34, 2, "amex"),
    (37, 37, 2, "amex"),
    (36, 36, 2, "diners"),
    (38, 39, 2, "diners"),
    (65, 65, 2, "discover"),
    (62, 62, 2, "unionpay"),
    (4, 4, 1, "visa"),
]


def brand_of(digits: str) -> str:
    for low, high, length, brand in _BIN_RANGES:
        if low <= int(digits[:length]) <= high:
            return brand
    return "unknown"
