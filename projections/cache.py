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


def documents_set(documents: dict[str, dict], *, ttl: int = 0) -> None:
    """SET each key to its JSON document (with its TTL, 0: none) unless Redis holds a newer version of it."""
    redis_client = client()
    script = redis_client.register_script(_SET_IF_NOT_OLDER)
    pipe = redis_client.pipeline(transaction=False)
    for key, document in documents.items():
        script(keys=[key], args=[json.dumps(document), document["version"], ttl], client=pipe)
    pipe.execute()


def payments_refresh(payment_ids: set[str]) -> None:
    """Write the current read-model rows of these payments to Redis, never replacing a newer version."""
    from projections.selectors import payment_rows_as_json

    documents = payment_rows_as_json(payment_ids=[uuid.UUID(i) for i in payment_ids])
    documents_set({payment_key(i): document for i, document in documents.items()}, ttl=PAYMENT_TTL_SECONDS)


def balance_key(account_id) -> str:
    return f"balance:{account_id}"


def balance_cached(account_id) -> dict | None:
    try:
        value = client().get(balance_key(account_id))
    except redis.RedisError:
        logger.warning("Redis unavailable: balance %s read from the table", account_id)
        return None
    return None if value is None else json.loads(value)


def payment_cached(payment_id) -> dict | None:
    try:
        value = client().get(payment_key(payment_id))
    except redis.RedisError:
        logger.warning("Redis unavailable: payment %s read from the table", payment_id)
        return None
    return None if value is None else json.loads(value)


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
