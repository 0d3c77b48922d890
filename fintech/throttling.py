"""Rate limits of the API: fixed windows counted in Redis (INCR + EXPIRE in one MULTI), per API token and per
client IP on every request, and a stricter one per token on detokenisation.

Rates are `API_THROTTLE_RATES` (`N/second|minute|hour|day`, or None for no limit), read on every request. Over
the rate the API answers 429 problem+json (`throttled`) with `Retry-After`, the seconds left in the window.
Redis is a limiter here, not a gate: when it cannot be reached the request is let through (fail open) and a
warning is logged, so an outage of the cache never turns into 5xx answers. Unauthenticated requests are answered
401 before any throttle counts them.
"""

from __future__ import annotations

import logging
import math
import time

from django.conf import settings
from django_redis import get_redis_connection
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import RedisError
from rest_framework.throttling import BaseThrottle

logger = logging.getLogger(__name__)

KEY_PREFIX = "throttle"
_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def rate_parse(rate: str | None) -> tuple[int, int] | None:
    """`"100/minute"` → (100, 60); None (no limit) stays None. DRF's notation: only the period's first letter
    counts."""
    if rate is None:
        return None
    count, period = rate.split("/", 1)
    return int(count), _PERIODS[period.strip()[0]]


def redis_key(scope: str, ident: str, window: int) -> str:
    return f"{settings.CACHES['default'].get('KEY_PREFIX', '')}:{KEY_PREFIX}:{scope}:{ident}:{window}"


def windows(idents: dict[str, str], now: float) -> dict[str, tuple[int, int]]:
    """The Redis key of each (scope, identity) window open at `now` → its (limit, period); scopes without a limit
    are left out."""
    limits = {}
    for scope, ident in idents.items():
        rate = rate_parse(settings.API_THROTTLE_RATES.get(scope))
        if rate is not None:
            limits[redis_key(scope, ident, int(now // rate[1]))] = rate
    return limits


def wait_over(limits: dict[str, tuple[int, int]], counts: list[int], now: float) -> int | None:
    """Seconds until the request may come again when a count is over its limit, else None."""
    over = [period for (limit, period), count in zip(limits.values(), counts, strict=True) if count > limit]
    return max(math.ceil(period - now % period) for period in over) if over else None


# Set on a request (the Django HttpRequest) whose ApiRateThrottle windows were already counted, by the read path
# that counts them in its own Redis round trip (accounts.fastread) before handing the request on: the seconds to
# wait when over, or None. Counting it again would count the request twice.
COUNTED = "fintech_api_rate_counted"


class FixedWindowThrottle(BaseThrottle):
    """Counts a request against each of its (scope, identity) windows in one round trip to Redis."""

    def idents(self, request) -> dict[str, str]:
        """The scope → identity pairs this request is counted under."""
        raise NotImplementedError

    def allow_request(self, request, view) -> bool:
        self._wait = None
        now = time.time()
        limits = windows(self.idents(request), now)
        if not limits:
            return True
        try:
            pipe = get_redis_connection("default").pipeline(transaction=True)
            for key, (_, period) in limits.items():
                pipe.incr(key)
                pipe.expire(key, period + 1)
            counts = pipe.execute()[::2]
        except (RedisError, ConnectionInterrupted, OSError) as error:
            logger.warning("rate limits not enforced, Redis unavailable: %s", error)
            return True
        self._wait = wait_over(limits, counts, now)
        return self._wait is None

    def wait(self) -> float | None:
        return self._wait


def token_ident(key_hash: str) -> str:
    return f"token-{key_hash[:16]}"


def _token_ident(request) -> str | None:
    # Per token where one authenticated the request, named by the start of its hash (random, so no two tokens
    # ever share a window, even in databases recreated from scratch); a session counts per user.
    key_hash = getattr(request.auth, "key_hash", None)
    if key_hash is not None:
        return token_ident(key_hash)
    user_id = getattr(request.user, "pk", None)
    return None if user_id is None else f"user-{user_id}"


class ApiRateThrottle(FixedWindowThrottle):
    """Every API request: `token` per API token (or session user), `ip` per client address (REST_FRAMEWORK's
    NUM_PROXIES says how many proxies' X-Forwarded-For entries to trust)."""

    def allow_request(self, request, view) -> bool:
        counted = getattr(request, "_request", request).__dict__
        if COUNTED in counted:
            self._wait = counted[COUNTED]
            return self._wait is None
        return super().allow_request(request, view)

    def idents(self, request) -> dict[str, str]:
        idents = {"ip": self.get_ident(request)}
        token = _token_ident(request)
        if token is not None:
            idents["token"] = token
        return idents


class DetokenizeRateThrottle(FixedWindowThrottle):
    """Detokenisation, per API token (or session user): `detokenize`, far stricter than `token`."""

    def idents(self, request) -> dict[str, str]:
        token = _token_ident(request)
        return {} if token is None else {"detokenize": token}
