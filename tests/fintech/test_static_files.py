"""The admin is styled in a real server without DEBUG, as `make run` and production serve it: collectstatic writes
compressed files under hashed names, and whitenoise serves them."""

from __future__ import annotations

import http.client
import os
import re
import socket
import subprocess
import sys

import pytest
from django.conf import settings
from django.db import connection

from tests.integration.conftest import database_url, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _answers(port: int, process: subprocess.Popen, log) -> bool:
    assert process.poll() is None, log.read_text()
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


def _get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


@pytest.fixture
def server(tmp_path):
    """collectstatic into a directory of its own, then `runserver --noreload` without DEBUG serving it."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(settings.DATABASE_URL, connection.settings_dict["NAME"]),
        "STATIC_ROOT": str(tmp_path / "static"),
        "PROJECTIONS_WAKE_ON_COMMIT": "false",
        "DEBUG": "false",
    }
    manage = [sys.executable, "manage.py"]
    subprocess.run(  # noqa: S603 - our own interpreter and fixed arguments
        [*manage, "collectstatic", "--no-input", "--verbosity", "0"], cwd=settings.BASE_DIR, env=env, check=True
    )
    port, log = _free_port(), tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
            [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: _answers(port, process, log), what="the server to answer", timeout=30)
        yield port
    finally:
        process.kill()
        process.wait(timeout=10)


def test_admin_login_page_stylesheets_are_served_hashed_compressed_and_cached(server):
    # given the admin login page of a server without DEBUG
    status, _, body = _get(server, "/admin/login/")
    assert status == 200
    # then it loads nothing from another server (no CDN)
    assert not re.search(r'(src|href)="(https?:)?//', body.decode())
    # and every stylesheet it links has a hashed name under /static/
    stylesheets = re.findall(r'<link rel="stylesheet"[^>]*href="([^"]+)"', body.decode())
    assert "/static/admin/css/base.css" not in stylesheets
    assert any(re.fullmatch(r"/static/admin/css/base\.[0-9a-f]{12}\.css", href) for href in stylesheets)
    for href in stylesheets:
        assert href.startswith("/static/")
        # and each is served as CSS, compressed when the browser accepts it, cached for ever
        status, headers, _ = _get(server, href, {"Accept-Encoding": "gzip"})
        assert status == 200, href
        assert headers["content-type"].startswith("text/css")
        assert headers["content-encoding"] == "gzip"
        assert "immutable" in headers["cache-control"]
