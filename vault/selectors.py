"""What the rest of the system may know about a vaulted card: never the number."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from fintech import timestamps
from fintech.db import raw_cursor
from vault.domain import is_expired


@dataclass(frozen=True)
class CardSummary:
    token: str
    brand: str
    last4: str
    masked: str
    exp_month: int
    exp_year: int


UNKNOWN = "unknown"
EXPIRED = "expired"
USABLE = "usable"


def token_status(*, token: str, merchant_id: str, today: dt.date | None = None) -> str:
    """Whether a merchant may pay with a token now: usable, expired, or unknown (never issued, or another
    merchant's)."""
    summary = _card(token=token, merchant_id=merchant_id)
    if summary is None:
        return UNKNOWN
    return EXPIRED if is_expired(summary.exp_month, summary.exp_year, today=today or timestamps.today()) else USABLE


def token_describe(*, token: str, merchant_id: str, today: dt.date | None = None) -> CardSummary | None:
    """The displayable facts of a merchant's unexpired card token; None for unknown, another merchant's or
    expired tokens."""
    summary = _card(token=token, merchant_id=merchant_id)
    if summary is None or is_expired(summary.exp_month, summary.exp_year, today=today or timestamps.today()):
        return None
    return summary


def tokens_describe(*, tokens: list[str]) -> dict[str, tuple[str, CardSummary]]:
    """(merchant id, displayable facts) of each known token among these, in one query (a batch import); the
    caller checks the merchant and the expiry, as token_describe does."""
    with raw_cursor() as cursor:
        cursor.execute(
            "SELECT merchant_id, token, brand, last4, masked, exp_month, exp_year FROM vault_card "
            "WHERE token = ANY(%s)",
            [[token for token in tokens if isinstance(token, str) and token.startswith("tok_")]],
        )
        return {row[1]: (row[0], CardSummary(*row[1:])) for row in cursor.fetchall()}


def _card(*, token: str, merchant_id: str) -> CardSummary | None:
    if not isinstance(token, str) or not token.startswith("tok_"):
        return None
    # Every payment asks this twice: fixed SQL on the raw cursor (fintech.db) rather than the ORM.
    with raw_cursor() as cursor:
        cursor.execute(
            "SELECT token, brand, last4, masked, exp_month, exp_year FROM vault_card "
            "WHERE token = %s AND merchant_id = %s",
            [token, merchant_id],
        )
        row = cursor.fetchone()
    return None if row is None else CardSummary(*row)


def detokenization_list(*, token: str, limit: int = 100) -> list[dict]:
    """Who asked to see a card's number, when, why, through which channel and with what outcome, newest first:
    the vault's detokenisation audit of one token."""
    with raw_cursor() as cursor:
        cursor.execute(
            "SELECT occurred_at, actor, purpose, outcome, channel FROM vault_detokenizationaudit "
            "WHERE token = %s ORDER BY occurred_at DESC, id DESC LIMIT %s",
            [token, limit],
        )
        columns = ("occurred_at", "actor", "purpose", "outcome", "channel")
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
