"""Commands on webhook endpoints."""

from __future__ import annotations

import secrets
import socket
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from fintech.db import advisory_xact_lock
from notifications.domain import (
    ENDPOINTS_PER_MERCHANT,
    WebhookDeliveryNotFound,
    WebhookEndpointLimit,
    WebhookEndpointNotFound,
    events_check,
    url_check,
)
from notifications.models import WebhookDelivery, WebhookEndpoint
from vault.services import sealed_register, secret_open, secret_seal

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix of every signing secret, not a secret


def _secret_context(endpoint_id: str | uuid.UUID) -> bytes:
    return f"notifications.webhook:{endpoint_id}:secret".encode()


def secrets_register() -> None:
    """Put the endpoints' sealed secrets under the vault's key rotation (rotate_keys, retire)."""
    sealed_register(model=WebhookEndpoint, pk_field="id", context=_secret_context)


def addresses(host: str) -> list[str]:
    """The IP addresses a host name resolves to now (none when it does not resolve)."""
    try:
        return sorted({info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)})
    except (OSError, UnicodeError):
        return []


@dataclass(frozen=True)
class CreatedEndpoint:
    endpoint: WebhookEndpoint
    secret: str  # shown to the merchant once, in the answer to the creation, and never again


def webhook_endpoint_create(*, merchant_id: str, url: str, events: list[str], actor: str) -> CreatedEndpoint:
    """Register a URL for the merchant's notifications of the chosen types, with a new signing secret.
    InvalidWebhookEndpoint for a URL or types it cannot have (see domain.url_check), WebhookEndpointLimit past
    ENDPOINTS_PER_MERCHANT endpoints."""
    url = url_check(url, production=settings.PRODUCTION, addresses=addresses)
    events = events_check(events)
    endpoint_id = uuid.uuid4()
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    sealed, kek_key_id = secret_seal(secret=secret.encode(), context=_secret_context(endpoint_id))
    with transaction.atomic():
        # Creations for one merchant queue here, so that two at once cannot both pass the limit.
        advisory_xact_lock(f"webhook-endpoints:{merchant_id}")
        live = WebhookEndpoint.objects.filter(merchant_id=merchant_id, deleted_at__isnull=True).count()
        if live >= ENDPOINTS_PER_MERCHANT:
            raise WebhookEndpointLimit(f"a merchant has at most {ENDPOINTS_PER_MERCHANT} webhook endpoints")
        endpoint = WebhookEndpoint.objects.create(
            id=endpoint_id,
            merchant_id=merchant_id,
            url=url,
            events=events,
            wrapped_key=sealed,
            kek_key_id=kek_key_id,
            created_by=actor,
        )
    return CreatedEndpoint(endpoint=endpoint, secret=secret)


def webhook_endpoint_delete(*, merchant_id: str, endpoint_id: uuid.UUID) -> None:
    """Stop sending the merchant's notifications to this endpoint. WebhookEndpointNotFound for an unknown one,
    another merchant's, or one deleted already."""
    deleted = WebhookEndpoint.objects.filter(id=endpoint_id, merchant_id=merchant_id, deleted_at__isnull=True).update(
        deleted_at=timezone.now()
    )
    if not deleted:
        raise WebhookEndpointNotFound(endpoint_id)


def webhook_endpoint_secret(*, endpoint: WebhookEndpoint) -> str:
    """The endpoint's signing secret, unsealed by the vault (for signing a delivery)."""
    return secret_open(sealed=endpoint.wrapped_key, context=_secret_context(endpoint.id)).decode()


def webhook_delivery_retry(*, merchant_id: str, delivery_id: uuid.UUID) -> WebhookDelivery:
    """Send one of the merchant's deliveries again now, whatever became of it. A failed one is attempted once more,
    and retried after that only while its notification is within WEBHOOK_RETRY_HOURS. WebhookDeliveryNotFound for
    an unknown one or another merchant's."""
    updated = WebhookDelivery.objects.filter(id=delivery_id, merchant_id=merchant_id).update(
        state=WebhookDelivery.PENDING, next_attempt_at=timezone.now(), leased_until=None, failed_at=None
    )
    if not updated:
        raise WebhookDeliveryNotFound(delivery_id)
    transaction.on_commit(sender_wake)
    return WebhookDelivery.objects.get(id=delivery_id)


def sender_wake() -> None:
    """Have a worker send what is due soon (after a commit that made deliveries due)."""
    from notifications.tasks import webhook_deliveries_send_task

    try:
        webhook_deliveries_send_task.delay()
    except Exception:  # noqa: BLE001 - the broker is down: beat's next run sends it
        return
