"""Integration fixtures: a real Celery worker (solo pool unless told, embedded beat) in a subprocess on
pytest-django's test database, a Redis database of the tests' own (cache and broker) on the server of REDIS_URL,
and polling.

The worker runs in a process group of its own, so that SIGKILL reaches its pool and beat processes too; every
worker is killed at teardown, before pytest-django flushes the tables.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote, urlparse

import kombu.pools
import pytest
from django.conf import settings as django_settings
from django.db import connection
from django_redis import get_redis_connection

from fintech import redisurls
from fintech.celery import app as celery_app
from fintech.events import DomainEvent

# Another Redis database than the suite's; INTEGRATION_REDIS_DB keeps two runs sharing one server apart.
REDIS_DB = int(os.environ.get("INTEGRATION_REDIS_DB", "9"))
WORKER_READY_SECONDS = 30.0
# libpq reads PGAPPNAME: the worker's sessions are recognisable in pg_stat_activity.
WORKER_APPLICATION_NAME = "integration-celery-worker"

T = TypeVar("T")


def redis_urls(redis_url: str, db: int) -> tuple[str, str]:
    """(cache URL, broker URL) of database `db` on the server `redis_url` names, tcp or unix socket."""
    cache = redisurls.database_url(redis_url, db)
    return cache, redisurls.broker_url(cache)


def event_modules_of_tests() -> list[str]:
    """The test modules that define event types (and their upcasters). The event table outlives transactional
    tests, so events of those types, appended by earlier tests of the session, are in the log the worker reads:
    it imports these modules too, to decode everything this process can."""
    modules: set[str] = set()
    pending: list[type] = [DomainEvent]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__.startswith("tests.") and cls.__module__ in sys.modules:
            modules.add(cls.__module__)
    return sorted(modules)


def database_url(url: str, name: str) -> str:
    return urlparse(url)._replace(path="/" + quote(name)).geturl()


def wait_for(predicate: Callable[[], T], *, what: str, timeout: float = 30.0, interval: float = 0.05, worker=None) -> T:
    """Poll `predicate` until it returns something truthy (returned); fail after `timeout` s, with the worker's
    log tail when there is a worker."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            tail = f"\n--- worker log (tail) ---\n{worker.log_tail()}" if worker is not None else ""
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{tail}")
        time.sleep(interval)


def _switch_broker(url: str) -> None:
    """Point the test process's Celery app at another broker. Its connection and producer pools are built from
    the URL on first use and kept (kombu keeps them by URL too): close and forget them all, so that the next
    publish connects to `url`."""
    celery_app.conf.broker_url = url
    kombu.pools.reset()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@dataclass
class RedisTarget:
    cache_url: str
    broker_url: str

    def client(self):
        """The raw client the cache module uses (no key prefix): `payment:{id}` as the worker wrote it."""
        return get_redis_connection("default")


@pytest.fixture
def redis_db(settings) -> Iterator[RedisTarget]:
    """Cache and broker on Redis database REDIS_DB of the server REDIS_URL names, flushed before and after."""
    cache_url, broker_url = redis_urls(django_settings.REDIS_URL, REDIS_DB)
    settings.CACHES = {**settings.CACHES, "default": {**settings.CACHES["default"], "LOCATION": cache_url}}
    settings.CELERY_BROKER_URL = broker_url
    previous_broker = celery_app.conf.broker_url
    _switch_broker(broker_url)
    target = RedisTarget(cache_url=cache_url, broker_url=broker_url)
    target.client().flushdb()
    try:
        yield target
    finally:
        target.client().flushdb()
        _switch_broker(previous_broker)


@pytest.fixture
def broker_down(redis_db) -> Iterator[None]:
    """The Celery broker this process sends to is down (nothing listens where it points)."""
    _switch_broker("redis://127.0.0.1:1/0")
    try:
        yield
    finally:
        _switch_broker(redis_db.broker_url)


@dataclass
class Worker:
    """`celery -A fintech worker -B --pool solo -c 1` on the test database, in a process group of its own. The solo
    pool runs a task inside the loop that talks to the broker, so it sends even an early acknowledgement only
    once the task has returned; `pool = "prefork"` (one child) acknowledges as `make run`'s worker does."""

    env: dict[str, str]
    log_path: Path
    pool: str = "solo"
    process: subprocess.Popen | None = None
    starts: int = 0
    _log_offset: int = field(default=0, repr=False)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start the worker and wait until it consumes."""
        assert self.process is None, "the worker is already running"
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts} ---\n".encode())
            log.flush()
            self._log_offset = log.tell()
            command = [sys.executable, "-m", "celery", "-A", "fintech", "worker", "-B", "--pool", self.pool, "-c", "1"]
            command += ["-l", "INFO"]
            command += ["-n", f"integration-{os.getpid()}@%h"]
            modules = event_modules_of_tests()
            if modules:
                command += ["--include", ",".join(modules)]
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
                command,
                cwd=django_settings.BASE_DIR,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(self._ready, what="the worker to be ready", timeout=WORKER_READY_SECONDS, worker=self)

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"the worker exited with {self.process.returncode}:\n{self.log_tail()}")
        return b" ready." in self.log_since_start()

    def kill(self) -> None:
        """SIGKILL the worker and its beat process, wherever they are, and wait for their sessions to end."""
        self.kill_processes()
        wait_for_sessions_gone()

    def kill_processes(self) -> None:
        """SIGKILL the worker and its beat process, without waiting for their database sessions: a session
        blocked on a lock outlives its killed client until it gets the lock, since the server only notices the
        dead client when it next talks to it."""
        assert self.process is not None, "the worker is not running"
        self._signal_group(signal.SIGKILL)
        self._reap_processes(timeout=10)

    def stop(self) -> None:
        """Warm shutdown (SIGTERM), SIGKILL if it takes too long."""
        if self.process is None:
            return
        self._signal_group(signal.SIGTERM)
        self._reap_processes(timeout=15)
        wait_for_sessions_gone()

    def _signal_group(self, signum: int) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass

    def _reap_processes(self, *, timeout: float) -> None:
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self.process.wait(timeout=10)
        # Whatever is left of the group (the beat process) goes too.
        self._signal_group(signal.SIGKILL)
        self.process = None

    def log_since_start(self) -> bytes:
        with self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            return log.read()

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def tasks_succeeded(self, task: str = "projections.tasks.projection_run_task") -> int:
        """How many runs of `task` this start of the worker has finished, from its log."""
        return sum(1 for line in self.log_since_start().splitlines() if task.encode() in line and b"succeeded" in line)


def database_sessions(application_name: str = WORKER_APPLICATION_NAME) -> int:
    """How many sessions of the test database the processes started with PGAPPNAME `application_name` hold."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s",
            [application_name],
        )
        return cursor.fetchone()[0]


def wait_for_sessions_gone(application_name: str = WORKER_APPLICATION_NAME) -> None:
    wait_for(lambda: database_sessions(application_name) == 0, what=f"{application_name} sessions to end", timeout=10)


@pytest.fixture
def worker(transactional_db, settings, redis_db, tmp_path, caplog) -> Iterator[Worker]:
    """A worker (not started: call `start()`) on the test database and the tests' Redis database, with beat
    catching up every second; this process wakes it through the broker after each append (and the test fails
    if a wake-up could not be sent: beat would hide it)."""
    settings.PROJECTIONS_WAKE_ON_COMMIT = True
    env = {
        **os.environ,
        "DATABASE_URL": database_url(django_settings.DATABASE_URL, connection.settings_dict["NAME"]),
        "REDIS_URL": redis_db.cache_url,
        "CELERY_BROKER_URL": redis_db.broker_url,
        "PROJECTIONS_CATCH_UP_SECONDS": "1",
        "CELERY_BEAT_SCHEDULE_FILENAME": str(tmp_path / "celerybeat-schedule"),
        "PGAPPNAME": WORKER_APPLICATION_NAME,
        "DEBUG": "false",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    controller = Worker(env=env, log_path=tmp_path / "worker.log")
    try:
        yield controller
    finally:
        controller.stop()
    lost = [r.getMessage() for r in caplog.records if r.name == "fintech.eventstore" and r.levelno >= logging.ERROR]
    assert not lost, f"{len(lost)} wake-ups were not sent, first: {lost[0]}"
