"""The card rules with no I/O: number parsing, Luhn, expiry, brand by BIN, the masked form."""

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fintech.masking import mask
from tests.vault.helpers import VISA, VISA_MASKED, luhn_complete
from vault.domain import CardNumber, InvalidCard, brand_of, card_number_parse, expiry_check, luhn_valid

TODAY = dt.date(2026, 11, 25)
digits = st.text(alphabet="0123456789", min_size=11, max_size=18)


@given(prefix=digits)
@settings(database=None)
def test_mask_hides_at_least_six_and_shows_at_most_first6_last4(prefix):
    # given any valid card number of 12 to 19 digits
    pan = luhn_complete(prefix)
    # when masked
    masked = mask(pan)
    # then only a prefix of at most 6 and the last 4 are shown, and at least 6 digits are hidden
    shown_first = len(masked) - len(masked.lstrip("0123456789"))
    assert len(masked) == len(pan)
    assert shown_first <= 6
    assert masked[:shown_first] == pan[:shown_first]
    assert masked[-4:] == pan[-4:]
    assert masked[shown_first:-4] == "*" * (len(pan) - shown_first - 4)
    assert masked.count("*") >= 6


@pytest.mark.parametrize(
    ("pan", "masked"),
    [
        (VISA, VISA_MASKED),
        ("4532011234567890124", "453201*********0124"),
        ("378282246310005", "37828******0005"),
        ("424242424242", "42******4242"),
    ],
)
def test_mask_shows_pci_allowed_digits_only(pan, masked):
    assert mask(pan) == masked


@given(prefix=digits)
@settings(database=None)
def test_parse_accepts_luhn_valid_and_rejects_one_digit_changed(prefix):
    pan = luhn_complete(prefix)
    assert card_number_parse(pan).digits == pan
    wrong = pan[:-1] + str((int(pan[-1]) + 1) % 10)
    assert not luhn_valid(wrong)
    with pytest.raises(InvalidCard):
        card_number_parse(wrong)


@pytest.mark.parametrize(
    ("pan", "brand"),
    [
        (VISA, "visa"),
        ("5555555555554444", "mastercard"),
        ("2223003122003222", "mastercard"),
        ("378282246310005", "amex"),
        ("6011111111111117", "discover"),
        ("3566002020360505", "jcb"),
        ("30569309025904", "diners"),
        ("6200000000000005", "unionpay"),
        ("9999999999999995", "unknown"),
    ],
)
def test_brand_of_reads_the_bin(pan, brand):
    assert brand_of(pan) == brand


def test_card_number_repr_hides_the_digits():
    number = card_number_parse(VISA)
    assert VISA not in repr(number)
    assert VISA not in str(number)
    assert VISA not in repr([number])
    assert repr(number) == f"CardNumber({VISA_MASKED})"
    assert isinstance(number, CardNumber)


@pytest.mark.parametrize(
    ("month", "year", "expected"),
    [(11, 2026, (11, 2026)), (12, 2026, (12, 2026)), (1, 27, (1, 2027)), (6, 2076, (6, 2076))],
)
def test_expiry_check_accepts_current_and_future_months(month, year, expected):
    assert expiry_check(month, year, today=TODAY) == expected


@pytest.mark.parametrize(
    ("month", "year"),
    [(10, 2026), (12, 2025), (0, 2030), (13, 2030), (-1, 2030), (6, 2077), (True, 2030), (12, True)],
)
def test_expiry_check_rejects_past_impossible_or_far_expiry(month, year):
    with pytest.raises(InvalidCard):
        expiry_check(month, year, today=TODAY)
