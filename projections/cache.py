"""Redis as a cache of the read tables (never their truth): `payment:{id}` for one hour, refreshed on change.

Every Redis call is allowed to fail: readers fall back to the table, writers log and go on, and
`rebuild_cache` refills everything from the tables.
"""

from __future__ import annotations

import json
import logging
import uuid

import redis
from django.utils import timezone
from django_redis import get_redis_connection

from fintech.redisscripts import script_run, scripts_run

logger = logging.getLogger(__name__)

PAYMENT_TTL_SECONDS = 3600


def client():
    return get_redis_connection("default")


def payment_key(payment_id) -> str:
    return f"payment:{payment_id}"


def checkpoint_key(projection: str) -> str:
    return f"projection:{projection}:checkpoint_at"


# Two runs can refresh the same payment in either order after their commits; the entry only ever moves
# forward in version, so a slow refresh of an older row cannot overwrite a newer one.
_SET_IF_NOT_OLDER = """
local current = redis.call('GET', KEYS[1])
if current then
  local ok, document = pcall(cjson.decode, current)
  if ok and type(document) == 'table' and tonumber(document['version']) and
     tonumber(document['version']) > tonumber(ARGV[2]) then
    return 0
  end
end
if tonumber(ARGV[3]) > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
return 1
"""


def _run_script(source: str, calls: list[tuple[str, list]]) -> None:
    """Run a Lua script once per (key, args) in one pipelined round trip."""
    scripts_run(client(), source, [([key], args) for key, args in calls])


def documents_set(documents: dict[str, dict], *, ttl: int = 0) -> None:
    """SET each key to its JSON document (with its TTL, 0: none) unless Redis holds a newer version of it."""
    _run_script(
        _SET_IF_NOT_OLDER,
        [(key, [json.dumps(document), document["version"], ttl]) for key, document in documents.items()],
    )


# documents_set's rule for many keys in one call: KEYS the entries, ARGV the TTL then each (document, version).
_SET_MANY_IF_NOT_OLDER = """
local ttl = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local document, version = ARGV[2 * i], tonumber(ARGV[2 * i + 1])
  local current = redis.call('GET', key)
  local newer = false
  if current then
    local ok, held = pcall(cjson.decode, current)
    newer = ok and type(held) == 'table' and tonumber(held['version']) ~= nil and tonumber(held['version']) > version
  end
  if not newer then
    if ttl > 0 then
      redis.call('SET', key, document, 'EX', ttl)
    else
      redis.call('SET', key, document)
    end
  end
end
return 1
"""
REFRESH_KEYS_PER_CALL = 1000  # each call holds Redis for its length: a few milliseconds at most


def payments_refresh(payment_ids: set[str]) -> None:
    """Write the current read-model rows of these payments to Redis, never replacing a newer version: the
    documents built by the server, a thousand keys to one script call."""
    from projections.selectors import payment_documents_json

    documents = list(payment_documents_json(payment_ids=[uuid.UUID(i) for i in payment_ids]).items())
    redis_client = client()
    for start in range(0, len(documents), REFRESH_KEYS_PER_CALL):
        part = documents[start : start + REFRESH_KEYS_PER_CALL]
        args = [PAYMENT_TTL_SECONDS] + [value for _, (document, version) in part for value in (document, version)]
        script_run(redis_client, _SET_MANY_IF_NOT_OLDER, [payment_key(payment_id) for payment_id, _ in part], args)


def balance_key(account_id) -> str:
    return f"balance:{account_id}"


# A balance is a hash (account_id, owner_type, owner_id, kind, currency, available, pending, updated_at,
# version), written only forward in version. A "partial" write (balances only, as a BalanceChanged event
# carries them) applies only to a hash that exists; "full" writes every field. Many balances in one call: KEYS
# the hashes, ARGV for each in turn its version, its mode, how many field values follow, then those.
_BALANCES_SET = """
local at = 1
for _, key in ipairs(KEYS) do
  local version, mode, count = ARGV[at], ARGV[at + 1], tonumber(ARGV[at + 2])
  local current = redis.call('HGET', key, 'version')
  local newer = current and tonumber(current) > tonumber(version)
  local absent = mode == 'partial' and redis.call('HEXISTS', key, 'owner_type') == 0
  if not newer and not absent then
    redis.call('HSET', key, 'version', version, unpack(ARGV, at + 3, at + 2 + count))
  end
  at = at + 3 + count
end
return 1
"""
BALANCE_FIELDS = ("account_id", "owner_type", "owner_id", "kind", "currency", "available", "pending", "updated_at")
BALANCES_PER_CALL = 500


def balances_set(full: dict[str, dict], partial: dict[str, dict] | None = None) -> None:
    """Write balance hashes (key → fields with `version`), never replacing a newer version; `partial` ones only
    where the hash exists already. One script call per BALANCES_PER_CALL hashes: a ledger commit's two or three
    balances cost one Redis command, not a pipeline of one per balance."""
    entries = []
    for mode, documents in (("full", full), ("partial", partial or {})):
        for key, fields in documents.items():
            pairs = [str(value) for name, value in fields.items() if name != "version" for value in (name, value)]
            entries.append((key, [fields["version"], mode, len(pairs), *pairs]))
    redis_client = client()
    for start in range(0, len(entries), BALANCES_PER_CALL):
        part = entries[start : start + BALANCES_PER_CALL]
        script_run(redis_client, _BALANCES_SET, [key for key, _ in part], [value for _, args in part for value in args])


def balance_document(fields: dict) -> dict:
    """The API's balance document from a balance's flat fields (BALANCE_FIELDS and `version`)."""
    currency = fields["currency"]
    return {
        **{name: fields[name] for name in BALANCE_FIELDS if name not in ("available", "pending")},
        "available": {"amount": int(fields["available"]), "currency": currency},
        "pending": {"amount": int(fields["pending"]), "currency": currency},
        "version": int(fields["version"]),
    }


def balance_from_hash(fields: dict) -> dict | None:
    """The API's balance document from a Redis hash; None for an incomplete one."""
    fields = {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
        for k, v in fields.items()
    }
    if not all(name in fields for name in (*BALANCE_FIELDS, "version")):
        return None
    return balance_document(fields)


def balance_cached(account_id) -> tuple[dict | None, bool]:
    """(the cached balance or None, whether Redis answered)."""
    try:
        fields = client().hgetall(balance_key(account_id))
    except redis.RedisError:
        logger.warning("Redis unavailable: balance %s read from the table", account_id)
        return None, False
    return (balance_from_hash(fields) if fields else None), True


def balance_fill(fields: dict) -> None:
    """Put a balance read from the table into Redis (a read that missed), never over a newer version: what an
    outage or an eviction left out comes back with the next reads, without an operator."""
    try:
        balances_set({balance_key(fields["account_id"]): fields})
    except redis.RedisError:
        logger.warning("Redis unavailable: balance %s not put back in the cache", fields["account_id"])


def payment_cached(payment_id) -> tuple[dict | None, bool]:
    """(the cached payment document or None, whether Redis answered)."""
    try:
        value = client().get(payment_key(payment_id))
    except redis.RedisError:
        logger.warning("Redis unavailable: payment %s read from the table", payment_id)
        return None, False
    return (None if value is None else json.loads(value)), True


def payment_fill(document: dict) -> None:
    """Put a payment read from the table into Redis (a read that missed), never over a newer version."""
    try:
        documents_set({payment_key(document["id"]): document}, ttl=PAYMENT_TTL_SECONDS)
    except redis.RedisError:
        logger.warning("Redis unavailable: payment %s not put back in the cache", document["id"])


def checkpoint_note(projection: str) -> None:
    try:
        client().set(checkpoint_key(projection), timezone.now().isoformat())
    except redis.RedisError:
        logger.warning("Redis unavailable: checkpoint time of %s not cached", projection)


def checkpoint_cached(projection: str) -> str | None:
    try:
        value = client().get(checkpoint_key(projection))
    except redis.RedisError:
        return None
    return value.decode() if isinstance(value, bytes) else value
