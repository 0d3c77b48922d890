"""`make serve`'s web server (granian, as fintech.run --serve starts it) without DEBUG: it answers the health
check, serves the admin styled from collected static files, and stops gracefully on SIGTERM, finishing the
request it is answering."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from django.conf import settings
from django.db import connection

from fintech.run import web_command
from tests.fintech.test_static_files import _answers, _free_port, _get
from tests.integration.conftest import database_url, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def served(tmp_path, monkeypatch):
    # web_command reads these from the environment, as make serve does
    monkeypatch.setenv("SERVE_WORKERS", "1")
    monkeypatch.setenv("SERVE_GRACEFUL_SECONDS", "10")
    env = {
        **os.environ,
        "DATABASE_URL": database_url(settings.DATABASE_URL, connection.settings_dict["NAME"]),
        "STATIC_ROOT": str(tmp_path / "static"),
        "PROJECTIONS_WAKE_ON_COMMIT": "false",
        "DEBUG": "false",
        "SERVE_WORKERS": "1",
        "SERVE_GRACEFUL_SECONDS": "10",
    }
    manage = [sys.executable, "manage.py"]
    subprocess.run(  # noqa: S603 - our own interpreter and fixed arguments
        [*manage, "collectstatic", "--no-input", "--verbosity", "0"], cwd=settings.BASE_DIR, env=env, check=True
    )
    port, log = _free_port(), tmp_path / "server.log"
    command = web_command(sys.executable, manage, serve=True, address=f"127.0.0.1:{port}")
    assert command[:3] == [sys.executable, "-m", "granian"]
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
            command, cwd=settings.BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_for(lambda: _answers(port, process, log), what="granian to answer", timeout=30)
        yield port, process, log
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def test_serves_health_and_the_styled_admin_then_stops_gracefully(served):
    port, process, log = served
    assert _get(port, "/healthz")[0] == 200
    status, _, body = _get(port, "/admin/login/")
    assert status == 200
    stylesheet = next(href for href in body.decode().split('"') if href.startswith("/static/admin/css/base."))
    assert _get(port, stylesheet)[0] == 200
    # a request in flight when SIGTERM comes is answered, then the server exits
    answers: list[int] = []
    slow = threading.Thread(target=lambda: answers.append(_get(port, "/readyz")[0]))
    slow.start()
    time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    slow.join(timeout=15)
    assert process.wait(timeout=15) == 0, log.read_text()
    assert answers, log.read_text()
    assert answers[0] in (200, 503)
