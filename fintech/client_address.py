"""Where a staff request comes from: the address the lockout counts failures by (django-axes) and the staff
audit trail records.

Without proxies of our own (ADMIN_NUM_PROXIES = 0, `make run`) it is REMOTE_ADDR, and X-Forwarded-For, which
anyone can write, is ignored. Behind N proxies of our own, each appending the address it received from to
X-Forwarded-For, the client is the Nth entry from the right: entries further left were written by the client
and prove nothing. The same rule as DRF's NUM_PROXIES for the API (API_NUM_PROXIES)."""

from __future__ import annotations

import ipaddress

from django.conf import settings


def _address(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


def staff_client_address(request) -> str:
    """The client's address as our proxies saw it, or REMOTE_ADDR; "" when neither is an address."""
    remote = _address(request.META.get("REMOTE_ADDR", "")) or ""
    proxies = settings.ADMIN_NUM_PROXIES
    if proxies <= 0:
        return remote
    forwarded = [entry for entry in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if entry.strip()]
    if len(forwarded) < proxies:
        # Fewer entries than our proxies write: the request did not come through all of them.
        return remote
    return _address(forwarded[-proxies]) or remote
