"""Scripts are called by SHA and loaded again, once, when the server has lost them (a restart, SCRIPT FLUSH):
single calls (the API's fast read) and pipelined ones (the projections' cache writes) alike. A single call goes
over the thread's own connection, which a dropped socket or a fork does not break."""

import os

import pytest
import redis as redis_py
from django_redis import get_redis_connection
from redis.exceptions import RedisError

from fintech.redisscripts import _call, script_run, scripts_run

ECHO = "return {KEYS[1], ARGV[1]}"


def test_a_script_the_server_lost_is_loaded_again():
    redis = get_redis_connection("default")
    assert script_run(redis, ECHO, ["k"], ["one"]) == [b"k", b"one"]
    redis.script_flush()
    assert script_run(redis, ECHO, ["k"], ["two"]) == [b"k", b"two"]
    redis.script_flush()
    assert scripts_run(redis, ECHO, [(["a"], [1]), (["b"], [2])]) == [[b"a", b"1"], [b"b", b"2"]]
    assert scripts_run(redis, ECHO, []) == []


def _connection_id(redis) -> int:
    # The id of the connection script_run uses in this thread (CLIENT ID asked over it; scripts may not ask).
    return _call(redis, "CLIENT", "ID")


def test_a_connection_the_server_dropped_is_replaced_and_the_call_goes_through():
    redis = get_redis_connection("default")
    first = _connection_id(redis)
    assert _connection_id(redis) == first  # kept between calls
    # when the server drops it (a restart, an idle timeout)
    assert redis.client_kill_filter(_id=first) == 1
    # then the next call answers, over a new connection
    assert script_run(redis, ECHO, ["k"], ["after"]) == [b"k", b"after"]
    assert _connection_id(redis) != first


def test_a_server_that_does_not_answer_raises_redis_error_at_once():
    dead = redis_py.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    connects = []
    connection_class = dead.connection_pool.connection_class

    class Counted(connection_class):
        def _connect(self):
            connects.append(1)
            return super()._connect()

    dead.connection_pool.connection_class = Counted
    for attempt in (1, 2):
        with pytest.raises(RedisError):
            script_run(dead, ECHO, ["k"], ["x"])
        # one try per call: a connection that never answered is not kept to be tried again
        assert len(connects) == attempt


def test_a_forked_child_talks_over_a_connection_of_its_own():
    redis = get_redis_connection("default")
    parent = _connection_id(redis)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its connection's id, never return into pytest
        try:
            os.write(write, str(_connection_id(redis)).encode())
        finally:
            os._exit(0)
    os.close(write)
    child = int(os.read(read, 64) or b"0")
    os.close(read)
    os.waitpid(pid, 0)
    assert child not in (0, parent)
    assert _connection_id(redis) == parent  # the parent's own is untouched
