"""Plain helpers shared by the vault tests (fixtures live in conftest.py): card numbers and leak detectors."""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass

from django.db import connection
from rest_framework.test import APIClient

VISA = "4242424242424242"
VISA_MASKED = "424242******4242"
DECLINED = "4000000000000002"
INSUFFICIENT_FUNDS = "4000000000009995"
EXP_MONTH, EXP_YEAR = 12, 2035
DETOKENIZE_URL = "/api/v1/vault/tokens/{token}/detokenize"
TOKENS_URL = "/api/v1/vault/tokens"


def luhn_complete(prefix: str) -> str:
    """The prefix followed by the check digit that makes it pass the Luhn check."""
    total = 0
    for position, char in enumerate(reversed(prefix)):
        value = int(char)
        if position % 2 == 0:  # doubled once the check digit is appended
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return prefix + str((10 - total % 10) % 10)


def pan_random(length: int = 16, *, bin_: str = "4") -> str:
    """A Luhn-valid number no other test uses, so a scan for it cannot match another test's leftovers."""
    body = bin_ + "".join(str(secrets.randbelow(10)) for _ in range(length - len(bin_) - 1))
    return luhn_complete(body)


def pan_varied() -> str:
    """A 16-digit Visa number whose BIN, middle and last four are all different from each other, so that a
    leak of one cannot hide behind the masked form showing another."""
    while True:
        pan = pan_random(16, bin_="453201")
        bin_, middle, last4 = pan[:6], pan[6:12], pan[12:]
        masked = bin_ + "******" + last4
        if middle not in masked and len(set(middle)) > 3 and pan[:8] not in masked:
            return pan


def api_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def unique_merchant_id() -> str:
    return f"m-{uuid.uuid4().hex[:12]}"


def grouped(pan: str, separator: str) -> str:
    return separator.join(pan[i : i + 4] for i in range(0, len(pan), 4))


def pan_text_forms(pan: str) -> list[str]:
    """How a number could be written into a text column."""
    return [pan, grouped(pan, " "), grouped(pan, "-")]


def pan_byte_forms(pan: str) -> list[bytes]:
    """How a number could be written into a binary column: ASCII (also grouped), UTF-16 both ways, the
    number as a big-endian integer, packed BCD."""
    forms = [form.encode() for form in pan_text_forms(pan)]
    forms += [pan.encode("utf-16-le"), pan.encode("utf-16-be")]
    number = int(pan)
    forms.append(number.to_bytes((number.bit_length() + 7) // 8, "big"))
    forms.append(number.to_bytes(8, "big"))
    if len(pan) % 2 == 0:
        forms.append(bytes.fromhex(pan))  # BCD: two digits a byte
    return forms


def pan_fragments_beyond_mask(pan: str) -> list[str]:
    """Digit strings PCI DSS does not allow next to the card: more than the first 6 or the last 4 together,
    or any digit the mask hides."""
    return [pan[:7], pan[:8], pan[:6] + pan[-4:], pan[6:-4], pan[-5:]]


def values_of_row(row) -> list[object]:
    return [bytes(value) if isinstance(value, memoryview) else value for value in row]


def leaks_in_values(values, *, texts: list[str], blobs: list[bytes]) -> list[tuple[object, object]]:
    """(value, needle) pairs where a needle occurs in a value (text in text, bytes in bytes)."""
    found = []
    for value in values:
        if value is None:
            continue
        if isinstance(value, bytes):
            found += [(value, needle) for needle in blobs if needle in value]
            found += [(value, needle) for needle in texts if needle.encode() in value]
        else:
            text = str(value)
            found += [(value, needle) for needle in texts if needle in text]
    return found


@dataclass(frozen=True)
class Column:
    schema: str
    table: str
    name: str
    data_type: str

    @property
    def sql_table(self) -> str:
        return f'"{self.schema}"."{self.table}"'

    @property
    def sql_name(self) -> str:
        return f'"{self.name}"'


def database_columns() -> list[Column]:
    """Every column of every table (partitions included) in the database's own schemas."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.table_schema, c.table_name, c.column_name, c.data_type
            FROM information_schema.columns c
            JOIN information_schema.tables t USING (table_schema, table_name)
            WHERE t.table_type = 'BASE TABLE'
              AND c.table_schema NOT IN ('pg_catalog', 'information_schema')
              AND c.table_schema NOT LIKE 'pg_toast%%'
            ORDER BY 1, 2, 3
            """
        )
        return [Column(*row) for row in cursor.fetchall()]


def database_leaks(*, texts: list[str], blobs: list[bytes]) -> list[str]:
    """`table.column` of every column holding a needle: bytea columns are searched for the byte needles and
    the texts' ASCII, every other column (text, varchar, jsonb, numbers...) in its text form."""
    hits = []
    with connection.cursor() as cursor:
        for column in database_columns():
            if column.data_type == "bytea":
                needles = [*blobs, *(text.encode() for text in texts)]
                condition = " OR ".join(f"position(%s::bytea in {column.sql_name}) > 0" for _ in needles)
            else:
                needles = list(texts)
                condition = " OR ".join(f"strpos({column.sql_name}::text, %s) > 0" for _ in needles)
            cursor.execute(f"SELECT count(*) FROM {column.sql_table} WHERE {condition}", needles)  # noqa: S608
            if cursor.fetchone()[0]:
                hits.append(f"{column.table}.{column.name}")
    return hits


def digit_windows(digits: str, size: int = 6) -> set[str]:
    return {digits[i : i + size] for i in range(len(digits) - size + 1)}


def only_digits(value: str) -> str:
    return re.sub(r"\D", "", value)
