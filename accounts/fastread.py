"""A token-authenticated read served from Redis in one round trip, without the database and without DRF.

The reads the API answers most (`GET /payments/{id}`, `GET /accounts/{id}/balance`) need only what Redis holds:
the caller's token principal (accounts.principals), the read-model document, and the rate-limit windows. One
script checks the principal (present, not a tombstone, not expired), and only then counts the windows and
returns the documents; the view decides with the access policy's own rule and answers exactly as DRF would.

Anything else takes DRF's path, unchanged: another method, a query string or an Accept DRF would negotiate, no
`Token` header, an unknown or revoked token, a miss, a refusal, Redis down. A request whose windows the script
has counted carries that result (fintech.throttling.COUNTED), so DRF's throttle does not count it twice.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from django.http import HttpResponse
from django_redis import get_redis_connection
from redis.exceptions import RedisError

from accounts.authentication import ApiTokenAuthentication, api_token_hash
from accounts.principals import Principal, principal_key, principal_remember_request
from fintech.redisscripts import script_run
from fintech.throttling import COUNTED, ApiRateThrottle, token_ident, wait_over, windows

logger = logging.getLogger(__name__)

GET, HASH = "g", "h"
_ACCEPTED = frozenset({None, "", "*/*", "application/json"})

# KEYS: the principal, then the windows, then the documents. ARGV: now, the number of windows, then each window's
# period, then each document's kind (g: a string, h: a hash).
_ADMIT = """
local principal = redis.call('GET', KEYS[1])
if not principal then return {0} end
local ok, fields = pcall(cjson.decode, principal)
if not ok or type(fields) ~= 'table' then return {0} end
local expires = fields['expires_at']
if type(expires) == 'number' and expires <= tonumber(ARGV[1]) then return {0} end
local windows = tonumber(ARGV[2])
local reply = {1, principal}
for i = 1, windows do
  local count = redis.call('INCR', KEYS[1 + i])
  redis.call('EXPIRE', KEYS[1 + i], tonumber(ARGV[2 + i]) + 1)
  reply[#reply + 1] = count
end
for i = 2 + windows, #KEYS do
  if ARGV[1 + i] == 'h' then
    reply[#reply + 1] = redis.call('HGETALL', KEYS[i])
  else
    reply[#reply + 1] = redis.call('GET', KEYS[i])
  end
end
return reply
"""


@dataclass(frozen=True)
class Admitted:
    principal: Principal
    documents: list[Any]  # per key asked: bytes or None (a string), dict (a hash, empty when absent)


def admit(request, documents: list[tuple[str, str]]) -> Admitted | None:
    """The principal of the request's API token and the documents (key, GET or HASH), the request counted
    against its rate limits; None when DRF's path must answer (see the module's docstring)."""
    if request.method != "GET" or request.META.get("QUERY_STRING") or request.META.get("HTTP_ACCEPT") not in _ACCEPTED:
        return None
    key = _token_key(request.META.get("HTTP_AUTHORIZATION"))
    if key is None:
        return None
    key_hash = api_token_hash(key)
    now = time.time()
    limits = windows({"ip": ApiRateThrottle().get_ident(request), "token": token_ident(key_hash)}, now)
    keys = [principal_key(key_hash), *limits, *(name for name, _ in documents)]
    args = [repr(now), len(limits), *(period for _, period in limits.values()), *(kind for _, kind in documents)]
    try:
        reply = script_run(get_redis_connection("default"), _ADMIT, keys, args)
    except RedisError as error:
        logger.warning("fast read skipped, Redis unavailable: %s", error)
        return None
    if reply[0] != 1:
        return None
    principal = Principal.from_json(reply[1])
    counts, found = reply[2 : 2 + len(limits)], reply[2 + len(limits) :]
    # Counted now, whatever follows: DRF's throttle takes this result rather than count the request again.
    request.__dict__[COUNTED] = wait = wait_over(limits, counts, now)
    if principal is None or wait is not None:
        return None
    return Admitted(
        principal,
        [_hash(value) if kind == HASH else value for value, (_, kind) in zip(found, documents, strict=True)],
    )


class FastReadView:
    """A DRF view whose GET may be answered by `fast_get` (an HttpResponse, or None for DRF's path). A GET that
    DRF answers 200 leaves its API token cached for the next one."""

    def fast_get(self, request, **kwargs) -> HttpResponse | None:
        raise NotImplementedError

    def dispatch(self, request, *args, **kwargs):
        if request.method == "GET":
            response = self.fast_get(request, **kwargs)
            if response is not None:
                return response
        response = super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
        if request.method == "GET" and response.status_code == 200:
            principal_remember_request(self.request)  # type: ignore[attr-defined]
        return response


def json_response(view, document: dict, headers: dict[str, str]) -> HttpResponse:
    """The answer DRF's view gives for this document: its JSON renderer's bytes and its default headers."""
    body = json.dumps(document, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
    response = HttpResponse(body, content_type="application/json")
    for name, value in {**view.default_response_headers, **headers}.items():
        response[name] = value
    return response


def _token_key(header: str | None) -> str | None:
    # DRF's TokenAuthentication reads the header the same way; any header it would refuse goes to it for the 401.
    if not header:
        return None
    parts = header.split()
    if len(parts) != 2 or parts[0].lower() != ApiTokenAuthentication.keyword.lower():
        return None
    return parts[1] if parts[1].isascii() and parts[1].isalnum() else None


def _hash(value) -> dict[str, str]:
    pairs = value or []
    return {pairs[i].decode(): pairs[i + 1].decode() for i in range(0, len(pairs), 2)}
