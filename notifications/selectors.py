"""Queries on webhook endpoints: a merchant sees only its own, and never a secret."""

from __future__ import annotations

import uuid

from django.db.models import Q

from fintech.cursors import cursor_decode, cursor_encode
from notifications.domain import WebhookEndpointNotFound
from notifications.models import WebhookDelivery, WebhookEndpoint


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


def webhook_delivery_list(
    *, merchant_id: str, endpoint_id: uuid.UUID, cursor: str | None, limit: int
) -> tuple[list[WebhookDelivery], str | None]:
    """A page of an endpoint's deliveries, newest first, and the next page's cursor. WebhookEndpointNotFound as
    webhook_endpoint_get; ValueError for a bad cursor."""
    endpoint = webhook_endpoint_get(merchant_id=merchant_id, endpoint_id=endpoint_id)
    rows = WebhookDelivery.objects.filter(endpoint=endpoint)
    if cursor:
        created, delivery_id = cursor_decode(cursor)
        rows = rows.filter(Q(created_at__lt=created) | Q(created_at=created, id__lt=delivery_id))
    page = list(rows.order_by("-created_at", "-id")[: limit + 1])
    next_cursor = cursor_encode(page[limit - 1].created_at, page[limit - 1].id) if len(page) > limit else None
    return page[:limit], next_cursor
