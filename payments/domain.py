"""The payment aggregate: events, state machine and rules. Pure Python, no Django, no I/O.

A payment follows a card processor's life: initiated → authorized → captured (once, partially or in full,
never more than authorized) → partially_refunded → refunded (several refunds up to the captured amount);
cancel from initiated or authorized; failed when the acquirer declines the authorization. Every other
transition raises InvalidTransition. State changes only by applying the aggregate's own events.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

from fintech.events import DomainEvent, upcaster
from fintech.money import Money, minor_limit

AGGREGATE_TYPE = "payment"

INITIATED = "initiated"
AUTHORIZED = "authorized"
CAPTURED = "captured"
PARTIALLY_REFUNDED = "partially_refunded"
REFUNDED = "refunded"
CANCELLED = "cancelled"
FAILED = "failed"
STATUSES = (INITIATED, AUTHORIZED, CAPTURED, PARTIALLY_REFUNDED, REFUNDED, CANCELLED, FAILED)


# errors ---------------------------------------------------------------------------------------------------
class PaymentError(Exception):
    code = "payment_error"


class InvalidTransition(PaymentError):
    code = "invalid_transition"

    def __init__(self, action: str, status: str | None) -> None:
        super().__init__(f"cannot {action} a payment that is {status or 'not initiated'}")
        self.action = action
        self.status = status


class InvalidAmount(PaymentError):
    code = "invalid_amount"


class AmountTooLarge(InvalidAmount):
    code = "amount_too_large"


def check_amount_limit(amount: Money, *, max_major: int) -> None:
    """AmountTooLarge above `max_major` major units of the amount's currency (scaled by its exponent: 1,000 is
    1,000 JPY or 1,000.00 USD). Captures and refunds never exceed the initiated amount, so this bounds them too."""
    limit = minor_limit(amount.currency, max_major)
    if amount.minor > limit:
        raise AmountTooLarge(f"a payment is at most {Money(limit, amount.currency)}")


# events ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class PaymentEvent(DomainEvent):
    aggregate_type = AGGREGATE_TYPE


@dataclass(frozen=True, kw_only=True)
class PaymentMethod:
    """A card as payments see it: the vault token plus what may be shown (brand, last 4). Never the number."""

    token: str
    brand: str
    last4: str

    def to_json(self) -> dict[str, str]:
        # Its three strings by hand: dataclasses.asdict deep-copies each one (every payment's first event).
        return {"token": self.token, "brand": self.brand, "last4": self.last4}


@dataclass(frozen=True, kw_only=True)
class PaymentInitiated(PaymentEvent):
    event_version = 2

    payment_id: uuid.UUID
    merchant_id: str
    amount: Money
    payment_method: dict
    description: str
    initiated_by: str


@upcaster("PaymentInitiated", from_version=1)
def _payment_initiated_v1_to_v2(data: dict) -> dict:
    """v1 (the seed's shape) carried the payment method as a bare token and no description."""
    token = data.pop("payment_method")
    data["payment_method"] = {"token": token, "brand": "unknown", "last4": ""}
    data.setdefault("description", "")
    return data


@dataclass(frozen=True, kw_only=True)
class PaymentAuthorized(PaymentEvent):
    authorization_code: str
    card_network_response: dict
    authorized_amount: Money


@dataclass(frozen=True, kw_only=True)
class PaymentCaptured(PaymentEvent):
    captured_amount: Money
    settlement_date: dt.date


@dataclass(frozen=True, kw_only=True)
class PaymentRefunded(PaymentEvent):
    refund_id: uuid.UUID
    refunded_amount: Money
    reason: str


@dataclass(frozen=True, kw_only=True)
class PaymentCancelled(PaymentEvent):
    reason: str


@dataclass(frozen=True, kw_only=True)
class PaymentFailed(PaymentEvent):
    reason: str
    response_code: str
    card_network_response: dict


# aggregate ------------------------------------------------------------------------------------------------
@dataclass
class Payment:
    id: uuid.UUID
    version: int = 0
    status: str | None = None
    merchant_id: str = ""
    amount: Money | None = None
    payment_method: PaymentMethod | None = None
    description: str = ""
    initiated_by: str = ""
    authorization_code: str | None = None
    authorized_amount: Money | None = None
    captured_amount: Money | None = None
    refunded_amount: Money | None = None
    failure_code: str | None = None
    created_at: dt.datetime | None = None
    pending_events: list[PaymentEvent] = field(default_factory=list, repr=False)

    # rebuilding ---------------------------------------------------------------------------------------
    @classmethod
    def from_events(cls, payment_id: uuid.UUID, events: list[PaymentEvent]) -> Payment:
        payment = cls(id=payment_id)
        for event in events:
            payment._apply(event)
            payment.version += 1
        return payment

    @classmethod
    def status_history(cls, payment_id: uuid.UUID, events: list[PaymentEvent]) -> list[str | None]:
        """The payment's status after each of its events, in order (a timeline's)."""
        payment, statuses = cls(id=payment_id), []
        for event in events:
            payment._apply(event)
            statuses.append(payment.status)
        return statuses

    @property
    def refundable_amount(self) -> Money:
        return _held(self.captured_amount) - _held(self.refunded_amount)

    # commands -----------------------------------------------------------------------------------------
    @classmethod
    def initiate(
        cls,
        *,
        payment_id: uuid.UUID,
        merchant_id: str,
        amount: Money,
        payment_method: PaymentMethod,
        description: str,
        initiated_by: str,
        now: dt.datetime,
        max_amount: int | None = None,
    ) -> Payment:
        """A new payment; `max_amount` (major units, PAYMENTS_MAX_AMOUNT) bounds its amount."""
        if not amount.is_positive():
            raise InvalidAmount("a payment amount must be positive")
        if max_amount is not None:
            check_amount_limit(amount, max_major=max_amount)
        if not merchant_id:
            raise PaymentError("a payment needs a merchant")
        payment = cls(id=payment_id)
        payment._record(
            PaymentInitiated(
                occurred_at=now,
                payment_id=payment_id,
                merchant_id=merchant_id,
                amount=amount,
                payment_method=payment_method.to_json(),
                description=description,
                initiated_by=initiated_by,
            )
        )
        return payment

    def check_can_authorize(self) -> None:
        self._check_status("authorize", INITIATED)

    def authorize(self, *, authorization_code: str, card_network_response: dict, now: dt.datetime) -> None:
        self.check_can_authorize()
        self._record(
            PaymentAuthorized(
                occurred_at=now,
                authorization_code=authorization_code,
                card_network_response=card_network_response,
                authorized_amount=_held(self.amount),
            )
        )

    def fail(self, *, reason: str, response_code: str, card_network_response: dict, now: dt.datetime) -> None:
        """An authorization the acquirer declined."""
        self.check_can_authorize()
        self._record(
            PaymentFailed(
                occurred_at=now,
                reason=reason,
                response_code=response_code,
                card_network_response=card_network_response,
            )
        )

    def capture(self, *, amount: Money | None, settlement_date: dt.date, now: dt.datetime) -> None:
        self._check_status("capture", AUTHORIZED)
        authorized = _held(self.authorized_amount)
        amount = authorized if amount is None else amount
        self._check_same_currency(amount)
        if not amount.is_positive():
            raise InvalidAmount("a capture must be positive")
        if amount > authorized:
            raise InvalidAmount(f"cannot capture {amount}: only {authorized} is authorized")
        self._record(PaymentCaptured(occurred_at=now, captured_amount=amount, settlement_date=settlement_date))

    def refund(self, *, refund_id: uuid.UUID, amount: Money, reason: str, now: dt.datetime) -> None:
        self._check_status("refund", CAPTURED, PARTIALLY_REFUNDED)
        self._check_same_currency(amount)
        if not amount.is_positive():
            raise InvalidAmount("a refund must be positive")
        if amount > self.refundable_amount:
            raise InvalidAmount(f"cannot refund {amount}: only {self.refundable_amount} is left to refund")
        self._record(PaymentRefunded(occurred_at=now, refund_id=refund_id, refunded_amount=amount, reason=reason))

    def cancel(self, *, reason: str, now: dt.datetime) -> None:
        self._check_status("cancel", INITIATED, AUTHORIZED)
        self._record(PaymentCancelled(occurred_at=now, reason=reason))

    # guards -------------------------------------------------------------------------------------------
    def _check_status(self, action: str, *allowed: str) -> None:
        if self.status not in allowed:
            raise InvalidTransition(action, self.status)

    def _check_same_currency(self, amount: Money) -> None:
        currency = _held(self.amount).currency
        if amount.currency != currency:
            raise InvalidAmount(f"this payment is in {currency}, not {amount.currency}")

    # events -------------------------------------------------------------------------------------------
    def _record(self, event: PaymentEvent) -> None:
        self._apply(event)
        self.pending_events.append(event)

    def _apply(self, event: PaymentEvent) -> None:
        match event:
            case PaymentInitiated():
                self.status = INITIATED
                self.merchant_id = event.merchant_id
                self.amount = event.amount
                self.payment_method = PaymentMethod(**event.payment_method)
                self.description = event.description
                self.initiated_by = event.initiated_by
                self.created_at = event.occurred_at
                zero = Money.zero(event.amount.currency)
                self.authorized_amount = self.captured_amount = self.refunded_amount = zero
            case PaymentAuthorized():
                self.status = AUTHORIZED
                self.authorization_code = event.authorization_code
                self.authorized_amount = event.authorized_amount
            case PaymentFailed():
                self.status = FAILED
                self.failure_code = event.response_code
            case PaymentCaptured():
                self.status = CAPTURED
                self.captured_amount = event.captured_amount
            case PaymentRefunded():
                self.refunded_amount = _held(self.refunded_amount) + event.refunded_amount
                self.status = REFUNDED if self.refundable_amount.is_zero() else PARTIALLY_REFUNDED
            case PaymentCancelled():
                self.status = CANCELLED
            case _:
                raise TypeError(f"a payment does not apply {type(event).__name__}")


def _held(amount: Money | None) -> Money:
    """An amount of an initiated payment. Only a payment no event was applied to has none, and every command
    refuses it by its status before it gets here."""
    if amount is None:
        raise InvalidTransition("use", None)
    return amount
