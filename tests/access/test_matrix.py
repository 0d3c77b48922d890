"""The access policy walked whole: every role against every API operation and every admin page, each cell
asserted against the tables of tests/access/matrix.py (which the README quotes).

One test per role and table: each builds a world of its own (merchant M with a card and payments in every
state, customer accounts with money and holds), sends one valid request per operation, and compares the whole
row, so a failure names every cell that moved."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import ApiToken
from accounts.services import api_token_issue
from console.models import Operation
from fintech.money import Money
from ledger import services as ledger
from ledger.domain import AccountKind
from ledger.models import Account, Transfer
from notifications import services as notifications
from notifications.models import WebhookDelivery
from notifications.projection import WEBHOOKS
from payments import services as payments
from projections.engine import projection_run
from projections.models import PaymentView
from projections.payments import PAYMENTS
from tests.access import matrix
from tests.payments.helpers import EXP_MONTH, EXP_YEAR, VISA, card_token
from tests.staff import staff_login
from vault.services import role_groups_ensure

pytestmark = pytest.mark.django_db(transaction=True)

ACTOR = "user:access-matrix"
JPY = "JPY"
ADMIN_INDEX = "/admin/"
TRANSFER_FORM = "/admin/ledger/account/transfer/"
CONSOLE_SEARCH = "/admin/console/payments/"
CONSOLE_PROJECTIONS = "/admin/console/projections/"
CONSOLE_RECONCILIATION = "/admin/console/reconciliation/"
WEBHOOK_URL = "https://hooks.example.org/access"


@dataclass
class World:
    merchant: str
    card: str
    payments: dict[str, uuid.UUID]
    merchant_account: Account
    funded: Account
    empty: Account
    holds: dict[str, uuid.UUID]
    webhook_endpoints: dict[str, uuid.UUID]


def _world() -> World:
    merchant = f"m-access-{uuid.uuid4().hex[:8]}"
    card = card_token(merchant)
    # Registered before the payments, so that their captures are notified to them.
    endpoints = {
        name: notifications.webhook_endpoint_create(
            merchant_id=merchant, url=WEBHOOK_URL, events=["payment.captured"], actor=ACTOR
        ).endpoint.id
        for name in ("read", "delete")
    }

    def payment(*steps: Callable) -> uuid.UUID:
        made = payments.payment_initiate(
            merchant_id=merchant, amount=Money(1_000, JPY), payment_method_token=card, actor=ACTOR
        )
        for step in steps:
            step(payment_id=made.id, actor=ACTOR)
        return made.id

    captured = (payments.payment_authorize, payments.payment_capture)
    made = {
        "read": payment(*captured),
        "authorize": payment(),
        "capture": payment(payments.payment_authorize),
        "refund": payment(*captured),
        "cancel": payment(),
    }
    merchant_account = ledger.account_open(
        owner_type="merchant", owner_id=merchant, currency=JPY, kind=AccountKind.MERCHANT_PAYABLE, actor=ACTOR
    )
    funded, empty = (
        ledger.account_open(
            owner_type="customer",
            owner_id=f"c-{merchant}-{name}",
            currency=JPY,
            kind=AccountKind.CUSTOMER_BALANCE,
            actor=ACTOR,
        )
        for name in ("funded", "empty")
    )
    ledger.account_deposit(account_id=funded.id, amount=Money(10_000, JPY), actor=ACTOR)
    holds = {
        name: ledger.hold_place(account_id=funded.id, amount=Money(100, JPY), actor=ACTOR).id
        for name in ("release", "settle")
    }
    _projected(made["read"])
    # The captured payments' notifications, as deliveries to those endpoints (see _projected for the loop).
    deadline = time.monotonic() + 60
    while not WebhookDelivery.objects.filter(merchant_id=merchant).exists():
        assert time.monotonic() < deadline, "the webhooks projection did not reach the world's payments"
        projection_run(name=WEBHOOKS, wait=True)
        time.sleep(0.2)
    return World(merchant, card, made, merchant_account, funded, empty, holds, endpoints)


def _projected(payment_id: uuid.UUID) -> None:
    """Run the payments projection until it has the payment. The projection reads only below the oldest
    transaction open anywhere on the server, so a long transaction elsewhere (another test database on the
    same server) can hold it back for a while."""
    deadline = time.monotonic() + 60
    while not PaymentView.objects.filter(payment_id=payment_id).exists():
        assert time.monotonic() < deadline, "the payments projection did not reach the world's payment"
        projection_run(name=PAYMENTS, wait=True)
        time.sleep(0.2)


def _user(role: str, world: World):
    """The role's user, None for anonymous."""
    role_groups_ensure()
    users = get_user_model().objects
    name = f"{role.replace(' ', '-').replace('+', '-')}-{uuid.uuid4().hex[:6]}"
    if role == "anonymous":
        return None
    if role == "merchant":
        api_token_issue(username=name, merchant_id=world.merchant)
        return users.get(username=name)
    if role == "other merchant":
        api_token_issue(username=name, merchant_id=f"m-other-{uuid.uuid4().hex[:8]}")
        return users.get(username=name)
    superuser = role.startswith("superuser")
    user = users.create_user(name, password="x-test-only", is_staff=True, is_superuser=superuser)
    group = {
        "support": "support",
        "finance": "finance",
        "cde": "cde",
        "auditor": "auditor",
        "superuser+finance": "finance",
    }.get(role)
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


def _api_client(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_issue(username=user.username)}")
    return client


def _api_row(client: APIClient, world: World) -> dict[str, int]:
    """One valid request per API operation; its status."""
    money = {"amount": 500, "currency": JPY}
    p = world.payments
    delivery = WebhookDelivery.objects.filter(endpoint_id=world.webhook_endpoints["read"]).first()
    requests = {
        "POST /payments": ("post", "/payments", {"amount": money, "payment_method": {"token": world.card}}),
        "GET /payments": ("get", "/payments", None),
        "GET /payments/{id}": ("get", f"/payments/{p['read']}", None),
        "POST /payments/{id}/authorize": ("post", f"/payments/{p['authorize']}/authorize", {}),
        "POST /payments/{id}/capture": ("post", f"/payments/{p['capture']}/capture", {}),
        "POST /payments/{id}/refunds": ("post", f"/payments/{p['refund']}/refunds", {"amount": money}),
        "POST /payments/{id}/cancel": ("post", f"/payments/{p['cancel']}/cancel", {}),
        "GET /payments/{id}/events": ("get", f"/payments/{p['read']}/events", None),
        "POST /vault/tokens": (
            "post",
            "/vault/tokens",
            {"card_number": VISA, "exp_month": EXP_MONTH, "exp_year": EXP_YEAR},
        ),
        "POST /vault/tokens/{token}/detokenize": ("post", f"/vault/tokens/{world.card}/detokenize", {"purpose": "m"}),
        "POST /accounts": (
            "post",
            "/accounts",
            {
                "owner_type": "customer",
                # 12 hex digits at most: a longer random run of digits may pass the Luhn check and be refused
                # as a card number (400), 1 time in 300 with the whole uuid.
                "owner_id": f"c-{uuid.uuid4().hex[:12]}",
                "currency": JPY,
                "kind": "customer_balance",
            },
        ),
        "POST /accounts/{id}/deposits": ("post", f"/accounts/{world.empty.id}/deposits", {"amount": money}),
        "POST /accounts/{id}/holds": ("post", f"/accounts/{world.funded.id}/holds", {"amount": money}),
        "POST /holds/{id}/release": ("post", f"/holds/{world.holds['release']}/release", {}),
        "POST /holds/{id}/settle": (
            "post",
            f"/holds/{world.holds['settle']}/settle",
            {"to_account": str(world.empty.id)},
        ),
        "POST /transfers": (
            "post",
            "/transfers",
            {"from_account": str(world.funded.id), "to_account": str(world.empty.id), "amount": money},
        ),
        "GET /accounts/{id}/balance (M's account)": ("get", f"/accounts/{world.merchant_account.id}/balance", None),
        "GET /accounts/{id}/entries (M's account)": ("get", f"/accounts/{world.merchant_account.id}/entries", None),
        "GET /accounts/{id}/balance (a customer's)": ("get", f"/accounts/{world.funded.id}/balance", None),
        "POST /webhook-endpoints": ("post", "/webhook-endpoints", {"url": WEBHOOK_URL, "events": ["payment.captured"]}),
        "GET /webhook-endpoints": ("get", "/webhook-endpoints", None),
        "GET /webhook-endpoints/{id}": ("get", f"/webhook-endpoints/{world.webhook_endpoints['read']}", None),
        "DELETE /webhook-endpoints/{id}": ("delete", f"/webhook-endpoints/{world.webhook_endpoints['delete']}", None),
        "GET /webhook-endpoints/{id}/deliveries": (
            "get",
            f"/webhook-endpoints/{world.webhook_endpoints['read']}/deliveries",
            None,
        ),
        "POST /webhook-deliveries/{id}/retry": ("post", f"/webhook-deliveries/{delivery.id}/retry", {}),
        "GET /notifications": ("get", "/notifications", None),
    }
    row = {}
    for name, (method, path, body) in requests.items():
        response = getattr(client, method)(f"/api/v1{path}", body, format="json")
        row[name] = response.status_code
    row["GET /api/schema/"] = client.get("/api/schema/").status_code
    return row


@pytest.mark.parametrize("role", matrix.API_ROLES)
def test_api_matrix_row_of_role(role):
    # given a world and the role's API client
    world = _world()
    client = _api_client(_user(role, world))
    # when it sends one valid request per operation, then each answer is the table's
    assert _api_row(client, world) == _row_of(matrix.API, role)


def _row_of(table: dict[str, dict[str, object]], role: str) -> dict[str, object]:
    return {name: row[role] for name, row in table.items()}


def _admin_client(user) -> Client:
    client = Client()
    if user is not None:
        staff_login(client, user)
    return client


def _outcome(response, done: bool):
    """ "ok" when the command was carried out; the login redirect or a refusal's status otherwise; "refused"
    when the page answered but did not do it."""
    if done:
        return "ok"
    if response.status_code == 302 and response["Location"].startswith("/admin/login/"):
        return 302
    return "refused" if response.status_code in (200, 302) else response.status_code


def _admin_pages(client: Client) -> dict[str, object]:
    row: dict[str, object] = {"admin index": client.get(ADMIN_INDEX).status_code}
    other_adds = set()
    for model in admin.site._registry:
        opts = model._meta
        row[opts.label_lower] = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")).status_code
        add = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add")).status_code
        if opts.label_lower in ("auth.user", "auth.group", "otp_totp.totpdevice"):
            row[f"{opts.label_lower} add"] = add
        else:
            other_adds.add(add)
    row["add page of every other model"] = other_adds.pop() if len(other_adds) == 1 else sorted(other_adds)
    return row


def _admin_commands(client: Client, world: World) -> dict[str, object]:
    row: dict[str, object] = {"transfer form (GET)": client.get(TRANSFER_FORM).status_code}
    transfer_id = uuid.uuid4()
    response = client.post(
        TRANSFER_FORM,
        {
            "from_account": world.funded.id,
            "to_account": world.empty.id,
            "amount": "5",
            "currency": JPY,
            "reference": "",
            "transfer_id": transfer_id,
        },
    )
    row["transfer form: move money (POST)"] = _outcome(response, Transfer.objects.filter(id=transfer_id).exists())
    response = client.post(
        reverse("admin:vault_card_changelist"),
        {"action": "detokenize_selected", "_selected_action": [world.card], "purpose": "matrix", "confirm": "1"},
    )
    shown = response.status_code == 200 and VISA in response.content.decode()
    row["card: detokenise action"] = _outcome(response, shown)
    api_token_issue(username=f"victim-{uuid.uuid4().hex[:6]}", merchant_id=world.merchant)
    token = ApiToken.objects.latest("id")
    response = client.post(
        reverse("admin:accounts_apitoken_changelist"), {"action": "revoke_selected", "_selected_action": [token.id]}
    )
    token.refresh_from_db()
    row["API token: revoke action"] = _outcome(response, token.revoked_at is not None)
    delivery = WebhookDelivery.objects.filter(merchant_id=world.merchant).first()
    WebhookDelivery.objects.filter(id=delivery.id).update(state=WebhookDelivery.FAILED)
    response = client.post(
        reverse("admin:notifications_webhookdelivery_changelist"),
        {"action": "retry", "_selected_action": [delivery.id]},
    )
    delivery.refresh_from_db()
    row["webhook delivery: send again action"] = _outcome(response, delivery.state == WebhookDelivery.PENDING)
    return {**row, **_console(client, world)}


def _started(client: Client, path: str, kind: str) -> object:
    """Whether a console operation was recorded; rolled back before the commit would send it to a worker."""
    with transaction.atomic():
        response = client.post(path)
        started = Operation.objects.filter(kind=kind).exists()
        transaction.set_rollback(True)
    return _outcome(response, started)


def _console(client: Client, world: World) -> dict[str, object]:
    payment_id = world.payments["read"]
    return {
        "console: payment search": client.get(CONSOLE_SEARCH, {"payment_id": payment_id}).status_code,
        "console: payment timeline": client.get(f"{CONSOLE_SEARCH}{payment_id}/").status_code,
        "console: projections page": client.get(CONSOLE_PROJECTIONS).status_code,
        "console: replay a projection (POST)": _started(client, f"{CONSOLE_PROJECTIONS}payments/replay/", "replay"),
        "console: rebuild a projection's cache (POST)": _started(
            client, f"{CONSOLE_PROJECTIONS}payments/rebuild_cache/", "rebuild_cache"
        ),
        "console: reconciliation page": client.get(CONSOLE_RECONCILIATION).status_code,
        "console: run a reconciliation (POST)": _started(client, f"{CONSOLE_RECONCILIATION}run/", "reconcile"),
    }


@pytest.mark.parametrize("role", matrix.ADMIN_ROLES)
def test_admin_matrix_row_of_role(role):
    # given a world and the role's admin session
    world = _world()
    client = _admin_client(_user(role, world))
    # when it opens every page and tries every command, then each outcome is the table's
    assert {**_admin_pages(client), **_admin_commands(client, world)} == _row_of(matrix.ADMIN, role)
