"""Sending webhook deliveries: claim what is due, POST it signed, record the answer.

A delivery is claimed with a lease (`leased_until`) in a statement of its own, sent outside any transaction (an
open transaction would hold the projections back for as long as a slow receiver takes), and its outcome recorded
in another statement. A worker killed mid-send leaves its lease to run out: the delivery is sent again, with the
same body and notification id, which is what receivers dedupe on (at least once).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import random
import time
import uuid
from dataclasses import dataclass

import requests
from django.conf import settings
from django.utils import timezone

from fintech.db import raw_cursor
from notifications import services
from notifications.domain import InvalidWebhookEndpoint, url_check
from notifications.models import WebhookEndpoint

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "Fintech-Signature"
BATCH = 50
# What a claim holds a delivery for: past the attempt's timeout, a worker that has not recorded it is taken for dead.
LEASE_MARGIN_SECONDS = 30


def signature(*, secret: str, timestamp: int, body: bytes) -> str:
    """The Fintech-Signature header's value: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, keyed by the
    endpoint's secret (the whole `whsec_...` string)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def retry_delay(attempts: int) -> float:
    """Seconds before the next attempt after `attempts` failed ones: doubling from WEBHOOK_RETRY_BASE_SECONDS up
    to WEBHOOK_RETRY_MAX_SECONDS, with jitter (between half and all of it), so that receivers coming back are not
    hit by every retry at once."""
    ceiling = min(settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0), settings.WEBHOOK_RETRY_MAX_SECONDS)
    return ceiling * random.uniform(0.5, 1.0)  # noqa: S311 - spreading retries, not a secret


@dataclass(frozen=True)
class Claimed:
    id: uuid.UUID
    endpoint_id: uuid.UUID
    notification_id: uuid.UUID
    body: str
    attempts: int
    created_at: dt.datetime
    leased_until: dt.datetime


# Due, not held by a live lease, and no earlier version of the same payment still pending for the endpoint: a
# payment's notifications reach an endpoint in version order.
_CLAIM = """
UPDATE notifications_webhook_delivery AS d SET leased_until = now() + make_interval(secs => %s)
WHERE d.id IN (
    SELECT c.id FROM notifications_webhook_delivery AS c
    WHERE c.state = 'pending' AND c.next_attempt_at <= now()
      AND (c.leased_until IS NULL OR c.leased_until < now())
      AND NOT EXISTS (
          SELECT 1 FROM notifications_webhook_delivery AS e
          WHERE e.endpoint_id = c.endpoint_id AND e.payment_id = c.payment_id
            AND e.payment_version < c.payment_version AND e.state = 'pending'
      )
    ORDER BY c.next_attempt_at, c.payment_version
    LIMIT %s
    FOR UPDATE SKIP LOCKED
)
RETURNING d.id, d.endpoint_id, d.notification_id, d.body, d.attempts, d.created_at, d.leased_until
"""


def _claim(limit: int) -> list[Claimed]:
    lease = settings.WEBHOOK_TIMEOUT_SECONDS + LEASE_MARGIN_SECONDS
    with raw_cursor() as cursor:
        cursor.execute(_CLAIM, [lease, limit])
        return [Claimed(*row) for row in cursor.fetchall()]


def _record(claimed: Claimed, *, status_code: int | None, error: str, give_up: bool = False) -> None:
    """The attempt's outcome, unless the lease was lost meanwhile (another worker has the delivery now)."""
    now = timezone.now()
    attempts = claimed.attempts + 1
    next_at = now + dt.timedelta(seconds=retry_delay(attempts))
    if status_code is not None and 200 <= status_code < 300:
        assignments, params = "state = 'delivered', delivered_at = %s", [now]
    elif give_up or next_at > claimed.created_at + dt.timedelta(hours=settings.WEBHOOK_RETRY_HOURS):
        assignments, params = "state = 'failed', failed_at = %s", [now]
    else:
        assignments, params = "next_attempt_at = %s", [next_at]
    with raw_cursor() as cursor:
        cursor.execute(
            f"UPDATE notifications_webhook_delivery SET {assignments}, attempts = %s, last_status_code = %s, "  # noqa: S608 - fixed fragments
            "last_error = %s, leased_until = NULL WHERE id = %s AND leased_until = %s AND state = 'pending'",
            [*params, attempts, status_code, error[:300], claimed.id, claimed.leased_until],
        )


def _send(claimed: Claimed, endpoint: WebhookEndpoint, secret: str) -> tuple[int | None, str]:
    """(the answer's status code or None, what went wrong, if anything)."""
    try:
        # Again at every attempt in production: the host may resolve elsewhere since it was registered.
        url_check(endpoint.url, production=settings.PRODUCTION, addresses=services.addresses)
    except InvalidWebhookEndpoint as refused:
        return None, f"refused: {refused}"
    body = claimed.body.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "fintech-webhooks/1",
        "Fintech-Notification-Id": str(claimed.notification_id),
        SIGNATURE_HEADER: signature(secret=secret, timestamp=int(time.time()), body=body),
    }
    try:
        # No redirects: a 3xx could send the notification somewhere the endpoint's checks never saw.
        # stream=True: the answer's body is never read (a receiver could send gigabytes); its status is all we keep.
        answer = requests.post(
            endpoint.url,
            data=body,
            headers=headers,
            timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
            allow_redirects=False,
            stream=True,
        )
    except requests.RequestException as failed:
        return None, type(failed).__name__
    answer.close()
    return answer.status_code, "" if 200 <= answer.status_code < 300 else f"HTTP {answer.status_code}"


def webhook_deliveries_send(*, max_batches: int = 20) -> int:
    """Send what is due, a batch at a time, until nothing is or `max_batches` batches were sent; returns how many
    deliveries were attempted."""
    attempted = 0
    for _ in range(max_batches):
        claimed = _claim(BATCH)
        if not claimed:
            break
        endpoints = WebhookEndpoint.objects.in_bulk({delivery.endpoint_id for delivery in claimed})
        # Unsealed once per endpoint and batch, kept in memory only for the batch.
        secrets: dict[uuid.UUID, str] = {}
        for delivery in claimed:
            endpoint = endpoints[delivery.endpoint_id]
            if endpoint.deleted_at is not None:
                _record(delivery, status_code=None, error="the endpoint was deleted", give_up=True)
                continue
            if endpoint.id not in secrets:
                secrets[endpoint.id] = services.webhook_endpoint_secret(endpoint=endpoint)
            status_code, error = _send(delivery, endpoint, secrets[endpoint.id])
            _record(delivery, status_code=status_code, error=error)
            if error:
                logger.info("webhook delivery %s: %s", delivery.id, error)
        attempted += len(claimed)
    return attempted
