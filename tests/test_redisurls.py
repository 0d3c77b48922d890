import pytest

from fintech.redisurls import broker_url, database_url


@pytest.mark.parametrize(
    ("redis_url", "expected"),
    [
        ("redis://127.0.0.1:6379/4", "redis://127.0.0.1:6379/4"),
        ("unix:///srv/.data/redis.sock?db=2", "redis+socket:///srv/.data/redis.sock?virtual_host=2"),
        ("unix:///srv/.data/redis.sock", "redis+socket:///srv/.data/redis.sock"),
    ],
)
def test_broker_url_names_the_same_database_the_kombu_way(redis_url, expected):
    assert broker_url(redis_url) == expected


def test_database_url_replaces_the_database_on_tcp_and_socket():
    assert database_url("redis://h:6379/0", 5) == "redis://h:6379/5"
    assert database_url("unix:///s.sock?db=0", 5) == "unix:///s.sock?db=5"
    with pytest.raises(ValueError, match="cannot derive"):
        database_url("memcached://h", 1)
