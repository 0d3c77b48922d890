"""Webhook deliveries against a real HTTP receiver on loopback (issue 15): every payment event a merchant subscribed
to reaches its endpoint signed, once it answers 2xx, in version order; a receiver that fails gets it when it
recovers; a sender killed mid-send sends again; a merchant sees and retries only its own deliveries."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from accounts.services import api_token_issue
from fintech import eventstore
from fintech.money import Money
from notifications import services
from notifications.delivery import SIGNATURE_HEADER, webhook_deliveries_send
from notifications.inbox import inbox_key
from notifications.models import WebhookDelivery
from notifications.projection import WEBHOOKS
from payments import services as payments
from projections import cache
from projections.engine import projection_run
from tests.vault.helpers import api_client
from vault.services import card_tokenize

pytestmark = pytest.mark.django_db(transaction=True)

BASE_DIR = Path(__file__).resolve().parents[2]
ACTOR = "user:webhooks"


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A local HTTP server recording what it receives. `statuses` are answered in turn (then 200); while `hold`
    is set, a request waits for it to be cleared before answering."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    hold: threading.Event | None = None
    arrived: threading.Event = field(default_factory=threading.Event)

    def notifications(self) -> list[dict]:
        return [json.loads(request.body) for request in self.received]


@pytest.fixture
def receiver():
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the http.server API
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.received.append(Received(dict(self.headers), body))
            state.arrived.set()
            if state.hold is not None:
                state.hold.wait(30)
            status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}/hooks"
    yield state
    if state.hold is not None:
        state.hold.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def merchant():
    return f"m-hooks-{uuid.uuid4().hex[:8]}"


def _endpoint(merchant: str, url: str, events: list[str]):
    return services.webhook_endpoint_create(merchant_id=merchant, url=url, events=events, actor=ACTOR)


def _captured_payment(merchant: str) -> uuid.UUID:
    token = card_tokenize(card_number="4242424242424242", exp_month=12, exp_year=2040, merchant_id=merchant).token
    payment = payments.payment_initiate(
        merchant_id=merchant, amount=Money(5000, "JPY"), payment_method_token=token, actor=ACTOR
    )
    payments.payment_authorize(payment_id=payment.id, actor=ACTOR)
    payments.payment_capture(payment_id=payment.id, actor=ACTOR)
    return payment.id


def _verified(request: Received, secret: str) -> bool:
    """What the README tells a receiver to do: recompute the HMAC of "<t>.<body>" and compare, and refuse an old t."""
    fields = dict(part.split("=", 1) for part in request.headers[SIGNATURE_HEADER].split(","))
    expected = hmac.new(secret.encode(), f"{fields['t']}.".encode() + request.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"]) and abs(time.time() - int(fields["t"])) < 300


def _due_now(payment_id: uuid.UUID) -> None:
    """Time passes: every pending retry of the payment is due."""
    WebhookDelivery.objects.filter(payment_id=payment_id, state="pending").update(next_attempt_at=timezone.now())


def test_subscribed_events_arrive_signed_in_order_with_the_payment_as_get_shows_it(receiver, merchant):
    # given an endpoint for authorizations and captures, and a payment initiated, authorized and captured
    created = _endpoint(merchant, receiver.url, ["payment.authorized", "payment.captured"])
    payment_id = _captured_payment(merchant)
    # when the projection has run and the sender has sent what is due
    projection_run(name=WEBHOOKS)
    webhook_deliveries_send()
    # then the receiver got the two notifications, in version order, each signed with the endpoint's secret
    notifications = receiver.notifications()
    assert [n["type"] for n in notifications] == ["payment.authorized", "payment.captured"]
    assert [n["data"]["version"] for n in notifications] == [2, 3]
    assert all(_verified(request, created.secret) for request in receiver.received)
    assert not _verified(receiver.received[0], "whsec_another")
    # and each carries its event's id, which the header repeats
    events = {str(e.event_id) for e in eventstore.load(payment_id)}
    assert {n["id"] for n in notifications} <= events
    assert [r.headers["Fintech-Notification-Id"] for r in receiver.received] == [n["id"] for n in notifications]
    # and the last one's payment is what GET /payments/{id} answers once the read model has it
    projection_run(name="payments")
    client = api_client(api_token_issue(username=merchant, merchant_id=merchant))
    shown = client.get(f"/api/v1/payments/{payment_id}").json()
    shown.pop("freshness")
    assert notifications[-1]["data"] == shown
    assert notifications[0]["data"]["status"] == "authorized"
    # and both deliveries are done, once
    assert sorted(WebhookDelivery.objects.filter(payment_id=payment_id).values_list("state", "attempts")) == [
        ("delivered", 1),
        ("delivered", 1),
    ]
    # and running both again sends nothing more
    projection_run(name=WEBHOOKS)
    assert webhook_deliveries_send() == 0
    assert len(receiver.received) == 2


def test_a_receiver_failing_three_times_gets_everything_once_it_recovers_in_order(receiver, merchant):
    # given a receiver that answers 500 three times, then 200
    receiver.statuses = [500, 503, 500]
    _endpoint(merchant, receiver.url, ["payment.authorized", "payment.captured"])
    payment_id = _captured_payment(merchant)
    projection_run(name=WEBHOOKS)
    # when the sender tries, and tries again each time a retry is due
    webhook_deliveries_send()
    first = WebhookDelivery.objects.get(payment_id=payment_id, type="payment.authorized")
    # then a failed attempt is recorded with its answer and a later retry, and the capture waits behind it
    assert (first.state, first.attempts, first.last_status_code) == ("pending", 1, 500)
    assert first.next_attempt_at > timezone.now()
    assert [n["type"] for n in receiver.notifications()] == ["payment.authorized"]
    for _ in range(5):
        _due_now(payment_id)
        webhook_deliveries_send()
    # and once the receiver answers 2xx, both arrive: the authorization (fourth try) before the capture
    assert [n["type"] for n in receiver.notifications()] == ["payment.authorized"] * 4 + ["payment.captured"]
    delivered = dict(WebhookDelivery.objects.filter(payment_id=payment_id).values_list("type", "attempts"))
    assert delivered == {"payment.authorized": 4, "payment.captured": 1}
    assert set(WebhookDelivery.objects.filter(payment_id=payment_id).values_list("state", flat=True)) == {"delivered"}


def test_a_sender_killed_mid_send_sends_again_with_the_same_notification(receiver, merchant):
    # given a delivery due, and a receiver that holds the first request open
    _endpoint(merchant, receiver.url, ["payment.captured"])
    payment_id = _captured_payment(merchant)
    projection_run(name=WEBHOOKS)
    receiver.hold = threading.Event()
    # when a sender process claims it, posts it, and is SIGKILLed before it has the answer
    settings_dict = connection.settings_dict
    database_url = (
        f"postgresql://{settings_dict['USER']}@{settings_dict['HOST']}:{settings_dict['PORT']}/{settings_dict['NAME']}"
    )
    sender = subprocess.Popen(  # noqa: S603 - our own interpreter and manage.py
        [sys.executable, "manage.py", "webhook_deliveries_send"],
        cwd=BASE_DIR,
        env={**os.environ, "DATABASE_URL": database_url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert receiver.arrived.wait(60), "the sender never posted"
        os.killpg(sender.pid, signal.SIGKILL)
        sender.wait(10)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(sender.pid, signal.SIGKILL)
    receiver.hold.set()
    receiver.hold = None
    delivery = WebhookDelivery.objects.get(payment_id=payment_id)
    # then nothing was recorded: it is still pending, held by the dead sender's lease, and not sent meanwhile
    assert (delivery.state, delivery.attempts) == ("pending", 0)
    assert delivery.leased_until > timezone.now()
    assert webhook_deliveries_send() == 0
    # and once the lease has run out, the next sender sends the same notification again, and it is done
    WebhookDelivery.objects.filter(id=delivery.id).update(leased_until=timezone.now() - dt.timedelta(seconds=1))
    assert webhook_deliveries_send() == 1
    first, second = receiver.received
    assert first.body == second.body
    assert first.headers["Fintech-Notification-Id"] == second.headers["Fintech-Notification-Id"]
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == ("delivered", 1)


def test_unsubscribed_types_other_merchants_and_deleted_endpoints_get_nothing(receiver, merchant):
    # given an endpoint for refunds only, another merchant's endpoint for everything, and a deleted one
    _endpoint(merchant, receiver.url, ["payment.refunded"])
    other = f"m-other-{uuid.uuid4().hex[:8]}"
    theirs = _endpoint(other, receiver.url + "/other", ["payment.captured"])
    deleted = _endpoint(merchant, receiver.url + "/deleted", ["payment.captured"])
    services.webhook_endpoint_delete(merchant_id=merchant, endpoint_id=deleted.endpoint.id)
    # when this merchant's payment is captured
    _captured_payment(merchant)
    projection_run(name=WEBHOOKS)
    webhook_deliveries_send()
    # then nobody is told
    assert receiver.received == []
    assert not WebhookDelivery.objects.filter(endpoint_id__in=[theirs.endpoint.id, deleted.endpoint.id]).exists()


def test_deliveries_to_an_endpoint_deleted_meanwhile_stop(receiver, merchant):
    created = _endpoint(merchant, receiver.url, ["payment.captured"])
    payment_id = _captured_payment(merchant)
    projection_run(name=WEBHOOKS)
    services.webhook_endpoint_delete(merchant_id=merchant, endpoint_id=created.endpoint.id)
    webhook_deliveries_send()
    assert receiver.received == []
    assert WebhookDelivery.objects.get(payment_id=payment_id).state == "failed"


def test_a_delivery_failing_past_the_retry_window_is_failed(receiver, merchant, settings):
    # given a receiver that always fails, and a notification older than the retry window
    receiver.statuses = [500] * 10
    _endpoint(merchant, receiver.url, ["payment.captured"])
    payment_id = _captured_payment(merchant)
    projection_run(name=WEBHOOKS)
    WebhookDelivery.objects.filter(payment_id=payment_id).update(
        created_at=timezone.now() - dt.timedelta(hours=settings.WEBHOOK_RETRY_HOURS + 1)
    )
    # when the next attempt fails
    webhook_deliveries_send()
    # then it is failed, with its last answer, and tried no more
    delivery = WebhookDelivery.objects.get(payment_id=payment_id)
    assert (delivery.state, delivery.last_status_code, delivery.attempts) == ("failed", 500, 1)
    _due_now(payment_id)
    assert webhook_deliveries_send() == 0


def test_the_api_shows_and_retries_a_merchants_own_deliveries_only(receiver, merchant):
    # given a delivery that failed for good
    receiver.statuses = [500]
    created = _endpoint(merchant, receiver.url, ["payment.captured"])
    payment_id = _captured_payment(merchant)
    projection_run(name=WEBHOOKS)
    webhook_deliveries_send()
    WebhookDelivery.objects.filter(payment_id=payment_id).update(state="failed", failed_at=timezone.now())
    client = api_client(api_token_issue(username=merchant, merchant_id=merchant))
    other = api_client(api_token_issue(username=f"o-{merchant}", merchant_id=f"o-{merchant}"))
    deliveries_url = f"/api/v1/webhook-endpoints/{created.endpoint.id}/deliveries"
    # when the merchant lists the endpoint's deliveries
    page = client.get(deliveries_url).json()
    (shown,) = page["results"]
    assert page["next_cursor"] is None
    assert (shown["state"], shown["attempts"], shown["last_status_code"], shown["next_attempt_at"]) == (
        "failed",
        1,
        500,
        None,
    )
    assert shown["payment_id"] == str(payment_id)
    # then another merchant sees none of it, nor can retry it
    assert other.get(deliveries_url).status_code == 404
    assert other.post(f"/api/v1/webhook-deliveries/{shown['id']}/retry").status_code == 404
    assert client.post(f"/api/v1/webhook-deliveries/{uuid.uuid4()}/retry").status_code == 404
    assert client.post("/api/v1/webhook-deliveries/nope/retry").status_code == 404
    # and the merchant's retry makes it due now, and the next send delivers it
    retried = client.post(f"/api/v1/webhook-deliveries/{shown['id']}/retry")
    assert retried.status_code == 202
    assert retried.json()["state"] == "pending"
    webhook_deliveries_send()
    assert client.get(deliveries_url).json()["results"][0]["state"] == "delivered"
    assert len(receiver.received) == 2
    # and a cursor this API did not hand out is a 400, not a 5xx
    assert client.get(deliveries_url, {"cursor": "garbage"}).status_code == 400


def test_an_endpoint_is_told_only_of_events_recorded_after_it_was_registered(receiver, merchant):
    # given a payment captured before the merchant registered its endpoint, the projection not run yet
    earlier = _captured_payment(merchant)
    _endpoint(merchant, receiver.url, ["payment.captured"])
    later = _captured_payment(merchant)
    # when the projection catches up on both
    projection_run(name=WEBHOOKS)
    webhook_deliveries_send()
    # then only the later payment is notified: registering does not replay history
    assert [n["data"]["id"] for n in receiver.notifications()] == [str(later)]
    assert not WebhookDelivery.objects.filter(payment_id=earlier).exists()


def test_the_inbox_answers_a_merchants_latest_notifications_newest_first(merchant, settings):
    # given two payments of the merchant and one of another, projected (no endpoint needed)
    first, second = _captured_payment(merchant), _captured_payment(merchant)
    _captured_payment(f"m-other-{uuid.uuid4().hex[:8]}")
    projection_run(name=WEBHOOKS)
    client = api_client(api_token_issue(username=merchant, merchant_id=merchant))
    # when the merchant reads its notifications two at a time
    seen, cursor = [], None
    while True:
        page = client.get("/api/v1/notifications", {"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        seen += page["results"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    # then it gets its six notifications once each, newest first, and none of the other merchant's
    assert [(n["data"]["id"], n["data"]["version"]) for n in seen] == [
        (str(payment), version) for payment in (second, first) for version in (3, 2, 1)
    ]
    assert [n["type"] for n in seen[:3]] == ["payment.captured", "payment.authorized", "payment.initiated"]
    # and a notification past the retention is no longer answered, though the set still holds it
    settings.NOTIFICATION_INBOX_DAYS = 0
    assert client.get("/api/v1/notifications").json()["results"] == []
    # and a cursor that is not one is a 400
    assert client.get("/api/v1/notifications", {"cursor": "x"}).status_code == 400


def test_the_inbox_keeps_at_most_its_cap_and_expires(merchant, settings):
    settings.NOTIFICATION_INBOX_MAX = 4
    _captured_payment(merchant)
    _captured_payment(merchant)
    projection_run(name=WEBHOOKS)
    key = inbox_key(merchant)
    assert cache.client().zcard(key) == 4
    ttl = cache.client().ttl(key)
    assert 0 < ttl <= settings.NOTIFICATION_INBOX_DAYS * 86400


def test_the_inbox_is_repaired_after_redis_missed_it(merchant, monkeypatch):
    # given a batch whose inbox write Redis refused (the engine records it for repair)
    import redis as redis_module

    from notifications import projection

    def refused(entries):
        raise redis_module.ConnectionError("down")

    monkeypatch.setattr(projection, "inbox_add", refused)
    payment_id = _captured_payment(merchant)
    projection_run(name=WEBHOOKS)
    assert cache.client().zcard(inbox_key(merchant)) == 0
    # when Redis answers again and the projection's repair runs
    monkeypatch.undo()
    from projections.services import cache_repair

    cache_repair(name=WEBHOOKS)
    # then the inbox has the payment's notifications, built again from the log
    client = api_client(api_token_issue(username=merchant, merchant_id=merchant))
    shown = client.get("/api/v1/notifications").json()["results"]
    assert [(n["data"]["id"], n["data"]["version"]) for n in shown] == [(str(payment_id), v) for v in (3, 2, 1)]


def test_the_inbox_answers_503_while_redis_does_not(merchant, monkeypatch):
    import redis as redis_module

    from notifications import inbox

    def down(**kwargs):
        raise redis_module.ConnectionError("down")

    monkeypatch.setattr(inbox, "inbox_page", down)
    client = api_client(api_token_issue(username=merchant, merchant_id=merchant))
    response = client.get("/api/v1/notifications")
    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable"
