"""The record of each authorization asked of the acquirer, and the recovery of those whose answer nobody
recorded.

An authorization runs under the payment's lock (see services): `attempt_begin` commits the attempt before the
acquirer is called, on a connection of its own, so neither a rollback nor a killed process can take it back;
`attempt_resolve` sets its outcome in the transaction that records the answer on the payment. An attempt still
open once the lock is free therefore had an answer nobody recorded. A retry of the authorization at the same
version reuses such an attempt's idempotency key, so the acquirer replays its answer instead of authorizing a
second time; `attempts_recover` settles the ones left over with the acquirer: an approval is voided (the card
holds no funds for a payment that is not authorized here), a decline or a request the acquirer never received
needs nothing more. Either way the payment stays as it was recorded, and may be authorized again.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from fintech.db import own_connection_execute, raw_cursor
from payments.gateway import AcquirerGateway, AcquirerUnavailable
from payments.models import AuthorizationAttempt as Attempt

logger = logging.getLogger(__name__)


def attempt_begin(*, payment_id: uuid.UUID, version: int, merchant_id: str, amount) -> str:
    """The idempotency key to send the acquirer for authorizing the payment at `version`: the open attempt's,
    if one is left, else a new attempt's, committed before this returns. Call under the payment's lock."""
    with raw_cursor() as cursor:
        cursor.execute(
            "SELECT number, outcome, idempotency_key FROM payments_authorizationattempt "
            "WHERE payment_id = %s AND payment_version = %s ORDER BY number DESC LIMIT 1",
            [payment_id, version],
        )
        last = cursor.fetchone()
    if last is not None and last[1] == Attempt.OPEN:
        return last[2]
    number = 1 if last is None else last[0] + 1
    key = f"{payment_id}:{version}:{number}"
    own_connection_execute(
        "INSERT INTO payments_authorizationattempt (payment_id, payment_version, number, idempotency_key, "
        "merchant_id, amount, currency, started_at, outcome, resolved_by) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, now(), '', '') ON CONFLICT (idempotency_key) DO NOTHING",
        [payment_id, version, number, key, merchant_id, amount.minor, amount.currency],
    )
    return key


def attempt_resolve(*, idempotency_key: str, outcome: str) -> None:
    """Set the attempt's outcome, in the caller's transaction: it commits with what the payment records."""
    with raw_cursor() as cursor:
        cursor.execute(
            "UPDATE payments_authorizationattempt SET outcome = %s, resolved_at = now(), resolved_by = %s "
            "WHERE idempotency_key = %s AND outcome = ''",
            [outcome, Attempt.BY_COMMAND, idempotency_key],
        )


@dataclass(frozen=True)
class Recovered:
    idempotency_key: str
    outcome: str


def attempts_recover(*, gateway: AcquirerGateway, older_than: dt.timedelta, limit: int = 500) -> list[Recovered]:
    """Settle with the acquirer every attempt open for longer than `older_than` whose payment nobody is
    authorizing right now. An attempt the acquirer cannot be asked about now stays open for the next run."""
    cutoff = timezone.now() - older_than
    candidates = list(
        Attempt.objects.filter(outcome=Attempt.OPEN, started_at__lte=cutoff)
        .order_by("started_at")
        .values_list("id", "payment_id")[:limit]
    )
    recovered = []
    for attempt_id, payment_id in candidates:
        try:
            outcome = _recover(gateway, attempt_id, payment_id)
        except AcquirerUnavailable:
            logger.warning("authorization attempt %s: the acquirer did not answer; left for the next run", attempt_id)
            continue
        if outcome is not None:
            recovered.append(outcome)
    return recovered


def _recover(gateway: AcquirerGateway, attempt_id: int, payment_id: uuid.UUID) -> Recovered | None:
    with transaction.atomic():
        with raw_cursor() as cursor:
            # Not waited for: a payment being authorized now holds it, and its attempt is not left over.
            cursor.execute("SELECT pg_try_advisory_xact_lock(hashtextextended(%s, 0))", [f"payment:{payment_id}"])
            if not cursor.fetchone()[0]:
                return None
        attempt = Attempt.objects.filter(id=attempt_id, outcome=Attempt.OPEN).first()
        if attempt is None:
            return None
        answer = gateway.query(attempt.idempotency_key)
        if answer is None:
            outcome = Attempt.NOT_RECEIVED
        elif answer.approved:
            gateway.void(attempt.idempotency_key)
            outcome = Attempt.VOIDED
            logger.warning(
                "voided an authorization nobody recorded: payment %s, attempt %s, authorization code %s",
                payment_id,
                attempt.idempotency_key,
                answer.authorization_code,
            )
        else:
            outcome = Attempt.DECLINED
        Attempt.objects.filter(id=attempt_id).update(
            outcome=outcome, resolved_at=timezone.now(), resolved_by=Attempt.BY_RECOVERY
        )
    return Recovered(idempotency_key=attempt.idempotency_key, outcome=outcome)
