"""Commands of the shared kernel that are not the event store's."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from fintech.models import IdempotencyRecord


def idempotency_expired_before():
    """Idempotency records created before this are past IDEMPOTENCY_KEY_TTL_HOURS: never replayed, purged."""
    return timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)


def idempotency_records_purge(*, batch_size: int = 1000) -> int:
    """Delete the idempotency records older than IDEMPOTENCY_KEY_TTL_HOURS, a batch per transaction (no long
    lock, no huge WAL burst); returns how many were deleted. Their responses may show a card's BIN, last 4 and
    expiry: kept no longer than the retry window needs."""
    expired = idempotency_expired_before()
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(
                IdempotencyRecord.objects.filter(created_at__lt=expired)
                .order_by("created_at")
                .values_list("pk", flat=True)[:batch_size]
            )
            if ids:
                IdempotencyRecord.objects.filter(pk__in=ids).delete()
        deleted += len(ids)
        if len(ids) < batch_size:
            return deleted
