"""Lua scripts on Redis, called by SHA (redis-py's Script objects ask the server whether the script exists before
every pipeline: a second round trip on each write). A script is loaded on first use, and loaded again, once,
when the server has lost it (a restart, SCRIPT FLUSH).

A single call goes over this thread's own connection to the client's server rather than through the client:
redis-py's pool checks a connection out with a readiness poll of its socket (a system call) and wraps each
command in retry and observability layers, about 40 µs of a 70 µs call here, paid on every ledger commit (the
balance write-through) and every fast read (the token's admission)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError

_loaded: dict[str, str] = {}  # script source → its SHA1 on the server


class _Own(threading.local):
    """This thread's connection per pool."""

    def __init__(self) -> None:
        self.connections: dict[Any, Any] = {}


_own = _Own()


def _forget_after_fork() -> None:
    # A forked child (a server's worker) must not talk over its parent's socket: it connects on its own.
    _own.connections = {}


os.register_at_fork(after_in_child=_forget_after_fork)


def script_run(redis_client, source: str, keys: list[str], args: list) -> Any:
    """One call of the script; its reply. Raises RedisError as the client would."""
    return _by_sha(redis_client, source, lambda sha: _call(redis_client, "EVALSHA", sha, len(keys), *keys, *args))


def _call(redis_client, *command) -> Any:
    pool = redis_client.connection_pool
    connection = _own.connections.get(pool)
    reused = connection is not None
    if not reused:
        connection = _own.connections[pool] = pool.connection_class(**pool.connection_kwargs)
    try:
        # Both disconnect the connection on a network error; the next call connects again.
        connection.send_packed_command(connection.pack_command(*command), check_health=False)
        return connection.read_response()
    except RedisConnectionError:
        _own.connections.pop(pool, None)
        if not reused:
            raise
        # A connection that lay idle may have been dropped by the server (a restart, an idle timeout): one more
        # try on a new connection, as redis-py's client retries. Running a script twice writes the same again,
        # bar the fast read's rate-limit count, which may count the request twice. A server that is down fails
        # that try too, and every later call tries once.
        return _call(redis_client, *command)


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
