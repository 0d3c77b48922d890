import uuid

from fintech import eventstore
from fintech.eventstore import RecordedEvent
from payments.domain import AGGREGATE_TYPE, Payment
from payments.services import payment_load


def payment_event_list(*, payment_id: uuid.UUID, merchant_id: str | None) -> list[RecordedEvent]:
    """The audit trail of one payment, straight from the event store, in version order."""
    payment_load(payment_id=payment_id, merchant_id=merchant_id)
    return eventstore.load(payment_id)


def payment_history(*, payment_id: uuid.UUID) -> list[tuple[RecordedEvent, str | None]]:
    """Every event of a payment, whoever its merchant (the staff console), with the status after it; empty for
    an id that is no payment."""
    events = [recorded for recorded in eventstore.load(payment_id) if recorded.aggregate_type == AGGREGATE_TYPE]
    statuses = Payment.status_history(payment_id, [recorded.event for recorded in events])
    return list(zip(events, statuses, strict=True))
