"""Money: integer minor units of an ISO 4217 currency, no float path, no arithmetic across currencies."""

from __future__ import annotations

import json
from decimal import Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from fintech.money import CURRENCY_EXPONENTS, MAX_MINOR, CurrencyMismatch, Money, MoneyError, currency_exponent

CURRENCIES = sorted(CURRENCY_EXPONENTS)

currencies = st.sampled_from(CURRENCIES)
# Small enough that three of them add up without leaving the range.
amounts = st.integers(min_value=-(MAX_MINOR // 3), max_value=MAX_MINOR // 3)
any_amount = st.integers(min_value=-MAX_MINOR, max_value=MAX_MINOR)


@st.composite
def same_currency(draw, count: int = 2) -> list[Money]:
    currency = draw(currencies)
    return [Money(draw(amounts), currency) for _ in range(count)]


@st.composite
def two_currencies(draw) -> tuple[Money, Money]:
    first, second = draw(st.lists(currencies, min_size=2, max_size=2, unique=True))
    return Money(draw(any_amount), first), Money(draw(any_amount), second)


# exponents ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("currency", "exponent", "minor", "text"),
    [
        ("JPY", 0, 1234, "1234"),
        ("USD", 2, 1234, "12.34"),
        ("KWD", 3, 1234, "1.234"),
        ("CLF", 4, 1234, "0.1234"),
    ],
)
def test_exponent_lookup_returns_iso_4217_minor_digits(currency, exponent, minor, text):
    # when / then
    assert currency_exponent(currency) == exponent
    assert Money(minor, currency).to_decimal_string() == text
    assert Money.from_decimal_string(text, currency) == Money(minor, currency)


@pytest.mark.parametrize(
    ("money", "text"),
    [
        (Money(0, "JPY"), "0"),
        (Money(0, "USD"), "0.00"),
        (Money(0, "KWD"), "0.000"),
        (Money(5, "USD"), "0.05"),
        (Money(-5, "USD"), "-0.05"),
        (Money(-1, "KWD"), "-0.001"),
        (Money(100, "USD"), "1.00"),
        (Money(-1000, "JPY"), "-1000"),
        (Money(MAX_MINOR, "USD"), "90071992547409.91"),
    ],
)
def test_to_decimal_string_renders_every_minor_digit(money, text):
    assert money.to_decimal_string() == text


def test_str_renders_amount_and_currency():
    assert str(Money(1234, "USD")) == "12.34 USD"
    assert str(Money(1234, "JPY")) == "1234 JPY"


# construction ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "minor",
    [1.0, 0.5, float("nan"), float("inf"), True, False, "100", Decimal(100), Fraction(1, 1), None, [1]],
    ids=repr,
)
def test_construct_with_non_integer_amount_rejected(minor):
    with pytest.raises(MoneyError, match="integer number of minor units"):
        Money(minor, "USD")


@pytest.mark.parametrize("currency", ["usd", "US", "USDD", "XXX", "ABC", "", None, 840, b"USD", " USD"], ids=repr)
def test_construct_with_unknown_currency_rejected(currency):
    with pytest.raises(MoneyError):
        Money(100, currency)


@pytest.mark.parametrize("minor", [MAX_MINOR + 1, -MAX_MINOR - 1, 2**63])
def test_construct_beyond_max_minor_rejected(minor):
    with pytest.raises(MoneyError, match="out of range"):
        Money(minor, "USD")


@pytest.mark.parametrize("minor", [MAX_MINOR, -MAX_MINOR, 0])
def test_construct_at_bounds_accepted(minor):
    assert Money(minor, "USD").minor == minor


def test_zero_builds_zero_of_currency():
    zero = Money.zero("KWD")
    assert zero == Money(0, "KWD")
    assert zero.is_zero()
    assert not zero.is_positive()


def test_money_is_immutable_and_hashable():
    money = Money(100, "USD")
    with pytest.raises(AttributeError):
        money.minor = 200  # type: ignore[misc]
    assert {money, Money(100, "USD")} == {money}


# JSON -----------------------------------------------------------------------------------------------------
def test_to_json_carries_integer_amount_and_currency():
    assert Money(1234, "JPY").to_json() == {"amount": 1234, "currency": "JPY"}
    assert json.dumps(Money(1234, "KWD").to_json(), sort_keys=True) == '{"amount": 1234, "currency": "KWD"}'


@pytest.mark.parametrize(
    "value",
    [
        {"amount": 10.0, "currency": "USD"},
        {"amount": 10.5, "currency": "USD"},
        {"amount": float("nan"), "currency": "USD"},
        {"amount": float("-inf"), "currency": "USD"},
        {"amount": True, "currency": "USD"},
        {"amount": "10", "currency": "USD"},
        {"amount": "10.00", "currency": "USD"},
        {"amount": None, "currency": "USD"},
        {"amount": Decimal(10), "currency": "USD"},
        {"amount": 10, "currency": "usd"},
        {"amount": 10, "currency": "ZZZ"},
        {"amount": 10, "currency": None},
        {"amount": 10, "currency": "USD", "scale": 2},
        {"amount": 10, "currency": "USD", 1: "x"},
        {"amount": 10},
        {"currency": "USD"},
        {},
        {"amount": MAX_MINOR + 1, "currency": "USD"},
        [10, "USD"],
        "10 USD",
        10,
        None,
    ],
    ids=repr,
)
def test_from_json_with_malformed_value_rejected(value):
    with pytest.raises(MoneyError):
        Money.from_json(value)


@pytest.mark.parametrize(
    "text",
    [
        '{"amount": 1e2, "currency": "USD"}',
        '{"amount": 100.0, "currency": "USD"}',
        '{"amount": NaN, "currency": "USD"}',
        '{"amount": Infinity, "currency": "USD"}',
        '{"amount": true, "currency": "USD"}',
        '{"amount": "100", "currency": "USD"}',
    ],
)
def test_from_json_of_parsed_document_without_integer_amount_rejected(text):
    # given a document as a client would send it
    value = json.loads(text)
    # when / then
    with pytest.raises(MoneyError):
        Money.from_json(value)


@given(currency=currencies, minor=any_amount)
def test_json_round_trip_returns_same_money(currency, minor):
    # given
    money = Money(minor, currency)
    # when
    parsed = Money.from_json(json.loads(json.dumps(money.to_json())))
    # then
    assert parsed == money
    assert type(parsed.minor) is int


# decimal strings ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("12.34", "USD", 1234),
        ("12.3", "USD", 1230),
        ("12", "USD", 1200),
        ("12.340", "USD", 1234),
        (" 12.34 ", "USD", 1234),
        ("-0.01", "USD", -1),
        ("-0", "USD", 0),
        ("1000", "JPY", 1000),
        ("1000.0", "JPY", 1000),
        ("1.234", "KWD", 1234),
        ("0.001", "KWD", 1),
        ("1e2", "USD", 10000),
    ],
)
def test_from_decimal_string_parses_exactly(text, currency, minor):
    assert Money.from_decimal_string(text, currency) == Money(minor, currency)


@pytest.mark.parametrize(
    ("text", "currency"),
    [
        ("12.345", "USD"),
        ("0.001", "USD"),
        ("1.5", "JPY"),
        ("0.1", "JPY"),
        ("1.2345", "KWD"),
        ("NaN", "USD"),
        ("sNaN", "USD"),
        ("Infinity", "USD"),
        ("-Infinity", "USD"),
        ("", "USD"),
        ("12,34", "USD"),
        ("1,000", "USD"),
        ("12.34 USD", "USD"),
        ("0x10", "USD"),
        ("12.34", "XXX"),
        ("12.34", "usd"),
        ("90071992547409.92", "USD"),
    ],
)
def test_from_decimal_string_with_invalid_text_rejected(text, currency):
    with pytest.raises(MoneyError):
        Money.from_decimal_string(text, currency)


@pytest.mark.parametrize("value", [12.34, 12, Decimal("12.34"), None, b"12.34"], ids=repr)
def test_from_decimal_string_of_non_string_rejected(value):
    with pytest.raises(MoneyError, match="string"):
        Money.from_decimal_string(value, "USD")


@pytest.mark.parametrize(
    ("text", "currency"),
    [
        # 29 significant digits: one past the default decimal context's precision.
        ("1.0000000000000000000000000001", "USD"),
        ("1.00000000000000000000000000001", "JPY"),
        ("0.0010000000000000000000000000001", "KWD"),
        # an exponent past the decimal context's range underflows to zero
        ("1e-999999999", "USD"),
        ("-1e-999999999", "JPY"),
    ],
)
def test_from_decimal_string_with_sub_minor_digits_beyond_decimal_precision_rejected(text, currency):
    # given a string with a non-zero digit below the currency's minor unit, far to the right
    # when / then it is as invalid as "12.345 USD": rounding it away would invent money
    with pytest.raises(MoneyError):
        Money.from_decimal_string(text, currency)


@pytest.mark.parametrize("text", ["1e1000000", "-1e999999999", "1e999999"])
def test_from_decimal_string_with_huge_exponent_raises_money_error(text):
    # given an amount far out of range, written with an exponent
    # when / then it fails as any out-of-range amount does, with a MoneyError (a ValueError callers handle)
    with pytest.raises(MoneyError):
        Money.from_decimal_string(text, "USD")


@given(currency=currencies, minor=any_amount)
def test_decimal_string_round_trip_returns_same_money(currency, minor):
    # given
    money = Money(minor, currency)
    # when
    text = money.to_decimal_string()
    # then
    assert Money.from_decimal_string(text, currency) == money
    assert Decimal(text) == Decimal(minor).scaleb(-currency_exponent(currency))


@given(
    currency=currencies,
    minor=st.integers(min_value=-(10**12), max_value=10**12),
    extra_digits=st.integers(min_value=1, max_value=20),
    last=st.integers(min_value=1, max_value=9),
)
def test_from_decimal_string_with_more_digits_than_currency_rejected(currency, minor, extra_digits, last):
    # given a valid amount with one more non-zero digit further right than the currency allows
    exponent = currency_exponent(currency)
    with localcontext(prec=100):
        text = str(Decimal(minor).scaleb(-exponent) + Decimal(last).scaleb(-(exponent + extra_digits)))
    # when / then
    with pytest.raises(MoneyError):
        Money.from_decimal_string(text, currency)


# arithmetic -----------------------------------------------------------------------------------------------
def test_add_and_subtract_within_currency_returns_money():
    assert Money(150, "USD") + Money(75, "USD") == Money(225, "USD")
    assert Money(150, "USD") - Money(175, "USD") == Money(-25, "USD")
    assert -Money(150, "USD") == Money(-150, "USD")
    assert Money(150, "USD") * 3 == Money(450, "USD")
    assert 3 * Money(150, "USD") == Money(450, "USD")


@given(moneys=same_currency(3))
def test_add_is_associative_and_commutative(moneys):
    a, b, c = moneys
    assert (a + b) + c == a + (b + c)
    assert a + b == b + a
    assert a + Money.zero(a.currency) == a


@given(moneys=same_currency(3))
def test_subtract_is_inverse_of_add(moneys):
    a, b, c = moneys
    assert (a + b) - b == a
    assert a - b == -(b - a)
    assert (a - b) - c == a - (b + c)
    assert (a - a).is_zero()


@given(moneys=same_currency(2))
def test_ordering_within_currency_follows_minor_units(moneys):
    a, b = moneys
    assert (a < b) == (a.minor < b.minor)
    assert (a <= b) == (a.minor <= b.minor)
    assert (a > b) == (a.minor > b.minor)
    assert (a >= b) == (a.minor >= b.minor)


@given(pair=two_currencies())
def test_arithmetic_across_currencies_raises(pair):
    a, b = pair
    for operation in (
        lambda: a + b,
        lambda: a - b,
        lambda: a < b,
        lambda: a <= b,
        lambda: a > b,
        lambda: a >= b,
        lambda: max(a, b),
        lambda: sorted([a, b]),
    ):
        with pytest.raises(CurrencyMismatch):
            operation()


@given(pair=two_currencies())
def test_equality_across_currencies_is_false(pair):
    a, b = pair
    same_amount = Money(a.minor, b.currency)
    assert a != b
    assert a != same_amount


@pytest.mark.parametrize("other", [1, 1.0, Decimal(1), None, "1.00"], ids=repr)
def test_arithmetic_with_non_money_raises(other):
    money = Money(100, "USD")
    with pytest.raises(TypeError):
        money + other  # noqa: B018
    with pytest.raises(TypeError):
        money - other  # noqa: B018
    with pytest.raises(TypeError):
        money < other  # noqa: B015


@pytest.mark.parametrize("factor", [1.5, 2.0, True, Decimal(2), "2"], ids=repr)
def test_multiply_by_non_integer_rejected(factor):
    with pytest.raises(MoneyError):
        Money(100, "USD") * factor


def test_add_beyond_max_minor_rejected():
    with pytest.raises(MoneyError, match="out of range"):
        Money(MAX_MINOR, "USD") + Money(1, "USD")
    with pytest.raises(MoneyError, match="out of range"):
        Money(-MAX_MINOR, "USD") - Money(1, "USD")
    with pytest.raises(MoneyError, match="out of range"):
        Money(MAX_MINOR // 2 + 1, "USD") * 2


# allocate -------------------------------------------------------------------------------------------------
def test_allocate_gives_remainder_to_first_parts():
    assert Money(100, "USD").allocate([1, 1, 1]) == [Money(34, "USD"), Money(33, "USD"), Money(33, "USD")]
    assert Money(5, "JPY").allocate([3, 7]) == [Money(2, "JPY"), Money(3, "JPY")]
    assert Money(-100, "USD").allocate([1, 1, 1]) == [Money(-33, "USD"), Money(-33, "USD"), Money(-34, "USD")]


@given(
    currency=currencies,
    minor=any_amount,
    ratios=st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=12),
)
def test_allocate_parts_sum_to_whole(currency, minor, ratios):
    assume(sum(ratios) > 0)
    # given
    money = Money(minor, currency)
    # when
    parts = money.allocate(ratios)
    # then
    assert len(parts) == len(ratios)
    assert all(part.currency == currency for part in parts)
    assert sum(part.minor for part in parts) == minor


@given(currency=currencies, minor=any_amount, count=st.integers(min_value=1, max_value=50))
def test_allocate_equal_ratios_parts_differ_by_at_most_one(currency, minor, count):
    # when
    parts = [part.minor for part in Money(minor, currency).allocate([1] * count)]
    # then
    assert sum(parts) == minor
    assert max(parts) - min(parts) <= 1


@given(
    minor=any_amount,
    ratios=st.lists(st.integers(min_value=1, max_value=10**6), min_size=1, max_size=12),
)
def test_allocate_parts_are_exact_share_rounded_down_or_up_by_one(minor, ratios):
    # when
    parts = Money(minor, "USD").allocate(ratios)
    # then every part is its exact proportional share rounded down, plus at most one minor unit of remainder
    total = sum(ratios)
    for part, ratio in zip(parts, ratios, strict=True):
        share = minor * ratio // total
        assert share <= part.minor <= share + 1


@pytest.mark.parametrize(
    ("minor", "ratios"),
    [(1, [0, 1, 1]), (2, [0, 1, 1, 1]), (-1, [0, 1, 1])],
)
def test_allocate_zero_ratio_part_gets_nothing(minor, ratios):
    # given a part whose ratio is zero
    # when
    parts = Money(minor, "USD").allocate(ratios)
    # then it receives nothing: the remainder goes to parts that have a share
    assert sum(part.minor for part in parts) == minor
    assert [part.minor for part, ratio in zip(parts, ratios, strict=True) if ratio == 0] == [0]


@pytest.mark.parametrize("ratios", [[], [0], [0, 0], [1, -1], [1.5, 1], [True, 1], ["1"], [None]], ids=repr)
def test_allocate_with_invalid_ratios_rejected(ratios):
    with pytest.raises(MoneyError):
        Money(100, "USD").allocate(ratios)


def test_allocate_returns_integer_parts():
    parts = Money(10, "USD").allocate([1, 2])
    assert all(type(part.minor) is int for part in parts)
