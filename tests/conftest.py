import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.services import api_token_issue
from fintech.db import own_connection_close, own_connection_execute
from tests.staff import staff_login


@pytest.fixture(autouse=True)
def _no_projection_wake_ups(settings):
    """Unit tests run projections themselves; only the integration tests use a worker."""
    settings.PROJECTIONS_WAKE_ON_COMMIT = False


def pytest_configure(config):
    """whitenoise warns, at every handler the test client builds, that STATIC_ROOT does not exist (tests collect
    nothing into it): it exists, empty unless `make run` collected into it."""
    from django.conf import settings

    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)


@pytest.fixture(autouse=True)
def _static_files_uncollected(settings):
    """Pages render without a collectstatic run: the manifest storage would refuse every `{% static %}` name it
    has no hashed name for. tests/fintech/test_static_files.py serves the real, collected storage."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def admin_client(client, admin_user):
    """pytest-django's superuser client, verified by a TOTP device as the admin requires."""
    return staff_login(client, admin_user)


@pytest.fixture
def no_leftover_attempts(db):
    """Authorization attempts are committed on a connection of their own, so earlier tests leave theirs open (their
    rollback took the outcome, not the attempt) for a recovery run to find: the table starts empty, emptied on
    that connection before the test writes anything."""
    own_connection_execute("TRUNCATE payments_authorizationattempt", [])


@pytest.fixture
def merchant_client(db):
    """An API client authenticated as a user of merchant `m-alpha`."""
    return _client(api_token_issue(username="alpha", merchant_id="m-alpha"))


@pytest.fixture
def other_merchant_client(db):
    return _client(api_token_issue(username="beta", merchant_id="m-beta"))


def _client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.fixture
def run_concurrently() -> Callable[..., list[tuple[str, object]]]:
    """Run callables at once, one thread each, released together by a barrier; each thread closes its own
    database connection. Returns ("ok", value) or ("error", exception) per callable, in order."""

    def run(*targets: Callable[[], object]) -> list[tuple[str, object]]:
        barrier = threading.Barrier(len(targets))
        results: list[tuple[str, object] | None] = [None] * len(targets)

        def worker(index: int, target: Callable[[], object]) -> None:
            try:
                barrier.wait(timeout=10)
                results[index] = ("ok", target())
            except Exception as exc:  # noqa: BLE001 - reported to the test, which asserts on it
                results[index] = ("error", exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=worker, args=(i, t), daemon=True) for i, t in enumerate(targets)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads), "a thread did not finish"
        return results

    return run


@pytest.fixture(scope="session", autouse=True)
def _own_connection_closed(django_db_setup):
    """The audit's own connection (fintech.db) of the main thread is closed before the test database is
    dropped, which PostgreSQL refuses while a session is connected to it."""
    yield
    own_connection_close()
