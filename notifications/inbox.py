"""The notification inbox: each merchant's latest notifications in Redis, the seed's key-value store with automatic
expiry. Redis is its only store, by design: losing it loses the inbox, never a webhook delivery (those are rows).

One sorted set per merchant, `inbox:<merchant>`: members are the notifications' JSON, scored by the event's
position in the log (unique, growing: newest first is highest first, and a cursor is exact). The set keeps the
newest NOTIFICATION_INBOX_MAX and expires NOTIFICATION_INBOX_DAYS after its last write; older notifications in it
are not answered.
"""

from __future__ import annotations

import datetime as dt
import json

from django.conf import settings
from django.utils import timezone

from fintech.redisscripts import script_run
from projections.cache import client


def inbox_key(merchant_id: str) -> str:
    return f"inbox:{merchant_id}"


# KEYS[1] the merchant's inbox; ARGV the TTL in seconds, the cap, then (position, notification JSON) pairs.
_ADD = """
for i = 3, #ARGV, 2 do
  redis.call('ZADD', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[2]) + 1))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""


def inbox_add(entries: dict[str, list[tuple[int, str]]]) -> None:
    """Put notifications in their merchants' inboxes: {merchant: [(log position, notification JSON), ...]}.
    Writing one again changes nothing."""
    redis_client = client()
    ttl = int(settings.NOTIFICATION_INBOX_DAYS * 86400)
    for merchant_id, notifications in entries.items():
        args: list = [ttl, settings.NOTIFICATION_INBOX_MAX]
        for position, body in notifications:
            args += [position, body]
        script_run(redis_client, _ADD, [inbox_key(merchant_id)], args)


def inbox_page(*, merchant_id: str, before: int | None, limit: int) -> tuple[list[dict], int | None]:
    """The merchant's notifications newest first, those before the cursor (a position) when given, at most
    `limit`; and the next page's cursor. Raises redis.RedisError when Redis does not answer."""
    oldest = timezone.now() - dt.timedelta(days=settings.NOTIFICATION_INBOX_DAYS)
    upper = f"({before}" if before is not None else "+inf"
    rows = client().zrevrangebyscore(inbox_key(merchant_id), upper, "-inf", start=0, num=limit + 1, withscores=True)
    page = []
    for member, score in rows[:limit]:
        notification = json.loads(member)
        if dt.datetime.fromisoformat(notification["created_at"].replace("Z", "+00:00")) < oldest:
            break
        page.append((notification, int(score)))
    more = len(rows) > limit and len(page) == limit
    return [notification for notification, _ in page], (page[-1][1] if more else None)
