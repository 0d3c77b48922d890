"""Queries on webhook endpoints: a merchant sees only its own, and never a secret."""

from __future__ import annotations

import uuid

from notifications.domain import WebhookEndpointNotFound
from notifications.models import WebhookEndpoint


def webhook_endpoint_list(*, merchant_id: str) -> list[WebhookEndpoint]:
    """The merchant's endpoints, oldest first (at most ENDPOINTS_PER_MERCHANT)."""
    return list(
        WebhookEndpoint.objects.filter(merchant_id=merchant_id, deleted_at__isnull=True).order_by("created_at", "id")
    )


def webhook_endpoint_get(*, merchant_id: str, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    """WebhookEndpointNotFound for an unknown endpoint, another merchant's, or a deleted one."""
    endpoint = WebhookEndpoint.objects.filter(id=endpoint_id, merchant_id=merchant_id, deleted_at__isnull=True).first()
    if endpoint is None:
        raise WebhookEndpointNotFound(endpoint_id)
    return endpoint
