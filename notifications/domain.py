"""Webhook endpoints: which notifications exist, and which URLs may receive them. Pure Python."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

# A payment event's notification type, as receivers see it.
NOTIFICATION_TYPES = {
    "PaymentInitiated": "payment.initiated",
    "PaymentAuthorized": "payment.authorized",
    "PaymentCaptured": "payment.captured",
    "PaymentRefunded": "payment.refunded",
    "PaymentCancelled": "payment.cancelled",
    "PaymentFailed": "payment.failed",
}
TYPES = tuple(NOTIFICATION_TYPES.values())
URL_MAX_LENGTH = 2048
# The shape of a URL the API takes (the rules below say which of those may receive notifications): http(s), an
# ASCII host name or IPv4 address, a port from 1 to 65535, then a path and query of printable ASCII without a
# fragment (anything else percent-encoded).
URL_PATTERN = (
    r"^https?://[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?"
    r"(?::(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?"
    r"(?:[/?][!-\"$-~]*)?$"
)
# A merchant's endpoints each get every notification they subscribe to: a bound on the fan-out of one event.
ENDPOINTS_PER_MERCHANT = 16


class InvalidWebhookEndpoint(Exception):
    """A URL or a list of notification types an endpoint cannot have; the message says which rule, never more."""


class WebhookEndpointNotFound(Exception):
    """No such endpoint for this merchant (unknown, another merchant's, or deleted)."""


class InboxUnavailable(Exception):
    """Redis, the inbox's only store, does not answer."""


class WebhookDeliveryNotFound(Exception):
    """No such delivery for this merchant."""


class WebhookEndpointLimit(Exception):
    """The merchant has ENDPOINTS_PER_MERCHANT endpoints already."""


def events_check(events: Iterable[str]) -> list[str]:
    """The notification types, each once, in the order given; at least one, each a known one."""
    chosen = list(dict.fromkeys(events))
    if not chosen:
        raise InvalidWebhookEndpoint("choose at least one notification type")
    unknown = [name for name in chosen if name not in TYPES]
    if unknown:
        raise InvalidWebhookEndpoint(f"unknown notification type; known types are {', '.join(TYPES)}")
    return chosen


def url_check(url: str, *, production: bool, addresses: Callable[[str], list[str]]) -> str:
    """The endpoint URL as given, if it may receive notifications. In production only https, and only a host whose
    every address is public (`addresses(host)` resolves it): never loopback, private, link-local or reserved
    ones, where a webhook would reach into our own network. Development and tests allow http and local hosts."""
    if len(url) > URL_MAX_LENGTH:
        raise InvalidWebhookEndpoint(f"a URL of at most {URL_MAX_LENGTH} characters")
    if any(not "!" <= character <= "~" for character in url):
        raise InvalidWebhookEndpoint("a URL of printable ASCII characters (percent-encode the others)")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidWebhookEndpoint("not a URL") from None
    allowed = ("https",) if production else ("https", "http")
    if parts.scheme not in allowed:
        raise InvalidWebhookEndpoint(f"the URL must start with {' or '.join(s + '://' for s in allowed)}")
    if not parts.hostname:
        raise InvalidWebhookEndpoint("the URL needs a host")
    if parts.username is not None or parts.password is not None:
        raise InvalidWebhookEndpoint("no credentials in the URL: verify our signature instead")
    if parts.fragment:
        raise InvalidWebhookEndpoint("no fragment (#...) in the URL")
    if port == 0:
        raise InvalidWebhookEndpoint("not a port a server listens on")
    if production:
        resolved = addresses(parts.hostname)
        if not resolved:
            raise InvalidWebhookEndpoint("the URL's host does not resolve")
        if not all(address_public(address) for address in resolved):
            raise InvalidWebhookEndpoint("the URL's host is not a public address")
    return url


def address_public(address: str) -> bool:
    """Whether an IP address is one a webhook may be sent to in production (a global unicast address)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast
