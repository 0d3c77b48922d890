import pytest
from rest_framework.test import APIClient

from accounts.services import api_token_issue


@pytest.fixture(autouse=True)
def _no_projection_wake_ups(settings):
    """Unit tests run projections themselves; only the integration tests use a worker."""
    settings.PROJECTIONS_WAKE_ON_COMMIT = False


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
