"""Fixtures of the vault tests: cards vaulted through the services, users in the vault's roles, API clients,
an isolated key directory for tests that rotate or retire keys, and a helper running code in threads."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
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
