"""The one JSON parser of the API: whatever a client sends, it returns data or raises ParseError (a 400).

The standard library's parser recurses once per nesting level, so `[[[[...` fifty thousand deep raised
RecursionError straight through DRF (which catches only ValueError) and answered 500. The body is therefore read
with a size bound, decoded as strict UTF-8, checked for nesting depth by a scan that does not recurse, and only
then parsed -- with NaN/Infinity, numbers that overflow to infinity and duplicate keys refused (I-JSON, RFC 7493):
two parsers that disagree on `{"amount": 1, "amount": 100}` are a way past any check made by the other.
"""

from __future__ import annotations

import json
import math
import re

from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

# Deeper than any request of the API (Money inside an object inside the body is three), far below the recursion
# limit of the standard library's parser.
MAX_DEPTH = 32
# The largest request of the API is well under 2 KB; Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB), which DRF's
# stream reading bypasses anyway, would let one request cost a second of scanning.
MAX_BODY_BYTES = 64 * 1024

# A JSON string literal (escapes included), or an unterminated one up to the end: brackets inside one do not
# nest. The closing quote is optional so that no quote is ever scanned from twice (linear on any input).
_STRING = re.compile(rb'"(?:[^"\\]+|\\.)*"?', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text[:40]}")
    return value


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    result = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def check_depth(body: bytes, max_depth: int = MAX_DEPTH) -> None:
    """Raise ValueError when arrays/objects nest deeper than `max_depth`, without recursing."""
    depth = 0
    for bracket in _BRACKETS.findall(_STRING.sub(b"", body)):
        if bracket in (b"[", b"{"):
            depth += 1
            if depth > max_depth:
                raise ValueError(f"nested deeper than {max_depth} levels")
        else:
            depth -= 1


def loads(body: bytes) -> object:
    """Parse a request body under the API's rules; any refusal is a ValueError."""
    text = body.decode("utf-8")  # strict: a byte that is not UTF-8 raises, RFC 8259 §8.1
    check_depth(body)
    data = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float, object_pairs_hook=_unique_keys)
    # A `\ud800` escape decodes to a lone surrogate, which is no character: it cannot be encoded for a response,
    # a log line or PostgreSQL. Strict UTF-8 encoding refuses exactly those.
    json.dumps(data, ensure_ascii=False).encode("utf-8")
    return data


class StrictJSONParser(BaseParser):
    """`application/json` bodies of at most MAX_BODY_BYTES, UTF-8 (whatever charset the Content-Type names),
    nested at most MAX_DEPTH levels, without NaN/Infinity, lone surrogates or duplicate keys."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            body = stream.read(MAX_BODY_BYTES + 1)
            if len(body) > MAX_BODY_BYTES:
                raise ValueError(f"body larger than {MAX_BODY_BYTES} bytes")
            return loads(body)
        except (ValueError, RecursionError, OSError) as error:
            # UnicodeDecodeError and json.JSONDecodeError are ValueErrors; nothing of the body is echoed.
            raise ParseError(f"JSON parse error - {_reason(error)}") from None


def _reason(error: Exception) -> str:
    if isinstance(error, UnicodeDecodeError):
        return "the body is not UTF-8"
    if isinstance(error, UnicodeEncodeError):
        return "a string holds a lone surrogate (an unpaired \\uD800-\\uDFFF escape)"
    if isinstance(error, json.JSONDecodeError):
        return f"{error.msg} at line {error.lineno} column {error.colno}"
    if isinstance(error, RecursionError):
        return "nested too deep"
    return str(error)
