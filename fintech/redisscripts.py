"""Lua scripts on Redis, called by SHA (redis-py's Script objects ask the server whether the script exists before
every pipeline: a second round trip on each write). A script is loaded on first use, and loaded again, once,
when the server has lost it (a restart, SCRIPT FLUSH)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from redis.exceptions import NoScriptError

_loaded: dict[str, str] = {}  # script source → its SHA1 on the server


def script_run(redis_client, source: str, keys: list[str], args: list) -> Any:
    """One call of the script; its reply."""
    return _by_sha(redis_client, source, lambda sha: redis_client.evalsha(sha, len(keys), *keys, *args))


def scripts_run(redis_client, source: str, calls: list[tuple[list[str], list]]) -> list:
    """The script once per (keys, args), pipelined in one round trip; their replies."""
    if not calls:
        return []

    def pipelined(sha: str) -> list:
        pipe = redis_client.pipeline(transaction=False)
        for keys, args in calls:
            pipe.evalsha(sha, len(keys), *keys, *args)
        return pipe.execute()

    return _by_sha(redis_client, source, pipelined)


def _by_sha(redis_client, source: str, call: Callable[[str], Any]) -> Any:
    for attempt in (1, 2):
        if source not in _loaded:
            _loaded[source] = redis_client.script_load(source)
        try:
            return call(_loaded[source])
        except NoScriptError:
            _loaded.pop(source, None)
            if attempt == 2:
                raise
    raise AssertionError("unreachable")
