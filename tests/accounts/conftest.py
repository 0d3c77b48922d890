from collections.abc import Callable

import pytest
from django.contrib.auth import get_user_model

from accounts import services
from accounts.models import Customer
from tests.accounts.helpers import customer_details
from tests.staff import staff_login


@pytest.fixture
def register(db) -> Callable[..., tuple[Customer, dict]]:
    """Register a customer through the service: (customer, the details it was given)."""

    def make(**overrides) -> tuple[Customer, dict]:
        details = {**customer_details(), **overrides}
        return services.customer_register(**details, actor="test"), details

    return make


@pytest.fixture
def staff_client(client):
    admin = get_user_model().objects.create_superuser("root", password="x-test-only")
    staff_login(client, admin)
    return client
