"""The database goes away under a request (a restart, a failover, a killed backend): the client is told so,
with when to retry, and never gets a bare 500."""

import psycopg
import pytest
from django.db import close_old_connections, connection

from accounts.services import api_token_issue
from tests.staff import staff_login
from tests.vault.helpers import api_client

pytestmark = pytest.mark.django_db(transaction=True)

PAYMENTS_URL = "/api/v1/payments"


def _drop_this_connection() -> None:
    """What a server restart does to the connection this thread's requests use: the backend is terminated."""
    pid = connection.connection.info.backend_pid
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])


@pytest.fixture
def client():
    yield api_client(api_token_issue(username="fault-db", merchant_id="m-fault-db"))
    # A connection left dead by a failed test must not take the database flush down with it.
    connection.close()


@pytest.mark.parametrize(
    ("method", "path", "body", "headers"),
    [
        ("get", PAYMENTS_URL, None, {}),
        ("post", "/api/v1/vault/tokens", {"card_number": "4242424242424242", "exp_month": 12, "exp_year": 2035}, {}),
        (
            "post",
            "/api/v1/vault/tokens",
            {"card_number": "4242424242424242", "exp_month": 12, "exp_year": 2035},
            {"HTTP_IDEMPOTENCY_KEY": "fault-1"},
        ),
    ],
)
def test_request_after_the_database_dropped_its_connection_answers_503_problem(client, method, path, body, headers):
    # given a client whose requests were served on this connection
    assert client.get(PAYMENTS_URL).status_code == 200
    # when the database drops the connection (a restart) and the next request runs into it
    _drop_this_connection()
    response = getattr(client, method)(path, body, format="json", **headers)
    # then it answers 503 problem+json telling when to retry, and nothing of the database's error
    assert response.status_code == 503, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert int(response["Retry-After"]) >= 1
    problem = response.json()
    assert problem["code"] == "service_unavailable"
    assert "terminat" not in problem["detail"]
    assert "4242424242424242" not in response.content.decode()
    # and once the server has dropped the dead connection (as it does at the end of every request), the next
    # request is served
    close_old_connections()
    assert client.get(PAYMENTS_URL).status_code == 200


def test_first_request_after_a_restart_is_served_on_a_new_connection(client):
    # given a persistent connection (CONN_MAX_AGE) that the database dropped between two requests
    assert client.get(PAYMENTS_URL).status_code == 200
    _drop_this_connection()
    # when the next request starts (Django closes unusable connections at request start, and health checks find
    # one that died while idle)
    close_old_connections()
    # then it is served on a new connection instead of failing on the dead one
    assert client.get(PAYMENTS_URL).status_code == 200


def test_admin_page_after_the_database_dropped_its_connection_answers_503(client):
    # given a staff user's admin session, served on this connection
    from django.contrib.auth import get_user_model
    from django.test import Client

    admin = get_user_model().objects.create_superuser("fault-admin", password="unused-password")
    browser = Client()
    staff_login(browser, admin)
    assert browser.get("/admin/").status_code == 200
    # when the database drops the connection and the next page runs into it
    _drop_this_connection()
    response = browser.get("/admin/accounts/account/")
    # then the page answers 503 with Retry-After, not a server error
    assert response.status_code == 503
    assert int(response["Retry-After"]) >= 1
    close_old_connections()
    assert browser.get("/admin/").status_code == 200
