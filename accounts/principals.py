"""API tokens as Redis knows them, for the read path that touches no database (accounts.fastread).

`principal:{sha256 of the key}` holds what the access policy needs of a token's user to serve a read: the
user and token ids, when the token expires, the merchant the user acts for and whether it holds the finance
role. It is written by a request that authenticated through the database (never over an existing value, so it
cannot undo a revocation) and lives PRINCIPAL_TTL_SECONDS at most.

Revocation is immediate: revoking a token, or changing what its user may do (deactivated, deleted, another
merchant, another role), replaces the entry of each token concerned by a tombstone, after the change commits.
A tombstone is never taken for a principal and outlives any entry written before it, so the next request of
such a token goes through the database and is answered as the database says. Redis being down at that moment
is logged: the entry then lapses within PRINCIPAL_TTL_SECONDS.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django_redis import get_redis_connection
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

PRINCIPAL_TTL_SECONDS = 60
TOMBSTONE = b"revoked"
# Outlives every entry written before it: a principal read from the database before the change cannot come back.
TOMBSTONE_TTL_SECONDS = PRINCIPAL_TTL_SECONDS + 30


@dataclass(frozen=True)
class Principal:
    user_id: int
    token_id: int
    expires_at: float | None  # epoch seconds; None: never
    merchant_id: str | None
    finance: bool

    def as_json(self) -> str:
        return json.dumps(
            {
                "user_id": self.user_id,
                "token_id": self.token_id,
                "expires_at": self.expires_at,
                "merchant_id": self.merchant_id,
                "finance": self.finance,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: bytes) -> Principal | None:
        """The principal of a cached entry; None for a tombstone or anything else that is not one."""
        try:
            data = json.loads(raw)
            return cls(
                user_id=int(data["user_id"]),
                token_id=int(data["token_id"]),
                expires_at=None if data["expires_at"] is None else float(data["expires_at"]),
                merchant_id=None if data["merchant_id"] is None else str(data["merchant_id"]),
                finance=bool(data["finance"]),
            )
        except (ValueError, TypeError, KeyError):
            return None


def principal_key(key_hash: str) -> str:
    return f"principal:{key_hash}"


def principal_remember(token, *, merchant_id: str | None, finance: bool) -> None:
    """Cache a token that has just authenticated through the database, unless an entry or a tombstone is there."""
    principal = Principal(
        user_id=token.user_id,
        token_id=token.pk,
        expires_at=token.expires_at.timestamp() if token.expires_at else None,
        merchant_id=merchant_id,
        finance=finance,
    )
    try:
        get_redis_connection("default").set(
            principal_key(token.key_hash), principal.as_json(), nx=True, ex=PRINCIPAL_TTL_SECONDS
        )
    except RedisError as error:
        logger.warning("API token not cached, Redis unavailable: %s", error)


def principal_remember_request(request) -> None:
    """Cache the API token a DRF request authenticated with (nothing for a session), with what the access
    policy says of its user now."""
    from fintech import policy

    token = request.auth
    if getattr(token, "key_hash", None) is None:
        return
    principal_remember(token, merchant_id=policy.merchant_of(request.user), finance=policy.may_move_money(request.user))


def principals_forget(key_hashes: Iterable[str]) -> None:
    """Tombstone these tokens' entries once the current transaction commits (at once outside of one)."""
    keys = [principal_key(key_hash) for key_hash in key_hashes]
    if keys:
        transaction.on_commit(lambda: _tombstone(keys))


def principals_forget_users(user_ids: Iterable[int]) -> None:
    """Tombstone the entries of every token of these users (what they may do has changed)."""
    from accounts.models import ApiToken

    ids = list(user_ids)
    if ids:
        principals_forget(ApiToken.objects.filter(user_id__in=ids).values_list("key_hash", flat=True))


def _tombstone(keys: list[str]) -> None:
    try:
        pipe = get_redis_connection("default").pipeline(transaction=False)
        for key in keys:
            pipe.set(key, TOMBSTONE, ex=TOMBSTONE_TTL_SECONDS)
        pipe.execute()
    except RedisError as error:
        logger.error(
            "API token cache not cleared, Redis unavailable (the entries lapse within %s s): %s",
            PRINCIPAL_TTL_SECONDS,
            error,
        )
