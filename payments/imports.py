"""Historical payments loaded in bulk (`manage.py import_payments FILE.jsonl`): each line one payment with its
history, at its original times, for example from a previous processor.

A line is decided by the same aggregate as a live command (payments.domain: legal transitions in order, amounts
within what was authorized, captured and refunded, one currency, the amount limit), its card by the vault
(a token of the line's merchant, unexpired when the payment was initiated), and its times must never go back
nor lie in the future. A line that breaks a rule is rejected with its reason, and the others go on. Lines are
appended in chunks, each by one COPY into the event log in one transaction: the store's own trigger checks
every stream's versions as for any append, so a chunk lands whole or not at all (a payment created meanwhile
by someone else fails its chunk, reported line by line). The events then reach the projections and the ledger
like live ones (at the next catch-up run, every few seconds): they are new in the log, whatever their
`occurred_at`. A line holding anything like a card number is rejected whole, and never echoed.

A line:

    {"payment_id": "<uuid>", "merchant_id": "m-1", "amount": {"amount": 1200, "currency": "JPY"},
     "payment_method_token": "tok_…", "description": "…", "initiated_at": "2025-01-02T03:04:05Z",
     "history": [{"type": "authorized", "at": "…", "authorization_code": "A1"},
                 {"type": "captured", "at": "…", "amount": {…}},
                 {"type": "refunded", "at": "…", "amount": {…}, "reason": "…", "refund_id": "<uuid>"}]}

`type` is authorized, failed (reason, response_code), captured (amount: the authorized one when left out),
refunded (amount; refund_id made up when left out) or cancelled (reason). The payment id is required: a file
imported twice is refused line by line the second time, never duplicated.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from fintech import eventstore, partitions
from fintech.db import raw_cursor
from fintech.eventstore import StreamAppend
from fintech.masking import mask_pans
from fintech.money import Money, MoneyError
from payments.domain import AGGREGATE_TYPE, Payment, PaymentError, PaymentMethod
from payments.services import settlement_date_for
from vault.domain import is_expired
from vault.selectors import tokens_describe

CHUNK_LINES = 2_000
_FIELDS = {"payment_id", "merchant_id", "amount", "payment_method_token", "description", "initiated_at", "history"}


class LineRejected(Exception):
    """The line breaks a rule; the message says which."""


@dataclass(frozen=True)
class Rejected:
    line: int
    reason: str


@dataclass
class ImportReport:
    lines: int = 0
    payments: int = 0
    events: int = 0
    rejected: list[Rejected] = dataclasses.field(default_factory=list)


@dataclass(frozen=True)
class _Parsed:
    line: int
    payment_id: uuid.UUID
    merchant_id: str
    token: str
    initiated_at: dt.datetime
    data: dict


def payments_import(
    lines: Iterable[str],
    *,
    actor: str,
    source: str,
    chunk_lines: int = CHUNK_LINES,
    progress: Callable[[ImportReport], None] | None = None,
) -> ImportReport:
    """Import the payments of these JSONL lines (see the module's docstring); the report counts what landed and
    names each rejected line with its reason."""
    report = ImportReport()
    metadata = {"actor": actor, "imported_from": source[:200]}
    for chunk in _chunks(lines, chunk_lines, report):
        _chunk_import(chunk, metadata, report)
        if progress is not None:
            progress(report)
    return report


def _chunks(lines: Iterable[str], size: int, report: ImportReport) -> Iterator[list[_Parsed]]:
    chunk: list[_Parsed] = []
    for number, text in enumerate(lines, start=1):
        report.lines = number
        if not text.strip():
            continue
        try:
            chunk.append(_parse(number, text))
        except LineRejected as error:
            report.rejected.append(Rejected(number, str(error)))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _parse(number: int, text: str) -> _Parsed:
    # First, before any part of the line can be echoed in a reason: card numbers live in the vault only.
    if mask_pans(text) != text:
        raise LineRejected("it holds a card number: only vault tokens may be imported")
    try:
        data = json.loads(text)
    except ValueError:
        raise LineRejected("not a JSON object") from None
    if not isinstance(data, dict):
        raise LineRejected("not a JSON object")
    unknown = set(data) - _FIELDS
    if unknown:
        raise LineRejected(f"unknown fields: {', '.join(sorted(unknown))}")
    for name in ("payment_id", "merchant_id", "amount", "payment_method_token", "initiated_at"):
        if name not in data:
            raise LineRejected(f"{name} is required")
    merchant_id, token = data["merchant_id"], data["payment_method_token"]
    if not isinstance(merchant_id, str) or not isinstance(token, str):
        raise LineRejected("merchant_id and payment_method_token must be strings")
    payment_id, initiated_at = _uuid(data["payment_id"], "payment_id"), _time(data["initiated_at"])
    return _Parsed(number, payment_id, merchant_id, token, initiated_at, data)


def _chunk_import(chunk: list[_Parsed], metadata: dict, report: ImportReport) -> None:
    cards = tokens_describe(tokens=sorted({parsed.token for parsed in chunk}))
    existing = _existing_streams([parsed.payment_id for parsed in chunk])
    archived = eventstore.archived_months()
    now = timezone.now()
    decided: list[tuple[_Parsed, list]] = []
    seen: set[uuid.UUID] = set()
    for parsed in chunk:
        try:
            if parsed.payment_id in existing or parsed.payment_id in seen:
                raise LineRejected(f"payment {parsed.payment_id} exists already")
            events = _decide(parsed, cards, now)
            months = {partitions.month_start(event.occurred_at.astimezone(dt.UTC).date()) for event in events}
            if months & archived:
                raise LineRejected(f"its events fall in an archived month ({min(months & archived):%Y-%m})")
        except (LineRejected, PaymentError, MoneyError) as error:
            report.rejected.append(Rejected(parsed.line, str(error)))
            continue
        seen.add(parsed.payment_id)
        decided.append((parsed, events))
    if not decided:
        return
    try:
        with transaction.atomic():
            _partitions_for(decided)
            eventstore.append_copy(
                [StreamAppend(parsed.payment_id, events, 0, AGGREGATE_TYPE) for parsed, events in decided],
                metadata=metadata,
            )
    except DatabaseError as error:
        cause = str(error.__cause__ or error).splitlines()[0]
        report.rejected += [Rejected(parsed.line, f"its chunk was not written: {cause}") for parsed, _ in decided]
        return
    report.payments += len(decided)
    report.events += sum(len(events) for _, events in decided)


def _decide(parsed: _Parsed, cards: dict, now: dt.datetime) -> list:
    """The payment's events, decided by the aggregate from the line's history."""
    data, at = parsed.data, parsed.initiated_at
    if at > now:
        raise LineRejected("initiated_at is in the future")
    merchant_id, card = cards.get(parsed.token, (None, None))
    if card is None or merchant_id != parsed.merchant_id:
        raise LineRejected("the payment method token is unknown or another merchant's")
    if is_expired(card.exp_month, card.exp_year, today=at.astimezone(dt.UTC).date()):
        raise LineRejected("the card had expired when the payment was initiated")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise LineRejected("description must be a string")
    payment = Payment.initiate(
        payment_id=parsed.payment_id,
        merchant_id=parsed.merchant_id,
        amount=Money.from_json(data["amount"]),
        payment_method=PaymentMethod(token=card.token, brand=card.brand, last4=card.last4),
        description=description,
        initiated_by="import",
        now=at,
        max_amount=settings.PAYMENTS_MAX_AMOUNT,
    )
    history = data.get("history", [])
    if not isinstance(history, list):
        raise LineRejected("history must be a list")
    for step in history:
        if not isinstance(step, dict) or "type" not in step or "at" not in step:
            raise LineRejected("each history entry needs a type and an at")
        when = _time(step["at"])
        if when < at or when > now:
            raise LineRejected(f"{step['type']} at {step['at']}: times must not go back nor lie in the future")
        at = when
        _step(payment, step, when)
    return payment.pending_events


def _step(payment: Payment, step: dict, when: dt.datetime) -> None:
    kind = step["type"]
    if kind == "authorized":
        payment.authorize(
            authorization_code=_text(step, "authorization_code"),
            card_network_response=_object(step, "card_network_response"),
            now=when,
        )
    elif kind == "failed":
        payment.fail(
            reason=_text(step, "reason"),
            response_code=_text(step, "response_code"),
            card_network_response=_object(step, "card_network_response"),
            now=when,
        )
    elif kind == "captured":
        amount = Money.from_json(step["amount"]) if "amount" in step else None
        payment.capture(amount=amount, settlement_date=settlement_date_for(when), now=when)
    elif kind == "refunded":
        refund_id = _uuid(step["refund_id"], "refund_id") if "refund_id" in step else uuid.uuid4()
        if "amount" not in step:
            raise LineRejected("a refund needs its amount")
        amount = Money.from_json(step["amount"])
        payment.refund(refund_id=refund_id, amount=amount, reason=_text(step, "reason"), now=when)
    elif kind == "cancelled":
        payment.cancel(reason=_text(step, "reason"), now=when)
    else:
        raise LineRejected(f"unknown history type {kind!r}")


def _existing_streams(stream_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    with raw_cursor() as cursor:
        cursor.execute("SELECT stream_id FROM fintech_stream WHERE stream_id = ANY(%s)", [stream_ids])
        return {row[0] for row in cursor.fetchall()}


def _partitions_for(decided: list[tuple[_Parsed, list]]) -> None:
    # Old months get their own partition rather than fill the default one.
    months = {
        partitions.month_start(event.occurred_at.astimezone(dt.UTC).date()) for _, events in decided for event in events
    }
    existing = set(partitions.existing_partitions())
    for first in sorted(months):
        if partitions.partition_name(first) not in existing:
            partitions.partition_create(first=first)


def _uuid(value: object, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(value) if isinstance(value, str) else _bad(name)
    except ValueError:
        return _bad(name)


def _bad(name: str):
    raise LineRejected(f"{name} must be a UUID")


def _time(value: object) -> dt.datetime:
    if not isinstance(value, str):
        raise LineRejected("times must be ISO 8601 strings with a zone")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise LineRejected(f"{value!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise LineRejected(f"{value!r} has no time zone")
    return parsed


def _text(step: dict, name: str) -> str:
    value = step.get(name, "")
    if not isinstance(value, str):
        raise LineRejected(f"{name} must be a string")
    return value


def _object(step: dict, name: str) -> dict:
    value = step.get(name, {})
    if not isinstance(value, dict):
        raise LineRejected(f"{name} must be an object")
    return value
