import io
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fintech.masking import PanMaskingFilter, mask_pans, mask_value

VISA = "4242424242424242"
VISA_MASKED = "424242******4242"


def _luhn_check_digit(body: str) -> str:
    """The digit that makes `body + digit` pass the Luhn check (written out here, not taken from the vault)."""
    total = 0
    for position, char in enumerate(reversed(body)):
        value = int(char)
        if position % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str(-total % 10)


def _expected_mask(digits: str) -> str:
    shown_first = min(6, len(digits) - 10)
    return digits[:shown_first] + "*" * (len(digits) - shown_first - 4) + digits[-4:]


@st.composite
def _pans(draw):
    length = draw(st.integers(min_value=12, max_value=19))
    body = draw(st.text(alphabet="0123456789", min_size=length - 1, max_size=length - 1))
    return body + _luhn_check_digit(body)


@pytest.fixture
def log_output():
    """A logger whose one handler has the filter and writes formatted lines to a buffer; it does not propagate,
    so the numbers under test stay out of pytest's own log capture."""
    logger = logging.getLogger("tests.vault.pan_masking")
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(PanMaskingFilter())
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, buffer
    logger.removeHandler(handler)
    logger.propagate = True
    logger.setLevel(logging.NOTSET)


@pytest.mark.parametrize(
    ("pan", "masked"),
    [
        (VISA, VISA_MASKED),
        ("378282246310005", "37828******0005"),
        ("6011000000000000001", "601100*********0001"),
        ("4222222222222", "422******2222"),
        ("123456789015", "12******9015"),
    ],
    ids=["visa-16", "amex-15", "19-digits", "13-digits", "12-digits"],
)
def test_mask_pans_luhn_valid_number_masked(pan, masked):
    # given a Luhn-valid card number of 12 to 19 digits inside a sentence
    # when it is masked
    result = mask_pans(f"charging card={pan}, amount 1200")

    # then at most the first 6 and the last 4 digits show, and at least 6 are hidden
    assert result == f"charging card={masked}, amount 1200"
    assert pan not in result


@pytest.mark.parametrize(
    "written",
    [
        "4242 4242 4242 4242",
        "4242-4242-4242-4242",
        "3782 822463 10005",
        "4242-4242 4242-4242",
        "4242.4242.4242.4242",
        "4242  4242 4242  4242",
        "4242-4242 4242.4242",
        "4242/4242/4242/4242",
        "4242_4242_4242_4242",
        "4242 - 4242 - 4242 - 4242",
        "4242\n4242\t4242,4242",
        "3782.822463.10005",
    ],
)
def test_mask_pans_separated_number_masked_without_separators(written):
    # given a card number grouped with separators: spaces, dashes, dots, slashes, underscores, several or mixed
    # when it is masked
    result = mask_pans(f"pan {written} end")

    # then the mask drops the separators and nothing of the groups is left around it
    digits = "".join(char for char in written if char.isdigit())
    assert result == f"pan {_expected_mask(digits)} end"


@pytest.mark.parametrize(
    "text",
    [
        "order 4242424242424241 failed",
        "order id 202401151230450 created",
        "at 2024-01-15 12:30:45.123456 took 1234567ms",
        "a run of 12345678901234567890123 digits",
        "twenty digits 0000" + VISA + " are not a card",
        "ten 1234567890 and 1234",
        "created 2024-01-15T12:30:45.123456+00:00 and 2024-01-15 12:30:45.123456+00:00",
        "from 192.168.100.200 via 10.0.0.1",
        "amount 1,234,567.89 EUR, 12.00 USD",
        "ref INV-2024-000123 order 2024/01/15-0001",
        "payment 12345678-1234-1234-1234-123456789012",
        "no digits at all",
        "",
    ],
)
def test_mask_pans_not_a_card_number_left_alone(text):
    # given text with no Luhn-valid 12 to 19 digit run (invalid checksums, timestamps, runs over 19 digits)
    # when it is masked
    # then it comes back unchanged
    assert mask_pans(text) == text


def test_mask_pans_number_beside_other_groups_masked():
    # given a card number sharing its separators with short groups around it
    text = "ref 12 4242 4242 4242 4242 9 at 10-11"

    # when it is masked
    result = mask_pans(text)

    # then the card number is masked and the groups around it stay
    assert result == f"ref 12 {VISA_MASKED} 9 at 10-11"


def test_mask_pans_number_overlapping_false_positive_hidden_whole():
    # given a card number whose groups also make Luhn-valid runs with the groups around it
    # ("5678 4242-4242-4242" and "4242 9012 3456" both pass the check)
    text = "5678 4242-4242-4242-4242 9012 3456"

    # when it is masked
    result = mask_pans(text)

    # then the overlapping runs are masked as one, so no part of the number is left beside a mask
    assert result == "567842******************3456"


def test_mask_pans_masked_text_masked_again_unchanged():
    # given text already masked, with masks next to other digit groups and to each other
    once = mask_pans(f"1234 {VISA} 99 4242-4242-4242-4242 7 3456 and {VISA} 5555555555554444")

    # when it is masked again
    # then nothing changes
    assert once == f"1234 {VISA_MASKED} 99 {VISA_MASKED} 7 3456 and {VISA_MASKED} 555555******4444"
    assert mask_pans(once) == once


def test_mask_value_nested_strings_masked():
    # given an error body with card numbers in nested keys and values, and other types
    body = {
        "errors": [{"field": "card_number", "detail": f"{VISA} is declined"}],
        f"raw {VISA}": ("ok", 4242424242424242, None, 1.5),
        "count": 3,
    }

    # when it is masked
    result = mask_value(body)

    # then every string is masked, the structure and the other values stay
    assert result == {
        "errors": [{"field": "card_number", "detail": f"{VISA_MASKED} is declined"}],
        f"raw {VISA_MASKED}": ("ok", 4242424242424242, None, 1.5),
        "count": 3,
    }


def test_mask_value_clean_string_same_object():
    # given a str subclass holding no card number (as DRF's ErrorDetail)
    class Detail(str):
        pass

    detail = Detail("This field is required.")

    # when it is masked
    # then the same object comes back, type and all
    assert mask_value(detail) is detail


def test_log_number_in_message_masked(log_output):
    logger, buffer = log_output

    # when a card number is logged in the message itself
    logger.info(f"tokenizing {VISA} for m-alpha")

    # then the line shows only the mask
    assert buffer.getvalue() == f"INFO tokenizing {VISA_MASKED} for m-alpha\n"


def test_log_number_in_args_masked(log_output):
    logger, buffer = log_output

    # when a card number is a %-argument, with and without separators
    logger.warning("card %s / %s declined (%d)", VISA, "3782-822463-10005", 51)

    # then the formatted line shows only masks
    assert buffer.getvalue() == f"WARNING card {VISA_MASKED} / 37828******0005 declined (51)\n"


def test_log_number_in_nested_dict_arg_masked(log_output):
    logger, buffer = log_output

    # when a card number sits deep in a dict passed as an argument
    logger.info("acquirer said %s", {"request": {"card": {"number": VISA, "exp": [12, 2035]}}})

    # then the formatted line shows only the mask
    output = buffer.getvalue()
    assert VISA not in output
    assert f"'number': '{VISA_MASKED}'" in output


def test_log_exception_with_number_masked(log_output):
    logger, buffer = log_output

    # when an exception whose message (and whose cause's message) holds a card number is logged
    try:
        try:
            raise KeyError(f"no bin for {VISA}")
        except KeyError as cause:
            raise ValueError(f"declined card 4242 4242 4242 4242 after {cause}") from cause
    except ValueError:
        logger.exception("charge of %s failed", VISA)

    # then the message and the whole traceback show only masks
    output = buffer.getvalue()
    assert VISA not in output
    assert "4242 4242 4242 4242" not in output
    assert output.startswith(f"ERROR charge of {VISA_MASKED} failed\nTraceback")
    assert f"ValueError: declined card {VISA_MASKED} after" in output
    assert f"KeyError: 'no bin for {VISA_MASKED}'" in output


def test_log_stack_info_with_number_masked(log_output):
    logger, buffer = log_output

    # when the stack is logged from a frame whose source line holds a card number
    logger.info("here", stack_info=True)  # 4242424242424242

    # then the stack text shows only the mask
    output = buffer.getvalue()
    assert VISA not in output
    assert VISA_MASKED in output


def test_log_bad_format_args_masked_not_raised(log_output):
    logger, buffer = log_output

    # when the arguments do not fit the format
    logger.error("card %s and %s", VISA)

    # then the line still comes out, with the message and the arguments masked, and the caller sees no error
    output = buffer.getvalue()
    assert VISA not in output
    assert output == f"ERROR card %s and %s ('{VISA_MASKED}',)\n"


def test_log_unprintable_message_dropped_not_raised(log_output):
    logger, buffer = log_output

    class Unprintable:
        def __str__(self):
            raise RuntimeError(VISA)

    # when the message cannot even be turned into text
    logger.info(Unprintable())

    # then the line says it was dropped, and the caller sees no error
    assert buffer.getvalue() == "INFO [log message dropped: it could not be checked for card numbers]\n"


def test_log_two_filtered_handlers_same_line():
    # given a logger with two handlers, each with its own filter
    logger = logging.getLogger("tests.vault.pan_masking_twice")
    buffers = [io.StringIO(), io.StringIO()]
    handlers = [logging.StreamHandler(buffer) for buffer in buffers]
    for handler in handlers:
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.addFilter(PanMaskingFilter())
        logger.addHandler(handler)
    logger.propagate = False
    try:
        # when a message, its arguments and an exception all hold card numbers
        try:
            raise RuntimeError(f"refund to 1234 {VISA} 5678")
        except RuntimeError:
            logger.error("refund %s near 1234 %s 5678 %%", "4242-4242-4242-4242", VISA, exc_info=True)
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
        logger.propagate = True

    # then both handlers wrote the same masked lines
    first, second = (buffer.getvalue() for buffer in buffers)
    assert first == second
    assert first.startswith(f"refund {VISA_MASKED} near 1234 {VISA_MASKED} 5678 %\nTraceback")
    assert f"RuntimeError: refund to 1234 {VISA_MASKED} 5678" in first
    assert VISA not in first


def test_filter_record_kept_and_args_cleared():
    # given a record with a card number in its arguments
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "card %s", (VISA,), None)

    # when the filter runs twice
    kept = PanMaskingFilter().filter(record) and PanMaskingFilter().filter(record)

    # then the record is kept, its message is final and masked
    assert kept is True
    assert record.args is None
    assert record.getMessage() == f"card {VISA_MASKED}"


_NOT_DIGITS = st.characters(exclude_characters="0123456789", codec="utf-8")


@given(
    pan=_pans(),
    prefix=st.text(),
    suffix=st.text(),
    before=_NOT_DIGITS,
    after=_NOT_DIGITS,
)
def test_mask_pans_any_card_in_any_text_hidden(pan, prefix, suffix, before, after):
    # given a Luhn-valid card number set off from arbitrary text by any non-digit (spaces and dashes included)
    # when it is masked
    result = mask_pans(prefix + before + pan + after + suffix)

    # then the number never shows, and masking again changes nothing
    assert pan not in result
    assert mask_pans(result) == result


@given(
    pan=_pans(),
    prefix=st.text(),
    suffix=st.text(),
    before=st.sampled_from("xZ:é"),
    after=st.sampled_from("xZ:é"),
)
def test_mask_pans_any_card_last4_visible(pan, prefix, suffix, before, after):
    # given a Luhn-valid card number set off from arbitrary text by a character that is not a separator (a
    # letter or a colon: punctuation and blanks between digit groups may join them into a card number)
    # when it is masked
    result = mask_pans(prefix + before + pan + after + suffix)

    # then its mask, which ends in its last 4 digits, is in the text
    assert before + _expected_mask(pan) + after in result
    assert pan not in result


@given(
    st.lists(
        st.one_of(
            _pans(),
            _pans().map(lambda pan: " ".join(pan[i : i + 4] for i in range(0, len(pan), 4))),
            _pans().map(lambda pan: f"{pan[:6]}-{pan[6:]}"),
            _pans().map(lambda pan: f"{pan[:4]}.{pan[4:8]}  {pan[8:]}"),
            st.text(alphabet="0123456789 -./_*x", max_size=12),
        ),
        max_size=8,
    ),
    st.lists(st.sampled_from(["", " ", "-", "*", "x", "******", ".", "  ", "/", " _ "]), min_size=8, max_size=8),
)
def test_mask_pans_masked_twice_same_as_once(pieces, joins):
    # given digit groups, card numbers and star runs packed together with separators
    text = "".join(piece + join for piece, join in zip(pieces, joins, strict=False))

    # when it is masked twice
    once = mask_pans(text)

    # then the second pass changes nothing
    assert mask_pans(once) == once


def test_mask_pans_uuid_with_luhn_valid_digit_groups_left_alone():
    # an id whose digit groups happen to pass the Luhn check is not a card number
    text = "authorization of payment 00000000-0000-4000-8000-000000000000"
    assert mask_pans(text) == text
    # while a card number right beside a UUID is still masked
    assert mask_pans("12345678-1234-1234-1234-123456789012 4242 4242 4242 4242") == (
        "12345678-1234-1234-1234-123456789012 424242******4242"
    )
