"""Money as integer minor units of an ISO 4217 currency.

Pure Python, no Django: the domain layers of every app use it. There is no float path anywhere: amounts are
ints, parsing rejects floats, NaN, booleans and non-integers, and arithmetic or ordering across currencies
raises instead of guessing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

# ISO 4217 minor-unit exponents of the currencies in circulation (funds codes and metals left out).
CURRENCY_EXPONENTS: dict[str, int] = {
    **dict.fromkeys(
        "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL BSD BTN BWP BYN BZD CAD "
        "CDF CHF CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD "
        "HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD "
        "MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON "
        "RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD "
        "TZS UAH USD UYU UZS VES WST XCD YER ZAR ZMW ZWL".split(),
        2,
    ),
    **dict.fromkeys("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(), 0),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
    "CLF": 4,
    "UYW": 4,
}

# Bigger than any real balance, small enough to stay exact in every JSON parser and in a PostgreSQL bigint.
MAX_MINOR = 2**53 - 1

_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")


class MoneyError(ValueError):
    """An amount or currency that cannot be money."""


class CurrencyMismatch(MoneyError):
    """Arithmetic or comparison between two currencies."""


def currency_exponent(currency: str) -> int:
    """The number of minor-unit digits of an ISO 4217 currency; unknown codes raise."""
    exponent = CURRENCY_EXPONENTS.get(currency) if isinstance(currency, str) else None
    if exponent is not None:
        return exponent
    if not isinstance(currency, str) or not _CURRENCY_RE.match(currency):
        raise MoneyError(f"currency must be a three-letter ISO 4217 code, got {currency!r}")
    raise MoneyError(f"unknown currency {currency!r}")


def minor_limit(currency: str, max_major: int) -> int:
    """`max_major` major units of a currency in its minor units (1,000 is 1,000 JPY, 1,000.00 USD, 1,000.000 KWD),
    never beyond what Money can hold (MAX_MINOR): a configured limit, as the domains check it."""
    return min(max_major * 10 ** currency_exponent(currency), MAX_MINOR)


def _check_minor(minor: object) -> int:
    # bool is an int subclass; True yen is not an amount.
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise MoneyError(f"amount must be an integer number of minor units, got {type(minor).__name__}")
    if abs(minor) > MAX_MINOR:
        raise MoneyError("amount out of range")
    return minor


@dataclass(frozen=True, slots=True)
class Money:
    minor: int
    currency: str

    def __post_init__(self) -> None:
        _check_minor(self.minor)
        currency_exponent(self.currency)

    # construction -------------------------------------------------------------------------------------
    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    @classmethod
    def from_json(cls, value: object) -> Money:
        """Parse `{"amount": <int minor units>, "currency": "JPY"}`; anything else raises MoneyError."""
        if not isinstance(value, dict):
            raise MoneyError('money must be an object {"amount": <int>, "currency": "<ISO 4217>"}')
        extra = set(value) - {"amount", "currency"}
        if extra:
            raise MoneyError(f"unexpected money fields: {', '.join(sorted(map(repr, extra)))}")
        if "amount" not in value or "currency" not in value:
            raise MoneyError("money needs both amount and currency")
        return cls(value["amount"], value["currency"])

    @classmethod
    def from_decimal_string(cls, text: str, currency: str) -> Money:
        """Parse a major-unit decimal string such as "12.34" exactly; more digits than the currency has raise."""
        if not isinstance(text, str):
            raise MoneyError("decimal amount must be given as a string")
        try:
            value = Decimal(text.strip())
        except InvalidOperation:
            raise MoneyError(f"not a decimal amount: {text!r}") from None
        # Exact integer arithmetic on the digits: Decimal.scaleb would round at the context's precision.
        sign, digits, exponent = value.as_tuple()
        if not isinstance(exponent, int):  # 'n', 'N', 'F': NaN, sNaN, Infinity
            raise MoneyError("amount must be finite")
        coefficient = int("".join(map(str, digits)))
        shift = exponent + currency_exponent(currency)
        if coefficient == 0:
            minor = 0
        elif shift >= 0:
            if len(digits) + shift > len(str(MAX_MINOR)):
                raise MoneyError("amount out of range")
            minor = coefficient * 10**shift
        else:
            minor, remainder = divmod(coefficient, 10 ** min(-shift, len(digits) + 1))
            if remainder or -shift > len(digits):
                raise MoneyError(f"{currency} has {currency_exponent(currency)} decimal places")
        return cls(-minor if sign else minor, currency)

    # rendering ----------------------------------------------------------------------------------------
    def to_json(self) -> dict:
        return {"amount": self.minor, "currency": self.currency}

    def to_decimal_string(self) -> str:
        exponent = currency_exponent(self.currency)
        return f"{Decimal(self.minor).scaleb(-exponent):.{exponent}f}"

    def __str__(self) -> str:
        return f"{self.to_decimal_string()} {self.currency}"

    # arithmetic ---------------------------------------------------------------------------------------
    def _same(self, other: object) -> Money:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatch(f"{self.currency} and {other.currency} do not mix")
        return other

    def __add__(self, other: Money) -> Money:
        return Money(self.minor + self._same(other).minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        return Money(self.minor - self._same(other).minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.minor, self.currency)

    def __mul__(self, factor: int) -> Money:
        return Money(self.minor * _check_minor(factor), self.currency)

    __rmul__ = __mul__

    def __lt__(self, other: Money) -> bool:
        return self.minor < self._same(other).minor

    def __le__(self, other: Money) -> bool:
        return self.minor <= self._same(other).minor

    def __gt__(self, other: Money) -> bool:
        return self.minor > self._same(other).minor

    def __ge__(self, other: Money) -> bool:
        return self.minor >= self._same(other).minor

    def is_zero(self) -> bool:
        return self.minor == 0

    def is_positive(self) -> bool:
        return self.minor > 0

    def allocate(self, ratios: list[int]) -> list[Money]:
        """Split into parts proportional to integer ratios; the remainder goes to the first parts, so
        the parts always sum to the whole."""
        if not ratios or any(isinstance(r, bool) or not isinstance(r, int) or r < 0 for r in ratios):
            raise MoneyError("ratios must be non-negative integers")
        total = sum(ratios)
        if total == 0:
            raise MoneyError("ratios must not all be zero")
        parts = [self.minor * r // total for r in ratios]
        remainder = self.minor - sum(parts)
        # Floor division leaves 0 <= remainder < number of shares; a part with no share gets none of it.
        sharing = [i for i, r in enumerate(ratios) if r]
        for i in sharing[:remainder]:
            parts[i] += 1
        return [Money(p, self.currency) for p in parts]
