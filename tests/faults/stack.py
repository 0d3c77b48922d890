"""The whole application on servers of the suite's own, in a temporary directory: an embedded PostgreSQL, a Redis
for the cache, another Redis for the Celery broker (so that "Redis down" and "broker down" are distinct
faults), the application server and a Celery worker with its embedded beat. `Stack` is a context manager:
leaving it stops every process it started and deletes the directory, on an error or Ctrl-C too."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import requests

from fintech.redisurls import broker_url
from fintech.run import url_as, web_command
from tests.faults.servers import Postgres, Process, Redis, Standby, wait_until

BASE_DIR = Path(__file__).resolve().parents[2]
APP_ROLE = "fintech_app"
READY_SECONDS = 60.0
# Variables of the caller's environment that would point the suite's processes at other servers.
_FOREIGN = ("DATABASE_", "REDIS_URL", "CELERY_BROKER_URL", "TEST_DATABASE_NAME", "VAULT_", "CELERY_", "DJANGO_ENV")


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM ignored meanwhile (in the main thread; elsewhere signals cannot be set)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Stack:
    """Servers, processes and API tokens of one run of the suite."""

    def __init__(
        self,
        *,
        catch_up_seconds: float = 1.0,
        say: Callable[[str], None] = print,
        serve: bool = False,
        app_env: dict[str, str] | None = None,
        replica: bool = False,
    ) -> None:
        # `serve`: the application under make serve's granian rather than runserver; `app_env`: more variables
        # for the application's processes; `replica`: a streaming replica of the database, which the application
        # is given as DATABASE_REPLICA_URL.
        self.catch_up_seconds = catch_up_seconds
        self.serve = serve
        self.extra_env = app_env or {}
        self.say = say
        self.directory: Path | None = None
        self.postgres: Postgres | None = None
        self.with_replica = replica
        self.replica: Standby | None = None
        self.cache: Redis | None = None
        self.broker: Redis | None = None
        self.web: Process | None = None
        self.worker: Process | None = None
        self.tokens: dict[str, str] = {}
        self.projections: set[str] = set()
        self.base_url = ""

    # lifecycle ----------------------------------------------------------------------------------------------
    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def start(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="fintech-faults-"))
        self.say(f"servers in {self.directory}")
        self.postgres = Postgres(self.directory / "postgres")
        self.postgres.init_and_start()
        self.cache = Redis("redis-cache", self.directory / "redis-cache")
        self.broker = Redis("redis-broker", self.directory / "redis-broker")
        self.cache.start()
        self.broker.start()
        password = secrets.token_urlsafe(24)
        owner = self._env(self.postgres.url())
        provisioned = subprocess.run(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "tests.faults.provision"],
            cwd=BASE_DIR,
            env={**owner, "FAULTS_APP_ROLE": APP_ROLE, "DATABASE_APP_PASSWORD": password},
            capture_output=True,
            text=True,
            check=False,
        )
        if provisioned.returncode != 0:
            raise RuntimeError(f"provisioning failed:\n{provisioned.stdout}\n{provisioned.stderr}")
        provision = json.loads(provisioned.stdout.strip().splitlines()[-1])
        self.tokens, self.projections = provision["tokens"], set(provision["projections"])
        self.app_env = {**self._env(url_as(self.postgres.url(), user=APP_ROLE, password=password)), **self.extra_env}
        if self.with_replica:
            # After provisioning: the copy starts with the schema, the role and the tokens.
            self.replica = Standby(self.directory / "replica", self.postgres)
            self.replica.init_and_start()
            self.app_env["DATABASE_REPLICA_URL"] = url_as(self.replica.url(), user=APP_ROLE, password=password)
        port = _free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        python = sys.executable
        web = [python, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
        if self.serve:
            web = web_command(python, [python, "manage.py"], serve=True, address=f"127.0.0.1:{port}")
        self.web = Process(
            "web",
            web,
            env={**self.app_env, "LOG_LEVEL": "WARNING", "STATIC_ROOT": str(self.directory / "static")},
            cwd=BASE_DIR,
            log_path=self.directory / "web.log",
        )
        command = [python, "-m", "celery", "-A", "fintech", "worker", "-B", "--pool", "solo", "-l", "INFO"]
        self.worker = Process(
            "worker",
            [*command, "-n", f"faults-{os.getpid()}@%h"],
            env=self.app_env,
            cwd=BASE_DIR,
            log_path=self.directory / "worker.log",
        )
        self.web_start()
        self.worker_start()

    def close(self) -> None:
        """Stop whatever runs, then delete the directory. Never raises: each step is tried, and a second Ctrl-C
        does not cut it short."""
        with _signals_held():
            self._close()

    def _close(self) -> None:
        for step in (
            lambda: self.worker and self.worker.stop(timeout=10),
            lambda: self.web and self.web.stop(timeout=10),
            lambda: self.cache and self.cache.stop(),
            lambda: self.broker and self.broker.stop(),
            lambda: self.replica and self.replica.running() and self.replica.stop("immediate"),
            lambda: self.postgres and self.postgres.running() and self.postgres.stop("immediate"),
        ):
            try:
                step()
            except Exception as error:  # noqa: BLE001 - cleaning up: report and go on with the next step
                self.say(f"cleanup: {error}")
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def _env(self, database_url: str) -> dict[str, str]:
        inherited = {name: value for name, value in os.environ.items() if not name.startswith(_FOREIGN)}
        return {
            **inherited,
            "DATABASE_URL": database_url,
            "REDIS_URL": self.cache.url(0),
            "CELERY_BROKER_URL": broker_url(self.broker.url(0)),
            "FINTECH_DATA_DIR": str(self.directory / "data"),
            "VAULT_KEYS_DIR": str(self.directory / "keys"),
            "CELERY_BEAT_SCHEDULE_FILENAME": str(self.directory / "celerybeat-schedule"),
            "PROJECTIONS_CATCH_UP_SECONDS": str(self.catch_up_seconds),
            "DEBUG": "false",
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }

    # the application's processes -----------------------------------------------------------------------------
    def web_start(self) -> None:
        """Start the application server and wait until it serves an authenticated request."""
        self.web.start()
        wait_until(self._web_ready, what="the application server", timeout=READY_SECONDS, interval=0.2)

    def _web_ready(self) -> bool:
        self.web.check_alive()
        try:
            response = requests.get(
                f"{self.base_url}/api/v1/payments?limit=1",
                headers={"Authorization": f"Token {self.tokens['merchant']}"},
                timeout=5,
            )
        except requests.RequestException:
            return False
        return response.status_code == 200

    def worker_start(self) -> None:
        """Start a Celery worker with its beat and wait until it consumes."""
        self.worker.start()

        def ready() -> bool:
            self.worker.check_alive()
            return " ready." in self.worker.log_since_start()

        wait_until(ready, what="the Celery worker", timeout=READY_SECONDS, interval=0.2)

    # the database, as its owner ------------------------------------------------------------------------------
    def sql(self, statement: str, params: list | None = None) -> list[tuple]:
        """One statement on a fresh autocommit connection (the server may have restarted since the last one);
        autocommit, so that the suite's own session never holds the projections' horizon back."""
        with psycopg.connect(self.postgres.url(), autocommit=True, connect_timeout=5) as conn:
            return conn.execute(statement, params or []).fetchall()

    def manage(self, *args: str) -> str:
        """A management command as the application runs it (its role, its servers); its output. Raises if it
        fails."""
        result = subprocess.run(  # noqa: S603 - our own interpreter and manage.py
            [sys.executable, "manage.py", *args],
            cwd=BASE_DIR,
            env=self.app_env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} exited {result.returncode}: {result.stderr[-500:]}")
        return result.stdout

    def verdicts(self) -> dict[str, dict]:
        """`projection_status` and `reconcile` as the application would run them (its role, its servers):
        {command: {"ok": bool, "output": text}} (tests.faults.verdicts)."""
        result = subprocess.run(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "tests.faults.verdicts"],
            cwd=BASE_DIR,
            env=self.app_env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"tests.faults.verdicts exited {result.returncode}: {result.stderr.strip()[-500:]}")
        return json.loads(result.stdout.strip().splitlines()[-1])
