"""The staff audit trail: who did what in the back office, from where (fintech.models.StaffAuditRecord).

A record is written on this thread's own autocommit connection (fintech.db.own_connection_execute), committed
before the caller goes on: a request that later rolls back (a refused transfer, a failed detokenisation, a
server error) keeps its record, as the vault's detokenisation audit does. Every text is cut to its column and
has anything that looks like a card number masked (a username typed at the login form may be one); a password
is never passed here.
"""

from __future__ import annotations

from fintech.client_address import staff_client_address
from fintech.db import own_connection_execute
from fintech.masking import audit_text

_INSERT = (
    "INSERT INTO fintech_staffaudit (occurred_at, user_id, username, action, object, detail, ip, user_agent) "
    "VALUES (now(), %s, %s, %s, %s, %s, %s, %s)"
)


def _text(value: object, limit: int) -> str:
    return audit_text(value or "", limit)


def _client_ip(request) -> str:
    # Behind ADMIN_NUM_PROXIES proxies of our own, the address they saw; never a client-written header.
    return _text(staff_client_address(request), 45) if request is not None else ""


def staff_audit_record(*, request, action: str, target: str = "", detail: str = "", user=None, username=None) -> None:
    """Record one staff action on `target` (its `object` column: a model label and primary key, or a path),
    committed at once whatever the caller's transaction does. `user` defaults to the request's; `username`
    names who tried when there is no user (a failed login)."""
    if user is None and request is not None:
        user = getattr(request, "user", None)
    authenticated = bool(getattr(user, "is_authenticated", False))
    own_connection_execute(
        _INSERT,
        [
            user.pk if authenticated else None,
            _text(user.get_username() if authenticated else username, 150),
            action,
            _text(target, 300),
            _text(detail, 500),
            _client_ip(request),
            _text(request.META.get("HTTP_USER_AGENT", "") if request is not None else "", 200),
        ],
    )


def login_recorded(sender, request, user, **kwargs) -> None:
    """user_logged_in: every login to the back office (sessions are the admin's; the API uses tokens)."""
    staff_audit_record(request=request, action="login", target=_path(request), user=user)


def login_failed_recorded(sender, credentials, request=None, **kwargs) -> None:
    """user_login_failed: the username tried, never the password (Django has already blanked the sensitive
    credentials; only the username is read here, masked if it looks like a card number)."""
    staff_audit_record(
        request=request,
        action="login_failed",
        target=_path(request),
        user=None,
        username=credentials.get("username", ""),
    )


def _path(request) -> str:
    return request.path if request is not None and getattr(request, "path", "") else ""
