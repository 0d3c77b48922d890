"""Fixtures of the vault tests: cards vaulted through the services, users in the vault's roles, API clients,
an isolated key directory for tests that rotate or retire keys, and a helper running code in threads."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from accounts.services import api_token_issue
from tests.vault.helpers import EXP_MONTH, EXP_YEAR, VISA, api_client, unique_merchant_id
from vault import keys, services
from vault.models import Card


@pytest.fixture
def isolated_keys(settings, tmp_path) -> Iterator[Path]:
    """A key directory of the test's own, with a fresh provider: the real keys in .data/keys are shared with
    other processes and must not be rotated. Cards vaulted before this fixture cannot be read inside it."""
    directory = tmp_path / "keys"
    settings.VAULT_KEYS_DIR = str(directory)
    settings.VAULT_KEK_KEYSET = None
    keys.key_provider_reset()
    yield directory
    keys.key_provider_reset()


@pytest.fixture
def merchant_id() -> str:
    return unique_merchant_id()


@pytest.fixture
def tokenize(db, merchant_id) -> Callable[..., Card]:
    """Vault a card through the service (a valid Visa for the test's merchant unless told otherwise)."""

    def make(card_number: str = VISA, **overrides) -> Card:
        arguments = {"exp_month": EXP_MONTH, "exp_year": EXP_YEAR, "merchant_id": merchant_id, **overrides}
        return services.card_tokenize(card_number=card_number, **arguments)

    return make


@pytest.fixture
def user_in_roles(db) -> Callable[..., object]:
    """A user in the given vault roles (support, finance, cde); the roles are ensured first, since a
    transactional test's flush removes the groups the migration made."""

    def make(username: str, *roles: str):
        services.role_groups_ensure()
        user, _ = get_user_model().objects.get_or_create(username=username)
        for role in roles:
            user.groups.add(Group.objects.get(name=role))
        # A fresh instance: has_perm caches the permissions it saw first.
        return get_user_model().objects.get(pk=user.pk)

    return make


@pytest.fixture
def cde_user(user_in_roles):
    return user_in_roles("cde-operator", "cde")


@pytest.fixture
def role_client(db) -> Callable[[str, str], APIClient]:
    """An API client of a user in one vault role, its token issued as an operator's would be."""

    def make(username: str, role: str) -> APIClient:
        services.role_groups_ensure()
        return api_client(api_token_issue(username=username, group=role))

    return make


@pytest.fixture
def cde_client(role_client) -> APIClient:
    return role_client("cde-api", "cde")


@pytest.fixture
def vault_merchant_client(db, merchant_id) -> APIClient:
    """An API client of a user acting for the test's merchant."""
    return api_client(api_token_issue(username=f"user-{merchant_id}", merchant_id=merchant_id))
