"""Redis URLs for the cache (redis-py) and the Celery broker (kombu), which spell a unix socket differently."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlparse


def broker_url(redis_url: str) -> str:
    """The kombu URL of the same server and database: a unix socket is `redis+socket://` there, and its
    database is `virtual_host`, not `db`."""
    parsed = urlparse(redis_url)
    if parsed.scheme != "unix":
        return redis_url
    query = [("virtual_host" if key == "db" else key, value) for key, value in parse_qsl(parsed.query)]
    return f"redis+socket://{parsed.netloc}{parsed.path}" + (f"?{urlencode(query)}" if query else "")


def database_url(redis_url: str, db: int) -> str:
    """The redis-py URL of database `db` on the server `redis_url` names, tcp or unix socket."""
    parsed = urlparse(redis_url)
    if parsed.scheme in ("redis", "rediss"):
        return parsed._replace(path=f"/{db}").geturl()
    if parsed.scheme == "unix":
        query = [(key, value) for key, value in parse_qsl(parsed.query) if key not in ("db", "virtual_host")]
        return f"unix://{parsed.netloc}{parsed.path}?{urlencode([*query, ('db', str(db))])}"
    raise ValueError(f"cannot derive a Redis database from {parsed.scheme}:// URLs")
