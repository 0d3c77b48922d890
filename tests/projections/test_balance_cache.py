"""The balance hashes in Redis move only forward in version, and a balances-only write never creates a hash: the
rules the write-through, the projection and a read's fill share (projections.cache.balances_set), for every
balance of a call, however many one call carries."""

from __future__ import annotations

import uuid

import pytest

from projections import cache


def _full(account_id: uuid.UUID, *, available: int, version: int) -> dict:
    return {
        "account_id": str(account_id),
        "owner_type": "customer",
        "owner_id": "c-1",
        "kind": "customer_balance",
        "currency": "JPY",
        "available": available,
        "pending": 0,
        "updated_at": "2026-11-28T00:00:00Z",
        "version": version,
    }


def _partial(*, available: int, version: int) -> dict:
    return {"available": available, "pending": 0, "updated_at": "2026-11-28T00:00:01Z", "version": version}


def _cached(account_id: uuid.UUID) -> dict | None:
    document, reachable = cache.balance_cached(account_id)
    assert reachable
    return document


@pytest.fixture
def accounts():
    made = [uuid.uuid4() for _ in range(7)]
    yield made
    cache.client().delete(*[cache.balance_key(account_id) for account_id in made])


def test_balances_move_forward_only_and_partials_need_a_hash(accounts, monkeypatch):
    # given more balances than one script call carries
    monkeypatch.setattr(cache, "BALANCES_PER_CALL", 2)
    opened, behind, absent, *rest = accounts
    cache.balances_set(
        {cache.balance_key(account_id): _full(account_id, available=100, version=5) for account_id in accounts[:2]}
    )
    # when one call carries a newer partial, an older partial, a partial for a balance Redis does not hold, and
    # full balances for the rest
    cache.balances_set(
        {cache.balance_key(account_id): _full(account_id, available=7, version=1) for account_id in rest},
        {
            cache.balance_key(opened): _partial(available=250, version=6),
            cache.balance_key(behind): _partial(available=1, version=4),
            cache.balance_key(absent): _partial(available=9, version=9),
        },
    )
    # then the newer one moved, the older one did not, the absent one is still absent, and every full one is there
    assert (_cached(opened)["available"]["amount"], _cached(opened)["version"]) == (250, 6)
    assert (_cached(behind)["available"]["amount"], _cached(behind)["version"]) == (100, 5)
    assert cache.client().exists(cache.balance_key(absent)) == 0
    assert [(_cached(account_id)["available"]["amount"]) for account_id in rest] == [7] * len(rest)
    # and an older full balance does not replace a newer one
    cache.balances_set({cache.balance_key(opened): _full(opened, available=3, version=2)})
    assert _cached(opened)["version"] == 6
