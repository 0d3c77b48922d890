"""Webhook deliveries per second to a local receiver, beside a raw loop posting the same signed bodies.

Each round: `payments` captured payments of one merchant whose endpoint takes every notification type (three
deliveries each), projected untimed; then the sender (notifications.delivery) is timed until every delivery is
done: claim with a lease, unseal the secret, sign, POST, record. The raw loop signs and POSTs the same bodies to
the same receiver with requests, one connection per POST as the sender does, and records nothing. The receiver
is a process of its own (tests.bench.receiver) answering 204.

Call only after django.setup() on the bench database.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable

import requests

from tests.bench.projections import _median


def _receiver() -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "tests.bench.receiver"], stdout=subprocess.PIPE, text=True
    )
    port = int(process.stdout.readline())
    return process, f"http://127.0.0.1:{port}/hooks"


def _payments(merchant_id: str, token: str, count: int) -> list:
    """`count` captured payments of the merchant; their ids."""
    from fintech.money import Money
    from payments import services as payments

    made = []
    for _ in range(count):
        payment = payments.payment_initiate(
            merchant_id=merchant_id, amount=Money(5000, "JPY"), payment_method_token=token, actor="bench"
        )
        payments.payment_authorize(payment_id=payment.id, actor="bench")
        payments.payment_capture(payment_id=payment.id, actor="bench")
        made.append(payment.id)
    return made


def _raw(url: str, secret: str, bodies: list[str]) -> float:
    from notifications.delivery import SIGNATURE_HEADER, signature

    started = time.perf_counter()
    for body in bodies:
        data = body.encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(secret=secret, timestamp=int(time.time()), body=data),
        }
        answer = requests.post(url, data=data, headers=headers, timeout=10, allow_redirects=False, stream=True)
        answer.close()
        if answer.status_code >= 300:
            raise RuntimeError(f"the receiver answered {answer.status_code}")
    return len(bodies) / (time.perf_counter() - started)


def run(*, payments: int, rounds: int, out: Callable[[str], None]) -> None:
    from notifications import services
    from notifications.delivery import webhook_deliveries_send
    from notifications.domain import TYPES
    from notifications.models import WebhookDelivery
    from notifications.projection import WEBHOOKS
    from projections.engine import projection_run
    from vault.services import card_tokenize

    process, url = _receiver()
    try:
        sent, raws = [], []
        for _ in range(rounds):
            merchant_id = f"m-hooks-{uuid.uuid4().hex[:8]}"
            created = services.webhook_endpoint_create(
                merchant_id=merchant_id, url=url, events=list(TYPES), actor="bench"
            )
            token = card_tokenize(card_number="4242424242424242", exp_month=12, exp_year=2040, merchant_id=merchant_id)
            _payments(merchant_id, token.token, payments)
            projection_run(name=WEBHOOKS, wait=True)
            deliveries = WebhookDelivery.objects.filter(endpoint=created.endpoint)
            total = deliveries.count()
            if total != 3 * payments:
                raise RuntimeError(f"{total} deliveries for {payments} payments")
            started = time.perf_counter()
            while webhook_deliveries_send():
                pass
            seconds = time.perf_counter() - started
            if deliveries.exclude(state=WebhookDelivery.DELIVERED).exists():
                raise RuntimeError("deliveries left undelivered")
            sent.append(total / seconds)
            raws.append(_raw(url, created.secret, list(deliveries.values_list("body", flat=True))))
    finally:
        process.terminate()
        process.wait(10)
    rate, raw = _median(sent), _median(raws)
    out("")
    out(f"webhooks, 1 process: {3 * payments:,} deliveries ({payments:,} payments x 3 types), {rounds} rounds (median)")
    out(f"{'':<12}{'deliveries/s':>22}{'raw signed POSTs/s':>22}{'ratio':>10}")
    out(
        f"{'send':<12}{rate:>22,.0f}{raw:>22,.0f}{rate / raw:>10.4f}   (raw: the same bodies, signed, posted in a loop)"
    )
