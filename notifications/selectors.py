"""Queries on webhook endpoints: a merchant sees only its own, and never a secret."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid

from django.db.models import Q

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


def _cursor_encode(delivery: WebhookDelivery) -> str:
    return base64.urlsafe_b64encode(json.dumps([delivery.created_at.isoformat(), str(delivery.id)]).encode()).decode()


def _cursor_decode(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    """ValueError for a cursor this API did not hand out."""
    try:
        created, delivery_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return dt.datetime.fromisoformat(created), uuid.UUID(delivery_id)
    except (TypeError, ValueError, binascii.Error) as bad:
        raise ValueError("not a cursor this API handed out") from bad


def webhook_delivery_list(
    *, merchant_id: str, endpoint_id: uuid.UUID, cursor: str | None, limit: int
) -> tuple[list[WebhookDelivery], str | None]:
    """A page of an endpoint's deliveries, newest first, and the next page's cursor. WebhookEndpointNotFound as
    webhook_endpoint_get; ValueError for a bad cursor."""
    endpoint = webhook_endpoint_get(merchant_id=merchant_id, endpoint_id=endpoint_id)
    rows = WebhookDelivery.objects.filter(endpoint=endpoint)
    if cursor:
        created, delivery_id = _cursor_decode(cursor)
        rows = rows.filter(Q(created_at__lt=created) | Q(created_at=created, id__lt=delivery_id))
    page = list(rows.order_by("-created_at", "-id")[: limit + 1])
    next_cursor = _cursor_encode(page[limit - 1]) if len(page) > limit else None
    return page[:limit], next_cursor
