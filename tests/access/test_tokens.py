"""API tokens are secrets at rest: only a hash is stored, the key is shown once, and tokens expire and can be
revoked (service, command, admin). DRF's plaintext tokens are migrated to hashes and keep working."""

from __future__ import annotations

import datetime as dt
import importlib
import types
from io import StringIO

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.authentication import api_token_hash
from accounts.models import ApiToken
from accounts.services import api_token_issue, api_token_revoke
from tests.staff import staff_login

pytestmark = pytest.mark.django_db

PAYMENTS = "/api/v1/payments"
token_migration = importlib.import_module("accounts.migrations.0007_api_tokens")


def _get(key: str):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client.get(PAYMENTS)


def _issue(username: str = "tok-user", **options) -> tuple[str, ApiToken]:
    key = api_token_issue(username=username, merchant_id="m-tokens", **options)
    return key, ApiToken.objects.get(key_hash=api_token_hash(key))


def test_issue_stores_hash_and_prefix_never_the_key():
    # when a token is issued
    key, token = _issue()
    # then the key authenticates, and the table holds its SHA-256 and the first 8 characters only
    assert _get(key).status_code == 200
    assert token.key_hash == api_token_hash(key) != key
    assert token.prefix == key[:8]
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_apitoken")
        assert key not in repr(cursor.fetchall())


def test_issue_expires_after_the_configured_days(settings):
    settings.API_TOKEN_TTL_DAYS = 7
    _, token = _issue()
    assert abs(token.expires_at - (timezone.now() + dt.timedelta(days=7))) < dt.timedelta(minutes=1)
    settings.API_TOKEN_TTL_DAYS = None
    _, forever = _issue("tok-forever")
    assert forever.expires_at is None


def test_expired_token_is_401():
    key, token = _issue()
    # when its lifetime has passed
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    # then it no longer authenticates
    response = _get(key)
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize("key", ["", "x", "a" * 40, "a" * 4000, "tok\u00e9n"])
def test_unknown_or_malformed_key_is_401(key):
    _issue()
    assert _get(key).status_code == 401


def test_revoke_service_makes_the_token_401_and_leaves_others():
    key, token = _issue()
    other, _ = _issue()
    assert api_token_revoke(token_ids=[token.id]) == 1
    assert _get(key).status_code == 401
    assert _get(other).status_code == 200
    # and revoking again changes nothing
    assert api_token_revoke(token_ids=[token.id]) == 0


def test_revoke_command_by_prefix_or_username():
    first, token = _issue("tok-alice")
    second, _ = _issue("tok-alice")
    third, _ = _issue("tok-bob")
    # when revoking by prefix, then only that token goes
    out = StringIO()
    call_command("revoke_api_token", token.prefix, stdout=out)
    assert out.getvalue().splitlines()[-1] == "1 token(s) revoked"
    assert [_get(key).status_code for key in (first, second, third)] == [401, 200, 200]
    # when revoking by username, then every token of the user goes
    call_command("revoke_api_token", "tok-alice", stdout=StringIO())
    assert [_get(key).status_code for key in (first, second, third)] == [401, 401, 200]
    # and an unknown prefix or user is an error
    with pytest.raises(CommandError, match="no API token"):
        call_command("revoke_api_token", "nobody", stdout=StringIO())


def test_issue_command_ttl_days_sets_expiry():
    out = StringIO()
    call_command("issue_api_token", "tok-carol", "--ttl-days", "2", stdout=out)
    key = out.getvalue().splitlines()[-1]
    token = ApiToken.objects.get(key_hash=api_token_hash(key))
    assert dt.timedelta(days=1, hours=23) < token.expires_at - timezone.now() <= dt.timedelta(days=2)
    with pytest.raises(CommandError, match="positive"):
        call_command("issue_api_token", "tok-carol", "--ttl-days", "0", stdout=StringIO())


def test_last_used_is_recorded():
    key, token = _issue()
    assert token.last_used_at is None
    _get(key)
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_admin_lists_tokens_by_prefix_without_hash_and_revokes_them():
    key, token = _issue()
    admin = get_user_model().objects.create_superuser("tok-root", password="x-test-only")
    client = Client()
    staff_login(client, admin)
    # when the superuser lists the tokens and opens one
    listing = client.get("/admin/accounts/apitoken/").content.decode()
    detail = client.get(f"/admin/accounts/apitoken/{token.pk}/change/").content.decode()
    # then the prefix names it, and neither the key nor its hash is shown
    assert token.prefix in listing
    for page in (listing, detail):
        assert key not in page
        assert token.key_hash not in page
    # when it revokes the token through the action, then the token is refused
    client.post("/admin/accounts/apitoken/", {"action": "revoke_selected", "_selected_action": [token.pk]})
    assert _get(key).status_code == 401


def test_migration_hashes_drf_plaintext_tokens_and_drops_their_table(settings):
    # given DRF's authtoken table as an older release left it, with one plaintext key
    settings.API_TOKEN_TTL_DAYS = 30
    user = get_user_model().objects.create_user("tok-legacy")
    legacy_key = "0123456789abcdef0123456789abcdef01234567"
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, created timestamptz NOT NULL, "
            "user_id integer NOT NULL UNIQUE REFERENCES auth_user (id))"
        )
        cursor.execute("INSERT INTO authtoken_token VALUES (%s, now(), %s)", [legacy_key, user.pk])
    # when the migration runs
    token_migration.legacy_tokens_hash(apps, types.SimpleNamespace(connection=connection))
    # then the key is kept as a hash only, the plaintext table is gone, and the old key still authenticates
    token = ApiToken.objects.get(user=user)
    assert (token.key_hash, token.prefix) == (api_token_hash(legacy_key), legacy_key[:8])
    assert dt.timedelta(days=29) < token.expires_at - timezone.now() <= dt.timedelta(days=30)
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('authtoken_token')")
        assert cursor.fetchone()[0] is None
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {legacy_key}")
    assert client.get(PAYMENTS).status_code == 403  # authenticated; acts for no merchant


def test_migration_without_drf_table_does_nothing():
    token_migration.legacy_tokens_hash(apps, types.SimpleNamespace(connection=connection))
    assert not ApiToken.objects.exists()
