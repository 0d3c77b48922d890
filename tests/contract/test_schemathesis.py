"""The published OpenAPI schema is the contract: schemathesis generates requests from it against a live server,
as a merchant, a finance and a cde user, and checks that no input is a server error, that every status, content
type and body is the documented one, and that schema-valid requests are accepted.

Schema-valid requests may still be refused for reasons a JSON schema cannot say (state, other fields, the
world): those statuses are listed per operation in schemathesis.toml, each with its reason. A refusal by field
validation (`validation_error`, `parse_error`) is never one of them: schema-valid data that fails validation
means the schema lies (check `schema_valid_input_passes_validation`).

Bounded for CI: MAX_EXAMPLES per operation and identity, no shrinking, deterministic generation.
"""

from __future__ import annotations

import base64
import json
import tomllib
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import schemathesis
import schemathesis.engine
from django.conf import settings as django_settings
from schemathesis.engine import events

from accounts import services as accounts
from fintech.money import Money
from ledger import services as ledger
from ledger.domain import AccountKind
from payments import services as payments
from tests.accounts.helpers import customer_details
from vault.services import card_tokenize, role_groups_ensure

pytestmark = pytest.mark.django_db(transaction=True)

MAX_EXAMPLES = 10
PHASES = {"coverage": {"enabled": False}, "stateful": {"max-steps": 10}}
ACTOR = "user:contract-test"
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "positive_data_acceptance",
)
# The statuses a schema-valid request may still get, per operation and with reasons, shared with the CLI.
CONFIG_FILE = Path(django_settings.BASE_DIR) / "schemathesis.toml"


@dataclass(frozen=True)
class World:
    """What the fuzzer can hit: real ids and a token per identity."""

    tokens: dict[str, str]
    payment_ids: list[str]
    account_ids: list[str]
    hold_ids: list[str]
    card_tokens: list[str]
    cursors: list[str]


@pytest.fixture
def world(live_server) -> World:
    """Real objects through the services: a merchant with a card and payments in each state, funded customer
    accounts with holds, and the three identities."""
    role_groups_ensure()
    merchant_id = f"m-contract-{uuid.uuid4().hex[:8]}"
    tokens = {
        "merchant": accounts.api_token_issue(username=f"{merchant_id}-user", merchant_id=merchant_id),
        "finance": accounts.api_token_issue(username=f"{merchant_id}-finance", group="finance"),
        "cde": accounts.api_token_issue(username=f"{merchant_id}-cde", group="cde"),
    }
    card = card_tokenize(card_number="4242424242424242", exp_month=12, exp_year=2040, merchant_id=merchant_id).token
    payment_ids = []
    for steps in range(4):  # initiated, authorized, captured, partially refunded
        payment = payments.payment_initiate(
            merchant_id=merchant_id, amount=Money(10_000, "JPY"), payment_method_token=card, actor=ACTOR
        )
        for step in (payments.payment_authorize, payments.payment_capture)[:steps]:
            step(payment_id=payment.id, actor=ACTOR)
        if steps == 3:
            payments.payment_refund(payment_id=payment.id, amount=Money(1_000, "JPY"), actor=ACTOR)
        payment_ids.append(str(payment.id))
    account_ids, hold_ids = [], []
    for _ in range(2):
        customer = accounts.customer_register(**customer_details(), actor=ACTOR)
        account = ledger.account_open(
            owner_type="customer",
            owner_id=str(customer.id),
            currency="JPY",
            kind=AccountKind.CUSTOMER_BALANCE,
            actor=ACTOR,
        )
        ledger.account_deposit(account_id=account.id, amount=Money(10**9, "JPY"), actor=ACTOR)
        hold = ledger.hold_place(account_id=account.id, amount=Money(1_000, "JPY"), actor=ACTOR)
        account_ids.append(str(account.id))
        hold_ids.append(str(hold.id))
    merchant_account = ledger.account_open(
        owner_type="merchant", owner_id=merchant_id, currency="JPY", kind=AccountKind.MERCHANT_PAYABLE, actor=ACTOR
    )
    account_ids.append(str(merchant_account.id))
    # A cursor is opaque (fintech.cursors.cursor_decode): only one the API hands out is schema-valid in
    # earnest, so positive cases use cursors of that shape.
    cursors = [
        base64.urlsafe_b64encode(json.dumps(["2026-01-01T00:00:00+00:00", payment_id]).encode()).decode()
        for payment_id in payment_ids
    ]
    return World(tokens, payment_ids, account_ids, hold_ids, [card], cursors)


@pytest.fixture(params=["merchant", "finance", "cde"])
def identity(request) -> str:
    return request.param


@schemathesis.check
def schema_valid_input_passes_validation(ctx, response, case):
    """A request generated as schema-valid is never refused by field validation: that would be the schema
    promising what the serializers refuse."""
    if case.meta is None or not case.meta.generation.mode.is_positive or response.status_code != 400:
        return
    code = response.json().get("code")
    if code in ("validation_error", "parse_error"):
        raise AssertionError(f"schema-valid request refused with {code}: {response.text[:500]}")


def _config(world: World, identity: str) -> schemathesis.Config:
    def often(dictionary: str) -> dict:
        # Real ids most of the time; the rest of the cases still draw from the schema (unknown ids: 404).
        return {"dictionary": dictionary, "probability": 0.8}

    shared = tomllib.loads(CONFIG_FILE.read_text())
    return schemathesis.Config.from_dict(
        {
            # Connection: close -- a kept-alive socket keeps the server's request thread, and its database
            # connection, alive past the test (the test database could then not be dropped).
            "headers": {"Authorization": f"Token {world.tokens[identity]}", "Connection": "close"},
            "generation": {"max-examples": MAX_EXAMPLES, "no-shrink": True, "deterministic": True},
            "phases": PHASES,
            "checks": {
                "enabled": False,
                **{name: {"enabled": True} for name in (*CHECKS, schema_valid_input_passes_validation.__name__)},
                "positive_data_acceptance": {"enabled": True, **shared["checks"]["positive_data_acceptance"]},
            },
            "dictionaries": {
                "payments": {"values": world.payment_ids},
                "accounts": {"values": world.account_ids},
                "holds": {"values": world.hold_ids},
                "cards": {"values": world.card_tokens},
                "currencies": {"values": ["JPY"]},
                "cursors": {"values": world.cursors},
            },
            "parameters": {
                "path.payment_id": often("payments"),
                "path.account_id": often("accounts"),
                "path.hold_id": often("holds"),
                "body.payment_method.token": often("cards"),
                "body.from_account": often("accounts"),
                "body.to_account": often("accounts"),
                "body.amount.currency": often("currencies"),
                "query.cursor": {"dictionary": "cursors", "probability": 1.0},
            },
            "operations": shared["operations"],
        }
    )


def _describe(recorder, info) -> str:
    response = recorder.find_response(case_id=info.failure.case_id) if info.failure.case_id else None
    answer = f"{response.status_code} {response.content[:300]!r}" if response is not None else "no response"
    return f"{recorder.label}: {info.failure}\n-> {answer}\n{info.code_sample}"


def test_api_honours_its_schema(live_server, world, identity):
    # given the schema the live server publishes, and real objects to aim at
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/schema/", config=_config(world, identity))
    # when schemathesis runs every operation through its engine, as its CLI does
    cases, operations, failures, errors = 0, set(), [], []
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            cases += len(event.recorder.cases)
            operations.add(event.recorder.label)
            failures += [
                _describe(event.recorder, node.failure_info)
                for nodes in event.recorder.checks.values()
                for node in nodes
                if node.failure_info is not None
            ]
        elif isinstance(event, events.NonFatalError | events.FatalError):
            errors.append(str(getattr(event, "value", None) or getattr(event, "exception", None)))
    # then every operation ran and nothing failed
    assert {f"{op.ok().method.upper()} {op.ok().path}" for op in schema.get_all_operations()} <= operations
    assert cases > len(operations) * MAX_EXAMPLES / 2
    assert not errors, errors
    assert not failures, "\n\n".join(dict.fromkeys(failures))
