"""What the rest of the system may know about a vaulted card: never the number."""

from __future__ import annotations

import re
from dataclasses import dataclass

TOKEN_PATTERN = re.compile(r"^tok_[A-Za-z0-9_]{4,64}$")

# Card processors' sandbox tokens, usable before a card is vaulted.
SANDBOX_TOKENS = {
    "tok_visa": ("visa", "4242"),
    "tok_mastercard": ("mastercard", "4444"),
    "tok_amex": ("amex", "8431"),
    "tok_jcb": ("jcb", "0505"),
}


@dataclass(frozen=True)
class CardSummary:
    token: str
    brand: str
    last4: str


def token_describe(*, token: str, merchant_id: str | None = None) -> CardSummary | None:
    """Brand and last 4 of the card behind a token, or None when the token is not one the vault can serve."""
    if not isinstance(token, str) or not TOKEN_PATTERN.match(token):
        return None
    brand, last4 = SANDBOX_TOKENS.get(token, ("unknown", ""))
    return CardSummary(token=token, brand=brand, last4=last4)
