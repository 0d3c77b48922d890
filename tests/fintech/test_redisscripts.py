"""Scripts are called by SHA and loaded again, once, when the server has lost them (a restart, SCRIPT FLUSH):
single calls (the API's fast read) and pipelined ones (the projections' cache writes) alike."""

from django_redis import get_redis_connection

from fintech.redisscripts import script_run, scripts_run

ECHO = "return {KEYS[1], ARGV[1]}"


def test_a_script_the_server_lost_is_loaded_again():
    redis = get_redis_connection("default")
    assert script_run(redis, ECHO, ["k"], ["one"]) == [b"k", b"one"]
    redis.script_flush()
    assert script_run(redis, ECHO, ["k"], ["two"]) == [b"k", b"two"]
    redis.script_flush()
    assert scripts_run(redis, ECHO, [(["a"], [1]), (["b"], [2])]) == [[b"a", b"1"], [b"b", b"2"]]
    assert scripts_run(redis, ECHO, []) == []
