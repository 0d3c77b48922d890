import uuid

from fintech import eventstore
from fintech.eventstore import RecordedEvent
from payments.services import payment_load


def payment_event_list(*, payment_id: uuid.UUID, merchant_id: str | None) -> list[RecordedEvent]:
    """The audit trail of one payment, straight from the event store, in version order."""
    payment_load(payment_id=payment_id, merchant_id=merchant_id)
    return eventstore.load(payment_id)
