"""API token authentication: `Authorization: Token <key>`, checked against the SHA-256 of the key.

A key is 40 random letters and digits (about 238 bits), so a plain hash is enough: there is nothing to guess
from it, and no salt or slow hash is needed. The token is found by the hash through a unique index, never by
comparing the key itself, so the time a lookup takes says nothing about how much of a guessed key was right.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import string

from django.db.models import Q
from django.utils import timezone
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from accounts.models import ApiToken

API_TOKEN_LENGTH = 40
API_TOKEN_PREFIX_LENGTH = 8
_ALPHABET = string.ascii_letters + string.digits
# last_used_at is a hint for whoever reviews tokens, not an audit trail: written at most this often per token.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


def api_token_key_new() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(API_TOKEN_LENGTH))


def api_token_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiTokenAuthentication(TokenAuthentication):
    """DRF's header parsing and 401 answers, over hashed, revocable, expiring tokens (accounts.ApiToken)."""

    keyword = "Token"

    def authenticate_credentials(self, key):
        now = timezone.now()
        token = ApiToken.objects.select_related("user").filter(key_hash=api_token_hash(key)).first()
        if token is None or not token.user.is_active:
            raise AuthenticationFailed("Invalid token.")
        if token.revoked_at is not None:
            raise AuthenticationFailed("This token was revoked.")
        if token.expires_at is not None and token.expires_at <= now:
            raise AuthenticationFailed("This token has expired.")
        if token.last_used_at is None or token.last_used_at < now - LAST_USED_RESOLUTION:
            ApiToken.objects.filter(
                Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION), pk=token.pk
            ).update(last_used_at=now)
        return token.user, token
