import uuid

from fintech import eventstore
from fintech.eventstore import RecordedEvent
from fintech.timestamps import iso_z
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


# The time of each step, as the read model keeps it: the event that sets it (a refund's is the latest refund).
_STEP_TIMES = {
    "PaymentAuthorized": "authorized_at",
    "PaymentCaptured": "captured_at",
    "PaymentRefunded": "refunded_at",
    "PaymentCancelled": "cancelled_at",
    "PaymentFailed": "failed_at",
}


def _money(money) -> dict | None:
    return None if money is None else money.to_json()


def payment_document_of(*, events: list[RecordedEvent]) -> dict:
    """A payment as GET /payments/{id} shows it once the read model has applied exactly these events (its first
    ones, in version order): what a notification of the last of them carries."""
    payment = Payment.from_events(events[0].stream_id, [recorded.event for recorded in events])
    times = dict.fromkeys(_STEP_TIMES.values())
    for recorded in events:
        if recorded.event_type in _STEP_TIMES:
            times[_STEP_TIMES[recorded.event_type]] = iso_z(recorded.occurred_at)
    zero = {"amount": 0, "currency": payment.amount.currency}
    return {
        "id": str(payment.id),
        "status": payment.status,
        "amount": _money(payment.amount),
        "version": payment.version,
        "merchant_id": payment.merchant_id,
        "description": payment.description,
        "payment_method": payment.payment_method.to_json(),
        "authorization_code": payment.authorization_code or None,
        "failure_code": payment.failure_code or None,
        "authorized_amount": _money(payment.authorized_amount) or zero,
        "captured_amount": _money(payment.captured_amount) or zero,
        "refunded_amount": _money(payment.refunded_amount) or zero,
        "created_at": iso_z(payment.created_at),
        **times,
    }
