"""Plain helpers shared by the payments tests (fixtures live in conftest.py)."""

from __future__ import annotations

import uuid

from fintech.money import Money

MERCHANT = "m-alpha"
OTHER_MERCHANT = "m-beta"
ACTOR = "user:test"


def jpy(minor: int) -> Money:
    return Money(minor, "JPY")


def unique_merchant_id() -> str:
    """A merchant id no other test uses: events outlive transactional tests, merchants do not."""
    return f"m-{uuid.uuid4().hex[:12]}"
