"""The `webhooks` projection: each payment event becomes a notification. It is delivered to every live endpoint of
its merchant that subscribed to its type: a delivery row written in the projection's transaction (so exactly
once, whatever Celery redelivers), sent after the commit. And it goes in the merchant's inbox in Redis
(notifications.inbox) after the commit too, repaired like a cache when Redis was down."""

from __future__ import annotations

import json
import uuid

from fintech import eventstore
from fintech.eventstore import RecordedEvent
from fintech.timestamps import iso_z
from notifications import services
from notifications.domain import NOTIFICATION_TYPES
from notifications.inbox import inbox_add
from payments.selectors import payment_document_of
from projections.engine import Projection, projection_register

WEBHOOKS = "webhooks"


def notification_body(*, recorded: RecordedEvent, document: dict) -> str:
    """The JSON a receiver gets for one event: its id (the event's), type, time and the payment at that version."""
    notification = {
        "id": str(recorded.event_id),
        "type": NOTIFICATION_TYPES[recorded.event_type],
        "created_at": iso_z(recorded.occurred_at),
        "data": document,
    }
    return json.dumps(notification, separators=(",", ":"), sort_keys=True)


# Notifications built by the handlers of the batch being applied, by "<payment id>:<version>", for the refresh
# after its commit to put in the inbox (this process runs one batch at a time).
_built: dict[str, tuple[str, int, str]] = {}


def _notification(recorded: RecordedEvent, stream: list[RecordedEvent]) -> tuple[str, str]:
    """(merchant, notification JSON) of a payment event, given its stream's events: the payment as it stood at that
    event."""
    events = [event for event in stream if event.version <= recorded.version]
    return events[0].event.merchant_id, notification_body(
        recorded=recorded, document=payment_document_of(events=events)
    )


def _notify(cursor, tables, recorded: RecordedEvent):
    merchant_id, body = _notification(recorded, eventstore.load(recorded.stream_id))
    key = f"{recorded.stream_id}:{recorded.version}"
    _built[key] = (merchant_id, recorded.checkpoint.position, body)
    # Only endpoints registered before the event was recorded: one registered today is told of today's payments,
    # not of the history the projection may still be catching up on.
    cursor.execute(
        "SELECT id FROM notifications_webhook_endpoint "
        "WHERE merchant_id = %s AND deleted_at IS NULL AND events @> %s::jsonb AND created_at <= %s",
        [merchant_id, json.dumps([NOTIFICATION_TYPES[recorded.event_type]]), recorded.created_at],
    )
    for (endpoint_id,) in cursor.fetchall():
        cursor.execute(
            "INSERT INTO notifications_webhook_delivery (id, endpoint_id, merchant_id, notification_id, type, "
            "payment_id, payment_version, body, state, attempts, next_attempt_at, last_error, created_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'pending', 0, now(), '', now()) "
            "ON CONFLICT (notification_id, endpoint_id) DO NOTHING",
            [
                uuid.uuid4(),
                endpoint_id,
                merchant_id,
                recorded.event_id,
                NOTIFICATION_TYPES[recorded.event_type],
                recorded.stream_id,
                recorded.version,
                body,
            ],
        )
    return [key]


def _rebuilt(key: str) -> tuple[str, int, str] | None:
    """A notification again from the log (a repair after Redis was down: the batch's own are gone by then)."""
    stream_id, version = key.rsplit(":", 1)
    stream = eventstore.load(uuid.UUID(stream_id))
    for recorded in stream:
        if recorded.version == int(version):
            merchant_id, body = _notification(recorded, stream)
            return merchant_id, recorded.checkpoint.position, body
    return None


def _after_commit(keys: set[str]) -> None:
    """Wake the sender for the deliveries just committed, and put the notifications in their merchants' inboxes
    (raising when Redis does not answer: the engine records them, and its repair calls this again)."""
    services.sender_wake()
    entries: dict[str, list[tuple[int, str]]] = {}
    try:
        for key in keys:
            built = _built.get(key) or _rebuilt(key)
            if built is not None:
                merchant_id, position, body = built
                entries.setdefault(merchant_id, []).append((position, body))
    finally:
        _built.clear()
    inbox_add(entries)


projection_register(
    Projection(
        name=WEBHOOKS,
        tables=(),
        handlers=dict.fromkeys(NOTIFICATION_TYPES, _notify),
        refresh=_after_commit,
        # A replay would send old notifications to endpoints registered since: deliveries are records, not a
        # read model.
        replayable=False,
    )
)
