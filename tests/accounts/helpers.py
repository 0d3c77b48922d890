"""Plain helpers of the customer tests (fixtures live in conftest.py): personal data no other test uses, and
readers of what the database really holds."""

from __future__ import annotations

import datetime as dt
import secrets

from django.db import connection

# Letters that never occur in a UUID's hex, so a window of an e-mail's local part cannot match the subject id
# in a stored header by chance.
_NOT_HEX = "ghijklmnopqrstuvwxyz"
PII_COLUMNS = ("name", "email", "phone", "address", "date_of_birth")


def _word(length: int = 8) -> str:
    return "".join(secrets.choice(_NOT_HEX) for _ in range(length))


def customer_details() -> dict:
    """Arguments of customer_register for a person no other test knows: the e-mail's local part ends in a
    16-letter random marker, long enough for pii_needles to look for pieces of it that no page, dump or column
    holds by chance."""
    local = f"hanako.{_word(16)}"
    return {
        "name": f"Hanako {_word().title()}",
        "email": f"{local}@Example.ORG",
        "phone": f"+81 90 {secrets.randbelow(10**4):04d} {secrets.randbelow(10**4):04d}",
        "address": f"1-2-3 {_word().title()}machi, Shibuya, Tokyo",
        "date_of_birth": dt.date(1987, 6, 15),
    }


def pii_needles(details: dict) -> list[str]:
    """The strings that must appear nowhere: each value, its lowercase, and every 8-character window of the
    e-mail's local part (a partly masked address). Windows of 4 letters were found by chance in admin pages,
    dumps and base64 now and then (one in 20**4 against one in 20**8)."""
    values = [str(value) for value in details.values() if value is not None]
    needles = values + [value.lower() for value in values]
    local = details["email"].split("@")[0]
    needles += [local[i : i + 8] for i in range(len(local) - 7)]
    return sorted(set(needles))


def raw_pii_columns(customer_id) -> dict[str, bytes | None]:
    """The stored bytes of a customer's PII columns, read with SQL."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name, email, phone, address, date_of_birth FROM accounts_customer WHERE id = %s", [customer_id]
        )
        row = cursor.fetchone()
    return {column: None if value is None else bytes(value) for column, value in zip(PII_COLUMNS, row, strict=True)}


def raw_event_rows(customer_id) -> list[tuple]:
    """A customer's event rows as the database holds them (JSON as text), for before/after comparisons."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT event_id, event_type, event_version, event_data::text, metadata::text, version, occurred_at "
            "FROM fintech_event WHERE aggregate_id = %s ORDER BY version",
            [customer_id],
        )
        return cursor.fetchall()
