"""`make run` and `make serve`: migrate, collect the static files, create missing vault keys and load the demo
data (with the demo admin's password and TOTP secret, printed once) as the database owner, set up the
application's least-privilege role, then serve the API and admin on 127.0.0.1:8000 with a Celery worker (and
its beat) beside it, both connected as that role. Ctrl-C stops all of it, including the embedded servers if
they were used. `make run` serves with Django's development server; `make serve` (`--serve`) with granian:
SERVE_WORKERS processes (default: one per CPU) of SERVE_THREADS threads, graceful shutdown on SIGTERM.

DATABASE_URL (or the embedded server) is the owner; the app role's name is DATABASE_APP_ROLE (fintech_app),
its password a fresh random one each run (the role is set up again each run anyway)."""

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from urllib.parse import quote, urlparse, urlunparse

from fintech import devservices

ADDRESS = os.environ.get("RUN_ADDRESS", "127.0.0.1:8000")


def web_command(python: str, manage: list[str], *, serve: bool, address: str = "") -> list[str]:
    """Django's development server, or granian as production runs it (static files by whitenoise either way).
    granian, not gunicorn: side by side on this machine (wrk, 16 connections, 2 CPUs) it answered /healthz at
    ~6,000 requests/s against gunicorn's ~3,100 and a cached GET /api/v1/payments/{id} at ~800 against ~580."""
    address = address or ADDRESS
    if not serve:
        return [*manage, "runserver", address, "--noreload"]
    host, _, port = address.rpartition(":")
    workers = os.environ.get("SERVE_WORKERS") or str(os.cpu_count() or 1)
    return [
        python, "-m", "granian", "--interface", "wsgi", "--host", host, "--port", port,
        "--workers", workers,
        # Threads per worker, each with its own database connection.
        "--blocking-threads", os.environ.get("SERVE_THREADS", "2"),
        # At SIGTERM a worker stops taking requests and finishes those it has, for this long at most.
        "--workers-kill-timeout", os.environ.get("SERVE_GRACEFUL_SECONDS", "30"),
        "--respawn-failed-workers",
        "--access-log",
        "fintech.wsgi:application",
    ]  # fmt: skip


def url_as(url: str, *, user: str, password: str) -> str:
    """The same database URL logged in as another user."""
    parsed = urlparse(url)
    host = parsed.netloc.rpartition("@")[2]
    return urlunparse(parsed._replace(netloc=f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"))


def main(argv: list[str] | None = None) -> int:
    serve = "--serve" in (sys.argv[1:] if argv is None else argv)
    embedded = not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL")
    python = sys.executable
    manage = [python, "manage.py"]
    owner = {
        **os.environ,
        "DATABASE_URL": os.environ.get("DATABASE_URL") or devservices.postgres_url(),
        "REDIS_URL": os.environ.get("REDIS_URL") or devservices.redis_url(),
    }
    app_role, password = os.environ.get("DATABASE_APP_ROLE", "fintech_app"), secrets.token_urlsafe(24)
    subprocess.run([*manage, "migrate", "--no-input"], check=True, env=owner)
    # The admin's stylesheets and scripts, compressed and with hashed names, for whitenoise to serve (STATIC_ROOT).
    subprocess.run([*manage, "collectstatic", "--no-input", "--verbosity", "0"], check=True, env=owner)
    # Creates what a first run (or an upgrade) lacks, explicitly; never replaces an existing key.
    subprocess.run([*manage, "create_keys"], check=True, env=owner)
    subprocess.run([*manage, "load_demo_data"], check=True, env=owner)
    # The password goes through the environment, not the command line other users' `ps` shows.
    subprocess.run(
        [*manage, "db_roles_setup", "--app-role", app_role],
        check=True,
        env={**owner, "DATABASE_APP_PASSWORD": password},
        stdout=subprocess.DEVNULL,
    )
    app = {**owner, "DATABASE_URL": url_as(owner["DATABASE_URL"], user=app_role, password=password)}
    # /metrics sums the counters of every process (web workers and the Celery worker) kept in one directory,
    # emptied at each start (prometheus_client's multiprocess mode).
    metrics_dir = devservices.DATA_DIR / "metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    app["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    children = [
        subprocess.Popen([python, "-m", "celery", "-A", "fintech", "worker", "-B", "-l", "INFO", "-c", "2"], env=app),
        subprocess.Popen(web_command(python, manage, serve=serve), env=app),
    ]
    print(f"serving http://{ADDRESS}/api/v1/ and http://{ADDRESS}/admin/ -- Ctrl-C stops everything", flush=True)  # noqa: T201
    print(f"the server and the worker connect as the database role {app_role} (least privilege)", flush=True)  # noqa: T201
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
        if embedded:
            devservices.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
