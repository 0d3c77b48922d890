"""Card numbers (PANs) never reach a log line: a filter masks them in every record a handler emits.

The rule: a run of 12 to 19 ASCII digits, written with or without separators between digit groups and not
part of a longer digit run, that passes the Luhn check becomes the masked form (`mask`, the vault's too: at
most the first 6 and the last 4 digits, at least 6 digits hidden, separators dropped), so 4242 4242 4242 4242
and 4242.4242/4242_4242 log as 424242******4242. A separator is one to three characters that are neither
letters nor digits (spaces, tabs, newlines, dashes, dots, slashes, underscores, commas...), except ':' and '*':
a colon keeps clock times (12:30:45.123456) apart, a star is the mask's own. A dotted IPv4 address is not a
card number and is set aside like a UUID. Luhn-invalid runs (order ids, timestamps) and runs of more
than 19 digits stay as they are. Candidates are runs of whole groups; when Luhn-valid runs overlap (a number
next to groups that happen to pass the check with it), they are masked as one run, so no part of the number is
left beside a mask.

Pure Python, no Django: `PanMaskingFilter` is installed on every handler in `settings.LOGGING`. In the kernel,
because the kernel's own error bodies and every app's free text are masked with it.
"""

from __future__ import annotations

import logging
import re

_MIN_DIGITS = 12
_MAX_DIGITS = 19

# What may stand between the digit groups of a card number: neither a letter nor a digit (\w, less its
# underscore), nor a colon, a star or the stand-in of a hidden UUID.
_SEPARATOR_CHAR = r"(?:[^\w:*\ue000]|_)"
# Cheap gate: most log lines have no 12 digits in a row (separators allowed), so no Luhn work is done on them.
_LONG_DIGIT_RUN = re.compile(rf"[0-9](?:{_SEPARATOR_CHAR}{{0,3}}[0-9]){{11}}")
# Digit groups joined by separators, never starting or ending inside a longer digit run.
_DIGIT_GROUPS = re.compile(rf"(?<![0-9])[0-9]+(?:{_SEPARATOR_CHAR}{{1,3}}[0-9]+)*(?![0-9])")
# Inside such a run, whatever is not a digit is a separator.
_SEPARATOR = re.compile(r"([^0-9]+)")
# The end of a mask: at least 6 stars and the last 4 digits. A second pass leaves the digits a mask shows out of
# the groups next to it, so masking twice gives what masking once does.
_STARS_THEN_MASK_TAIL = re.compile(r"\*{6,}[0-9]{4}(?![0-9])")

# A UUID, or four dot-separated groups of 1 to 3 digits (an IPv4 address: a card's groups have 4 or more digits).
_SET_ASIDE = re.compile(
    r"(?<![0-9A-Za-z-])[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![0-9A-Za-z-])"
    r"|(?<![0-9.])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?![0-9]|\.[0-9])"
)
# Stands in for a UUID or an address while masking: a private-use character, which also ends any digit run.
_HIDDEN = "\ue000"

# What a record says when masking itself failed: dropping the message is safer than logging it unmasked.
_UNMASKABLE = "[log message dropped: it could not be checked for card numbers]"


# What PostgreSQL cannot store in text (NUL) and what a log viewer would render as layout.
_UNPRINTABLE = re.compile(r"[^\x20-\x7e\u00a0-\ud7ff\ue000-\ufffd]")


def audit_text(value: object, limit: int) -> str:
    """Free text as an audit row keeps it: unstorable and layout characters replaced by '?', card numbers
    masked, cut to the column's `limit`."""
    return mask_pans(_UNPRINTABLE.sub("?", str(value)))[:limit]


def mask(digits: str) -> str:
    """A card number's masked form: at most the first 6 and the last 4 digits, as PCI DSS allows; short numbers
    show fewer so that at least 6 digits stay hidden."""
    shown_first = max(0, min(6, len(digits) - 10))
    return digits[:shown_first] + "*" * (len(digits) - shown_first - 4) + digits[-4:]


def mask_pans(text: str) -> str:
    """`text` with every Luhn-valid 12 to 19 digit card number masked; the same object when there is none.

    Masking twice gives the same text as masking once.
    """
    if len(text) < _MIN_DIGITS or not _LONG_DIGIT_RUN.search(text):
        return text
    # A UUID (payment and event ids are everywhere in logs) or an IP address can hold digit groups that pass the
    # Luhn check; they are set aside while masking. A real card number has neither shape.
    hidden: list[str] = []

    def hide(match: re.Match[str]) -> str:
        hidden.append(match.group())
        return _HIDDEN

    text_to_mask = text if _HIDDEN in text else _SET_ASIDE.sub(hide, text)
    masked = _DIGIT_GROUPS.sub(_mask_match, text_to_mask)
    if hidden:
        masked = _restore(masked, hidden)
    return text if masked == text else masked


def _restore(text: str, hidden: list[str]) -> str:
    parts = text.split(_HIDDEN)
    return "".join(part + kept for part, kept in zip(parts, [*hidden, ""], strict=True))


def mask_value(value: object) -> object:
    """`value` with card numbers masked in every string inside dicts, lists and tuples (keys too).

    Other types come back as they are. A string that holds no card number comes back as the same object, so a
    `str` subclass (DRF's `ErrorDetail`) keeps its type unless something in it had to be masked.
    """
    if isinstance(value, str):
        return mask_pans(value)
    if isinstance(value, dict):
        return {mask_value(key): mask_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [mask_value(item) for item in value]
    if isinstance(value, tuple):
        return tuple(mask_value(item) for item in value)
    return value


class PanMaskingFilter(logging.Filter):
    """Masks card numbers in a record's message, exception text and stack text; never drops a record.

    Install it on every handler: a filter on a logger does not see records propagated from its children.
    It rewrites `record.msg` to the formatted, masked message and clears `record.args`, and stores the masked
    traceback in `record.exc_text`, which `logging.Formatter` prints instead of formatting `exc_info` again.
    Attributes passed with `extra=` are not masked: do not put card data there. Running it again on the same
    record (a second handler) changes nothing.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            record.msg = mask_pans(_message_of(record))
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = mask_pans(record.exc_text)
            if record.stack_info:
                record.stack_info = mask_pans(record.stack_info)
        except Exception:  # a filter that raises would break the code that logs
            record.msg = _UNMASKABLE
            record.exc_text = _UNMASKABLE if record.exc_info or record.exc_text else None
            record.stack_info = None
        record.args = None
        return True


def _message_of(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:  # bad format arguments: log what there is, masked, rather than nothing
        return f"{record.msg} {record.args!r}"


def _mask_match(match: re.Match[str]) -> str:
    chunk = match.group()
    if sum(char.isdigit() for char in chunk) < _MIN_DIGITS:
        return chunk
    # Alternating digit groups and the single separators between them; groups[i] is followed by separators[i].
    parts = _SEPARATOR.split(chunk)
    groups, separators = parts[::2], [*parts[1::2], ""]
    first, last = 0, len(groups)
    if len(groups[0]) == 4 and _ends_with_mask_head(match.string, match.start()):
        first += 1
    if 2 <= len(groups[-1]) <= 6 and _STARS_THEN_MASK_TAIL.match(match.string, match.end()):
        last -= 1
    out = [group + separator for group, separator in zip(groups, separators, strict=True)]
    for start, end in _card_spans(groups, first, last):
        out[start] = mask("".join(groups[start:end])) + separators[end - 1]
        out[start + 1 : end] = [""] * (end - start - 1)
    return "".join(out)


def _card_spans(groups: list[str], first: int, last: int) -> list[tuple[int, int]]:
    """(start, end) group ranges to mask: every Luhn-valid run of whole groups with 12 to 19 digits, and runs
    that overlap merged into one, so a number that shares groups with a false positive is hidden as a whole."""
    longest_end: dict[int, int] = {}
    for end in range(first + 1, last + 1):
        # The Luhn sum counts from the last digit, so it grows as groups are put in front: one pass per end.
        total = count = 0
        for start in range(end - 1, first - 1, -1):
            if count + len(groups[start]) > _MAX_DIGITS:
                break
            for char in reversed(groups[start]):
                value = ord(char) - 48
                if count % 2:
                    value = value * 2 - 9 if value > 4 else value * 2
                total += value
                count += 1
            if count >= _MIN_DIGITS and total % 10 == 0:
                longest_end[start] = end
    spans: list[tuple[int, int]] = []
    for start in sorted(longest_end):
        end = longest_end[start]
        if spans and start < spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], end))
        else:
            spans.append((start, end))
    return spans


def _ends_with_mask_head(text: str, end: int) -> bool:
    """Whether `text[:end]` ends as a mask begins: 2 to 6 digits on their own, then at least 6 stars."""
    stars_start = end
    while stars_start > 0 and text[stars_start - 1] == "*":
        stars_start -= 1
    if end - stars_start < 6:
        return False
    digits_start = stars_start
    while digits_start > 0 and _is_digit(text[digits_start - 1]) and stars_start - digits_start <= 6:
        digits_start -= 1
    return 2 <= stars_start - digits_start <= 6 and not (digits_start > 0 and _is_digit(text[digits_start - 1]))


def _is_digit(char: str) -> bool:
    return "0" <= char <= "9"
