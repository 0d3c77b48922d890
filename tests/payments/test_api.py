"""The payments HTTP contract, as an external checker relies on it: shapes, statuses, errors, ETags,
idempotency keys, merchant isolation and the events' metadata."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.services import api_token_issue
from fintech.models import Event, IdempotencyRecord
from payments import services
from payments.domain import AUTHORIZED, CANCELLED, CAPTURED, FAILED, INITIATED, PARTIALLY_REFUNDED, REFUNDED
from tests.payments.helpers import (
    DECLINED,
    INSUFFICIENT_FUNDS,
    MASTERCARD,
    MERCHANT,
    OTHER_MERCHANT,
    RecordingGateway,
    append_bypassing_the_lock,
    card_token,
    unique_merchant_id,
)
from vault.models import Card, DetokenizationAudit

pytestmark = pytest.mark.django_db

BASE = "/api/v1/payments"
PROBLEM = "application/problem+json"
EVENT_KEYS = {"event_id", "event_type", "version", "occurred_at", "data", "metadata"}
STATUSES = (INITIATED, AUTHORIZED, CAPTURED, PARTIALLY_REFUNDED, REFUNDED, CANCELLED, FAILED)


# helpers --------------------------------------------------------------------------------------------------
def _money(minor, currency="JPY") -> dict:
    return {"amount": minor, "currency": currency}


def _create_body(minor=1000, currency="JPY", *, card, description="order 42") -> dict:
    """A create request paid with `card`, a vault token of the caller's merchant."""
    return {"amount": _money(minor, currency), "payment_method": {"token": card}, "description": description}


def _create(client, minor=1000, *, card, headers=None, **body):
    return client.post(BASE, _create_body(minor, card=card, **body), format="json", headers=headers or {})


def _act(client, payment_id, action, body=None, *, headers=None):
    return client.post(
        f"{BASE}/{payment_id}/{action}", {} if body is None else body, format="json", headers=headers or {}
    )


def _raw(client, path, text, *, headers=None):
    return client.post(path, data=text, content_type="application/json", headers=headers or {})


def _events(client, payment_id) -> list[dict]:
    response = client.get(f"{BASE}/{payment_id}/events")
    assert response.status_code == 200, response.content
    return response.json()["results"]


def _ok(response, status=200) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert response["ETag"] == f'"{body["version"]}"'
    return body


def _assert_problem(response, status, code=None) -> dict:
    text = response.content.decode(errors="replace")
    assert response.status_code == status, f"{response.status_code}: {text[:500]}"
    assert response["Content-Type"].startswith(PROBLEM)
    assert "Traceback" not in text
    assert 'File "' not in text
    body = response.json()
    assert {"type", "title", "status", "code", "detail"} <= set(body)
    assert body["status"] == status
    assert body["type"] == f"urn:fintech:problem:{body['code']}"
    if code is not None:
        assert body["code"] == code
    return body


# The steps from a new payment to each status, over HTTP.
_STEPS = {
    INITIATED: [],
    AUTHORIZED: [("authorize", {})],
    CAPTURED: [("authorize", {}), ("capture", {})],
    PARTIALLY_REFUNDED: [("authorize", {}), ("capture", {}), ("refunds", {"amount": _money(250)})],
    REFUNDED: [("authorize", {}), ("capture", {}), ("refunds", {"amount": _money(1000)})],
    CANCELLED: [("cancel", {"reason": "customer asked"})],
    FAILED: [("authorize", {})],
}


def _payment(client, status=INITIATED, minor=None, *, card) -> dict:
    """A payment of the client's merchant in `status`, paid with `card` (a vault token of that merchant),
    reached through the API (failed ones decline 2500)."""
    minor = minor if minor is not None else (2500 if status == FAILED else 1000)
    body = _ok(_create(client, minor, card=card), 201)
    for action, payload in _STEPS[status]:
        body = _ok(_act(client, body["id"], action, payload))
    assert body["status"] == status
    return body


def _initiated_count(merchant_id: str) -> int:
    return Event.objects.filter(event_type="PaymentInitiated", event_data__merchant_id=merchant_id).count()


def _user_pk(username: str) -> int:
    return get_user_model().objects.get(username=username).pk


def _client_for(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


# create ---------------------------------------------------------------------------------------------------
def test_create_returns_201_with_the_payment(merchant_client):
    # given a Mastercard test card vaulted for the merchant
    token = card_token(MERCHANT, MASTERCARD)
    # when
    response = _create(merchant_client, 1500, card=token)
    # then
    body = _ok(response, 201)
    assert uuid.UUID(body["id"])
    assert body["status"] == "initiated"
    assert body["amount"] == {"amount": 1500, "currency": "JPY"}
    assert body["version"] == 1
    assert body["merchant_id"] == MERCHANT
    assert body["description"] == "order 42"
    assert body["payment_method"] == {"token": token, "brand": "mastercard", "last4": "4444"}
    assert body["authorized_amount"] == body["captured_amount"] == body["refunded_amount"] == _money(0)
    assert response["ETag"] == '"1"'
    assert response["Location"] == f"{BASE}/{body['id']}"


def test_create_merchant_is_the_callers_whatever_the_body_says(merchant_client, visa_token, other_merchant_client):
    # when the body claims another merchant
    body = {**_create_body(card=visa_token), "merchant_id": "m-beta"}
    created = _ok(merchant_client.post(BASE, body, format="json"), 201)
    # then the payment is the caller's
    assert created["merchant_id"] == MERCHANT
    assert _events(merchant_client, created["id"])[0]["data"]["merchant_id"] == MERCHANT
    _assert_problem(other_merchant_client.get(f"{BASE}/{created['id']}/events"), 404, "not_found")


def test_create_without_description_defaults_to_blank(merchant_client, visa_token):
    body = {"amount": _money(10), "payment_method": {"token": visa_token}}
    assert _ok(merchant_client.post(BASE, body, format="json"), 201)["description"] == ""


@pytest.mark.parametrize("path", [BASE, f"{BASE}/"])
def test_create_answers_with_or_without_trailing_slash(merchant_client, visa_token, path):
    _ok(merchant_client.post(path, _create_body(card=visa_token), format="json"), 201)


# Each body is built from the merchant's own Visa token, so that the flaw named is the only one.
@pytest.mark.parametrize(
    ("body", "code"),
    [
        (lambda card: {"amount": _money(1000), "payment_method": {"token": "visa"}}, "invalid_payment_method"),
        (lambda card: {"amount": _money(1000), "payment_method": {"token": "tok_no"}}, "invalid_payment_method"),
        (lambda card: {"amount": _money(1000), "payment_method": {"token": "tok_" + "a" * 77}}, "validation_error"),
        (lambda card: {"amount": _money(1000), "payment_method": {"token": card + "\u0000"}}, "validation_error"),
        (lambda card: {"amount": _money(1000), "payment_method": card}, "validation_error"),
        (lambda card: {"amount": _money(1000), "payment_method": {}}, "validation_error"),
        (lambda card: {"amount": _money(1000)}, "validation_error"),
        (lambda card: {"payment_method": {"token": card}}, "validation_error"),
        (lambda card: {**_create_body(card=card), "description": "x" * 501}, "validation_error"),
        (lambda card: {**_create_body(card=card), "description": "nul \u0000 inside"}, "validation_error"),
        (lambda card: {**_create_body(card=card), "description": None}, "validation_error"),
        (lambda card: {**_create_body(card=card), "description": {"nested": 1}}, "validation_error"),
        (lambda card: {}, "validation_error"),
        (lambda card: [], "validation_error"),
    ],
    ids=[
        "token-not-a-token",
        "token-too-short",
        "token-too-long",
        "token-nul",
        "payment-method-string",
        "payment-method-empty",
        "no-amount",
        "no-payment-method",
        "description-too-long",
        "description-nul",
        "description-null",
        "description-object",
        "empty-object",
        "list",
    ],
)
def test_create_bad_input_is_400_and_creates_nothing(merchant_client, visa_token, body, code):
    before = _initiated_count(MERCHANT)
    _assert_problem(merchant_client.post(BASE, body(visa_token), format="json"), 400, code)
    assert _initiated_count(MERCHANT) == before


def _another_merchants_token(visa_token: str) -> str:
    return card_token(OTHER_MERCHANT)


def _expired_token(visa_token: str) -> str:
    # The vault refuses to tokenise an expired card: this one expires after it was vaulted.
    Card.objects.filter(token=visa_token).update(exp_year=2020)
    return visa_token


def _never_issued_token(visa_token: str) -> str:
    return "tok_" + "Zq7" * 8  # shaped like the vault's tokens


UNUSABLE_TOKENS = {
    "another-merchants": _another_merchants_token,
    "expired": _expired_token,
    "never-issued": _never_issued_token,
}


@pytest.mark.parametrize("unusable", UNUSABLE_TOKENS.values(), ids=UNUSABLE_TOKENS.keys())
def test_create_with_a_token_the_merchant_may_not_use_is_400_and_creates_nothing(merchant_client, visa_token, unusable):
    # given a token this merchant cannot pay with
    token = unusable(visa_token)
    before = _initiated_count(MERCHANT)
    # when
    response = _create(merchant_client, card=token)
    # then it is refused, and the answer does not tell another merchant's or an expired token from an unknown one
    body = _assert_problem(response, 400, "invalid_payment_method")
    unknown = _assert_problem(_create(merchant_client, card="tok_" + "x" * 24), 400, "invalid_payment_method")
    assert body["detail"] == unknown["detail"]
    assert _initiated_count(MERCHANT) == before


def test_create_malformed_json_is_400_parse_error(merchant_client):
    _assert_problem(_raw(merchant_client, BASE, '{"amount": '), 400, "parse_error")


def test_create_invalid_utf8_is_400(merchant_client):
    response = merchant_client.post(BASE, data=b'{"description": "\xff"}', content_type="application/json")
    _assert_problem(response, 400, "parse_error")


def test_create_form_encoded_is_415(merchant_client):
    response = merchant_client.post(BASE, data="a=1", content_type="application/x-www-form-urlencoded")
    _assert_problem(response, 415, "unsupported_media_type")


def test_delete_on_create_path_is_405_problem(merchant_client):
    response = merchant_client.delete(BASE)
    _assert_problem(response, 405, "method_not_allowed")
    assert "POST" in response["Allow"]


# money edge cases -----------------------------------------------------------------------------------------
# Raw JSON texts of the `amount` member: several are not expressible through json.dumps (NaN, huge numbers).
BAD_MONEY = {
    "float": '{"amount": 1000.0, "currency": "JPY"}',
    "float-fraction": '{"amount": 10.5, "currency": "JPY"}',
    "exponent": '{"amount": 1e3, "currency": "JPY"}',
    "string": '{"amount": "1000", "currency": "JPY"}',
    "decimal-string": '{"amount": "10.00", "currency": "JPY"}',
    "nan": '{"amount": NaN, "currency": "JPY"}',
    "infinity": '{"amount": Infinity, "currency": "JPY"}',
    "minus-infinity": '{"amount": -Infinity, "currency": "JPY"}',
    "overflow-float": '{"amount": 1e400, "currency": "JPY"}',
    "true": '{"amount": true, "currency": "JPY"}',
    "false": '{"amount": false, "currency": "JPY"}',
    "null-amount": '{"amount": null, "currency": "JPY"}',
    "object-amount": '{"amount": {"amount": 1}, "currency": "JPY"}',
    "list-amount": '{"amount": [1000], "currency": "JPY"}',
    "unknown-currency": '{"amount": 1000, "currency": "ZZZ"}',
    "fund-code": '{"amount": 1000, "currency": "XXX"}',
    "lowercase-currency": '{"amount": 1000, "currency": "jpy"}',
    "long-currency": '{"amount": 1000, "currency": "JPYX"}',
    "numeric-currency": '{"amount": 1000, "currency": 392}',
    "null-currency": '{"amount": 1000, "currency": null}',
    "missing-currency": '{"amount": 1000}',
    "missing-amount": '{"currency": "JPY"}',
    "empty-object": "{}",
    "negative": '{"amount": -1000, "currency": "JPY"}',
    "zero": '{"amount": 0, "currency": "JPY"}',
    "above-2-53": '{"amount": 9007199254740992, "currency": "JPY"}',
    "huge-int": '{"amount": 1' + "0" * 5000 + ', "currency": "JPY"}',
    "extra-field": '{"amount": 1000, "currency": "JPY", "minor": 1000}',
    "extra-field-nul": '{"amount": 1000, "currency": "JPY", "\\u0000": 1}',
    "extra-field-surrogate": '{"amount": 1000, "currency": "JPY", "\\ud800": 1}',
    "bare-int": "1000",
    "bare-string": '"1000 JPY"',
    "null": "null",
    "list": '[1000, "JPY"]',
}
CODES_400 = {"validation_error", "parse_error", "invalid_amount", "invalid_money"}


def _assert_bad_money(response):
    body = _assert_problem(response, 400)
    assert body["code"] in CODES_400
    return body


@pytest.mark.parametrize("with_key", [False, True], ids=["plain", "idempotency-key"])
@pytest.mark.parametrize("amount", BAD_MONEY.values(), ids=BAD_MONEY.keys())
def test_create_bad_money_is_400_never_500(merchant_client, visa_token, amount, with_key):
    # given (a server error must show up as a response here, not as an exception in the test)
    merchant_client.raise_request_exception = False
    before = _initiated_count(MERCHANT)
    text = '{"amount": ' + amount + ', "payment_method": {"token": "' + visa_token + '"}, "description": "x"}'
    headers = {"Idempotency-Key": f"bad-money-{uuid.uuid4()}"} if with_key else {}
    # when
    response = _raw(merchant_client, BASE, text, headers=headers)
    # then
    _assert_bad_money(response)
    assert _initiated_count(MERCHANT) == before


def test_create_negative_and_zero_amounts_are_invalid_amount(merchant_client, visa_token):
    _assert_problem(_create(merchant_client, -1, card=visa_token), 400, "invalid_amount")
    _assert_problem(_create(merchant_client, 0, card=visa_token), 400, "invalid_amount")


def test_create_float_amount_is_a_validation_error_on_amount(merchant_client, visa_token):
    body = _assert_problem(_create(merchant_client, 1000.0, card=visa_token), 400, "validation_error")
    assert "amount" in body["errors"]


@pytest.mark.parametrize(
    "amount",
    [
        *[BAD_MONEY[k] for k in ("float", "string", "nan", "true", "unknown-currency", "missing-currency")],
        *[BAD_MONEY[k] for k in ("negative", "zero", "extra-field-surrogate")],
        '{"amount": 1001, "currency": "JPY"}',
        '{"amount": 1000, "currency": "USD"}',
        '{"amount": 10, "currency": "KWD"}',
    ],
    ids=[
        "float",
        "string",
        "nan",
        "bool",
        "unknown-currency",
        "missing-currency",
        "negative",
        "zero",
        "extra-field-surrogate",
        "above-authorized",
        "other-currency",
        "other-currency-smaller",
    ],
)
def test_capture_bad_money_is_400_and_captures_nothing(merchant_client, visa_token, amount):
    # given
    merchant_client.raise_request_exception = False
    payment = _payment(merchant_client, AUTHORIZED, card=visa_token)
    before = _events(merchant_client, payment["id"])
    # when
    response = _raw(merchant_client, f"{BASE}/{payment['id']}/capture", '{"amount": ' + amount + "}")
    # then
    _assert_bad_money(response)
    assert _events(merchant_client, payment["id"]) == before


@pytest.mark.parametrize(
    "amount",
    [
        *[BAD_MONEY[k] for k in ("float", "string", "nan", "false", "unknown-currency", "missing-currency")],
        *[BAD_MONEY[k] for k in ("negative", "zero", "null-amount")],
        '{"amount": 751, "currency": "JPY"}',
        '{"amount": 100, "currency": "USD"}',
    ],
    ids=[
        "float",
        "string",
        "nan",
        "bool",
        "unknown-currency",
        "missing-currency",
        "negative",
        "zero",
        "null",
        "above-remaining",
        "other-currency",
    ],
)
def test_refund_bad_money_is_400_and_refunds_nothing(merchant_client, visa_token, amount):
    # given a payment of 1000 captured, 250 refunded already
    merchant_client.raise_request_exception = False
    payment = _payment(merchant_client, PARTIALLY_REFUNDED, card=visa_token)
    before = _events(merchant_client, payment["id"])
    # when
    response = _raw(merchant_client, f"{BASE}/{payment['id']}/refunds", '{"amount": ' + amount + ', "reason": "x"}')
    # then
    _assert_bad_money(response)
    assert _events(merchant_client, payment["id"]) == before


def test_refund_without_amount_is_400(merchant_client, visa_token):
    payment = _payment(merchant_client, CAPTURED, card=visa_token)
    body = _assert_problem(_act(merchant_client, payment["id"], "refunds", {"reason": "x"}), 400, "validation_error")
    assert "amount" in body["errors"]


# the life of a payment ------------------------------------------------------------------------------------
def test_lifecycle_authorize_capture_refunds_ends_refunded(merchant_client, visa_token):
    # given
    payment = _payment(merchant_client, INITIATED, card=visa_token)
    pid = payment["id"]
    # when / then
    authorized = _ok(_act(merchant_client, pid, "authorize", {}))
    assert (authorized["status"], authorized["version"]) == ("authorized", 2)
    assert authorized["authorized_amount"] == _money(1000)
    assert len(authorized["authorization_code"]) == 6
    captured = _ok(_act(merchant_client, pid, "capture", {"amount": _money(800)}))
    assert (captured["status"], captured["version"], captured["captured_amount"]) == ("captured", 3, _money(800))
    first = _ok(_act(merchant_client, pid, "refunds", {"amount": _money(300), "reason": "damaged"}))
    assert (first["status"], first["version"], first["refunded_amount"]) == ("partially_refunded", 4, _money(300))
    second = _ok(_act(merchant_client, pid, "refunds", {"amount": _money(500)}))
    assert (second["status"], second["version"], second["refunded_amount"]) == ("refunded", 5, _money(800))
    assert [e["event_type"] for e in _events(merchant_client, pid)] == [
        "PaymentInitiated",
        "PaymentAuthorized",
        "PaymentCaptured",
        "PaymentRefunded",
        "PaymentRefunded",
    ]
    for body in (authorized, captured, first, second):
        assert {"id", "status", "amount", "version"} <= set(body)
        assert body["id"] == pid
        assert body["amount"] == _money(1000)


@pytest.mark.parametrize(
    "send",
    [
        lambda c, pid: c.post(f"{BASE}/{pid}/capture", {}, format="json"),
        lambda c, pid: c.post(f"{BASE}/{pid}/capture/", {}, format="json"),
        lambda c, pid: c.post(f"{BASE}/{pid}/capture"),
    ],
    ids=["empty-object", "trailing-slash", "no-body"],
)
def test_capture_without_amount_captures_everything(merchant_client, visa_token, send):
    payment = _payment(merchant_client, AUTHORIZED, card=visa_token)
    captured = _ok(send(merchant_client, payment["id"]))
    assert captured["status"] == "captured"
    assert captured["captured_amount"] == _money(1000)


@pytest.mark.parametrize("status", [INITIATED, AUTHORIZED])
def test_cancel_before_capture_is_200_cancelled(merchant_client, visa_token, status):
    payment = _payment(merchant_client, status, card=visa_token)
    cancelled = _ok(_act(merchant_client, payment["id"], "cancel", {"reason": "customer asked"}))
    assert cancelled["status"] == "cancelled"
    assert cancelled["version"] == payment["version"] + 1
    last = _events(merchant_client, payment["id"])[-1]
    assert (last["event_type"], last["data"]["reason"]) == ("PaymentCancelled", "customer asked")


def test_authorize_declined_amount_is_200_failed_with_code(merchant_client, visa_token):
    payment = _payment(merchant_client, INITIATED, minor=2500, card=visa_token)
    failed = _ok(_act(merchant_client, payment["id"], "authorize", {}))
    assert failed["status"] == "failed"
    assert failed["failure_code"] == "2500"
    assert failed["version"] == 2
    last = _events(merchant_client, payment["id"])[-1]
    assert (last["event_type"], last["data"]["response_code"]) == ("PaymentFailed", "2500")


@pytest.mark.parametrize(("card", "code"), [(DECLINED, "05"), (INSUFFICIENT_FUNDS, "51")], ids=["declined", "no-funds"])
def test_authorize_declining_test_card_is_200_failed_with_its_code(merchant_client, card, code):
    # given a payment of an ordinary amount, paid with a test card the acquirer declines
    payment = _payment(merchant_client, INITIATED, card=card_token(MERCHANT, card))
    # when
    failed = _ok(_act(merchant_client, payment["id"], "authorize", {}))
    # then
    assert (failed["status"], failed["failure_code"], failed["version"]) == ("failed", code, 2)
    assert failed["authorization_code"] is None
    last = _events(merchant_client, payment["id"])[-1]
    assert (last["event_type"], last["data"]["response_code"]) == ("PaymentFailed", code)


def test_authorize_acquirer_unavailable_is_502_and_changes_nothing(merchant_client, visa_token):
    # given
    payment = _payment(merchant_client, INITIATED, minor=3000, card=visa_token)
    before = _events(merchant_client, payment["id"])
    # when
    response = _act(merchant_client, payment["id"], "authorize", {})
    # then
    _assert_problem(response, 502, "acquirer_unavailable")
    assert _events(merchant_client, payment["id"]) == before
    assert merchant_client.get(f"{BASE}/{payment['id']}/events")["ETag"] == '"1"'
    # and the payment is still initiated at version 1
    cancelled = _ok(_act(merchant_client, payment["id"], "cancel", {}, headers={"If-Match": '"1"'}))
    assert cancelled["version"] == 2


HTTP_ACTIONS = {
    "authorize": {},
    "capture": {},
    "refunds": {"amount": _money(100)},
    "cancel": {"reason": "x"},
}
HTTP_LEGAL = {
    (INITIATED, "authorize"),
    (INITIATED, "cancel"),
    (AUTHORIZED, "capture"),
    (AUTHORIZED, "cancel"),
    (CAPTURED, "refunds"),
    (PARTIALLY_REFUNDED, "refunds"),
}
HTTP_ILLEGAL = [(s, a) for s in STATUSES for a in HTTP_ACTIONS if (s, a) not in HTTP_LEGAL]


@pytest.mark.parametrize(("status", "action"), HTTP_ILLEGAL, ids=[f"{s}-{a}" for s, a in HTTP_ILLEGAL])
def test_illegal_transition_is_409_and_changes_nothing(merchant_client, visa_token, status, action):
    # given
    payment = _payment(merchant_client, status, card=visa_token)
    before = _events(merchant_client, payment["id"])
    # when
    response = _act(merchant_client, payment["id"], action, HTTP_ACTIONS[action])
    # then
    _assert_problem(response, 409, "invalid_transition")
    assert _events(merchant_client, payment["id"]) == before


@pytest.mark.parametrize(("status", "action"), sorted(HTTP_LEGAL))
def test_legal_transition_is_200(merchant_client, visa_token, status, action):
    payment = _payment(merchant_client, status, card=visa_token)
    body = _ok(_act(merchant_client, payment["id"], action, HTTP_ACTIONS[action]))
    assert body["version"] == payment["version"] + 1


# not found, other merchants, authentication ---------------------------------------------------------------
def _send(client, payment_id, action):
    if action == "events":
        return client.get(f"{BASE}/{payment_id}/events")
    return _act(client, payment_id, action, HTTP_ACTIONS[action])


ALL_ENDPOINTS = [*HTTP_ACTIONS, "events"]


@pytest.mark.parametrize("action", ALL_ENDPOINTS)
@pytest.mark.parametrize("payment_id", [str(uuid.uuid4()), "not-a-uuid", "1", "00000000-0000-0000-0000-00000000000g"])
def test_unknown_payment_is_404(merchant_client, payment_id, action):
    _assert_problem(_send(merchant_client, payment_id, action), 404, "not_found")


@pytest.mark.parametrize("action", ALL_ENDPOINTS)
def test_another_merchants_payment_is_404_and_untouched(merchant_client, visa_token, other_merchant_client, action):
    # given a payment of m-alpha that each action could apply to
    status = {"capture": AUTHORIZED, "refunds": CAPTURED}.get(action, INITIATED)
    payment = _payment(merchant_client, status, card=visa_token)
    before = _events(merchant_client, payment["id"])
    # when m-beta tries
    response = _send(other_merchant_client, payment["id"], action)
    # then it is as if the payment did not exist
    body = _assert_problem(response, 404, "not_found")
    missing = uuid.uuid4()
    unknown = _assert_problem(_send(other_merchant_client, missing, action), 404, "not_found")
    assert body["detail"].replace(payment["id"], "<id>") == unknown["detail"].replace(str(missing), "<id>")
    assert _events(merchant_client, payment["id"]) == before


@pytest.mark.parametrize("action", ALL_ENDPOINTS)
def test_unauthenticated_is_401(merchant_client, visa_token, action):
    payment = _payment(merchant_client, INITIATED, card=visa_token)
    response = _send(APIClient(), payment["id"], action)
    _assert_problem(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Token")


def test_unauthenticated_create_is_401(visa_token):
    response = APIClient().post(BASE, _create_body(card=visa_token), format="json")
    _assert_problem(response, 401, "not_authenticated")


def test_bad_token_is_401(visa_token):
    response = _client_for("0" * 40).post(BASE, _create_body(card=visa_token), format="json")
    _assert_problem(response, 401, "authentication_failed")


def test_user_without_merchant_is_403(visa_token):
    client = _client_for(api_token_issue(username="operator", group="cde"))
    _assert_problem(client.post(BASE, _create_body(card=visa_token), format="json"), 403, "permission_denied")


# events ---------------------------------------------------------------------------------------------------
def test_events_list_shape_and_version_order(merchant_client, visa_token):
    # given
    payment = _payment(merchant_client, PARTIALLY_REFUNDED, card=visa_token)
    # when
    response = merchant_client.get(f"{BASE}/{payment['id']}/events")
    # then
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["results"]
    results = body["results"]
    assert all(set(e) == EVENT_KEYS for e in results)
    assert [e["version"] for e in results] == [1, 2, 3, 4]
    assert response["ETag"] == '"4"'
    assert [e["event_type"] for e in results] == [
        "PaymentInitiated",
        "PaymentAuthorized",
        "PaymentCaptured",
        "PaymentRefunded",
    ]
    assert len({e["event_id"] for e in results}) == 4
    initiated, authorized, captured, refunded = (e["data"] for e in results)
    assert initiated["amount"] == _money(1000)
    assert initiated["payment_method"] == {"token": visa_token, "brand": "visa", "last4": "4242"}
    assert initiated["merchant_id"] == MERCHANT
    assert authorized["authorized_amount"] == _money(1000)
    assert captured["captured_amount"] == _money(1000)
    assert len(captured["settlement_date"]) == 10
    assert refunded["refunded_amount"] == _money(250)
    assert uuid.UUID(refunded["refund_id"])


def test_events_metadata_carries_actor_and_trace_ids(merchant_client, visa_token):
    # given
    payment = _payment(merchant_client, AUTHORIZED, card=visa_token)
    # when
    events = _events(merchant_client, payment["id"])
    # then
    for event in events:
        meta = event["metadata"]
        assert meta["actor"] == f"user:{_user_pk('alpha')}"
        assert meta["trace_id"]
        assert meta["correlation_id"]
        assert meta["causation_id"]
    # each request is its own cause
    assert events[0]["metadata"]["causation_id"] != events[1]["metadata"]["causation_id"]


def test_correlation_id_header_is_echoed_and_stored(merchant_client, visa_token):
    # when
    response = _create(merchant_client, card=visa_token, headers={"X-Correlation-ID": "order-42.checkout:1"})
    # then
    assert response["X-Correlation-ID"] == "order-42.checkout:1"
    payment_id = response.json()["id"]
    authorized = _act(merchant_client, payment_id, "authorize", {}, headers={"X-Correlation-ID": "retry-7"})
    assert authorized["X-Correlation-ID"] == "retry-7"
    events = _events(merchant_client, payment_id)
    assert [e["metadata"]["correlation_id"] for e in events] == ["order-42.checkout:1", "retry-7"]


def test_correlation_id_defaults_to_the_trace_id(merchant_client, visa_token):
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    response = _create(
        merchant_client,
        card=visa_token,
        headers={"traceparent": f"00-{trace}-00f067aa0ba902b7-01", "X-Request-ID": "req-1"},
    )
    assert response["X-Correlation-ID"] == trace
    [event] = _events(merchant_client, response.json()["id"])
    assert event["metadata"]["trace_id"] == trace
    assert event["metadata"]["correlation_id"] == trace
    assert event["metadata"]["causation_id"] == "req-1"


def test_unsafe_correlation_id_is_not_echoed(merchant_client, visa_token):
    response = _create(merchant_client, card=visa_token, headers={"X-Correlation-ID": "<script>"})
    assert response.status_code == 201
    assert response["X-Correlation-ID"] != "<script>"
    [event] = _events(merchant_client, response.json()["id"])
    assert event["metadata"]["correlation_id"] == response["X-Correlation-ID"]


# ETag / If-Match ------------------------------------------------------------------------------------------
_STEPS_REFUND = {"amount": _money(100)}
STALE = {
    "previous": lambda version: f'"{version - 1}"',
    "next": lambda version: f'"{version + 1}"',
    "zero": lambda version: '"0"',
    "weak-previous": lambda version: f'W/"{version - 1}"',
    "unquoted-previous": lambda version: str(version - 1),
}


def test_etag_matches_version_on_every_response(merchant_client, visa_token):
    payment = _payment(merchant_client, INITIATED, card=visa_token)
    for action, payload in [("authorize", {}), ("capture", {"amount": _money(900)}), ("refunds", _STEPS_REFUND)]:
        response = _act(merchant_client, payment["id"], action, payload)
        assert response["ETag"] == f'"{response.json()["version"]}"'
    events = merchant_client.get(f"{BASE}/{payment['id']}/events")
    assert events["ETag"] == f'"{events.json()["results"][-1]["version"]}"'


@pytest.mark.parametrize(
    ("status", "action", "payload"),
    [
        (INITIATED, "authorize", {}),
        (AUTHORIZED, "capture", {}),
        (CAPTURED, "refunds", _STEPS_REFUND),
        (AUTHORIZED, "cancel", {}),
    ],
    ids=["authorize", "capture", "refunds", "cancel"],
)
@pytest.mark.parametrize("stale", STALE.values(), ids=STALE.keys())
def test_stale_if_match_is_412_and_changes_nothing(merchant_client, visa_token, status, action, payload, stale):
    # given
    payment = _payment(merchant_client, status, card=visa_token)
    before = _events(merchant_client, payment["id"])
    # when
    response = _act(merchant_client, payment["id"], action, payload, headers={"If-Match": stale(payment["version"])})
    # then
    _assert_problem(response, 412, "precondition_failed")
    assert _events(merchant_client, payment["id"]) == before


@pytest.mark.parametrize("if_match", ['"2"', "2", 'W/"2"', "*", ' "2" '])
def test_matching_if_match_is_accepted(merchant_client, visa_token, if_match):
    payment = _payment(merchant_client, AUTHORIZED, card=visa_token)
    body = _ok(_act(merchant_client, payment["id"], "capture", {}, headers={"If-Match": if_match}))
    assert body["version"] == 3


@pytest.mark.parametrize("if_match", ['"abc"', '"1", "2"', "-1", '"' + "9" * 11 + '"'])
def test_malformed_if_match_is_400(merchant_client, visa_token, if_match):
    payment = _payment(merchant_client, AUTHORIZED, card=visa_token)
    before = _events(merchant_client, payment["id"])
    _assert_problem(_act(merchant_client, payment["id"], "capture", {}, headers={"If-Match": if_match}), 400)
    assert _events(merchant_client, payment["id"]) == before


def test_if_match_from_a_response_etag_round_trips(merchant_client, visa_token):
    created = _create(merchant_client, card=visa_token)
    authorized = _act(merchant_client, created.json()["id"], "authorize", {}, headers={"If-Match": created["ETag"]})
    assert authorized.status_code == 200
    # replaying the old ETag is now stale
    response = _act(merchant_client, created.json()["id"], "cancel", {}, headers={"If-Match": created["ETag"]})
    _assert_problem(response, 412, "precondition_failed")


# idempotency ----------------------------------------------------------------------------------------------
def test_create_same_key_same_body_replays_and_creates_once(merchant_client, visa_token):
    # given
    before = _initiated_count(MERCHANT)
    headers = {"Idempotency-Key": "create-1"}
    first = _create(merchant_client, card=visa_token, headers=headers)
    # when
    second = _create(merchant_client, card=visa_token, headers=headers)
    # then
    assert first.status_code == second.status_code == 201
    assert "Idempotent-Replayed" not in first
    assert second["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert second["ETag"] == first["ETag"]
    assert second["Location"] == first["Location"]
    assert second["Content-Type"].startswith("application/json")
    assert _initiated_count(MERCHANT) == before + 1


def test_replay_ignores_json_key_order_and_whitespace(merchant_client, visa_token):
    headers = {"Idempotency-Key": "order-insensitive"}
    first = _raw(
        merchant_client,
        BASE,
        '{"amount": {"amount": 700, "currency": "JPY"}, "payment_method": {"token": "' + visa_token + '"}}',
        headers=headers,
    )
    second = _raw(
        merchant_client,
        BASE,
        '{ "payment_method" : {"token":"' + visa_token + '"},\n "amount": {"currency": "JPY", "amount": 700} }',
        headers=headers,
    )
    assert first.status_code == second.status_code == 201
    assert second["Idempotent-Replayed"] == "true"
    assert second.json()["id"] == first.json()["id"]


def test_expired_key_executes_again(merchant_client, visa_token, settings):
    # given a key first used longer ago than the keys live
    headers = {"Idempotency-Key": "old-key"}
    first = _create(merchant_client, card=visa_token, headers=headers)
    IdempotencyRecord.objects.filter(key="old-key").update(
        created_at=timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS, minutes=1)
    )
    # when it is used again
    second = _create(merchant_client, card=visa_token, headers=headers)
    # then it is a new request
    assert second.status_code == 201
    assert "Idempotent-Replayed" not in second
    assert second.json()["id"] != first.json()["id"]


def test_create_without_key_creates_each_time(merchant_client, visa_token):
    before = _initiated_count(MERCHANT)
    assert (
        _create(merchant_client, card=visa_token).json()["id"] != _create(merchant_client, card=visa_token).json()["id"]
    )
    assert _initiated_count(MERCHANT) == before + 2


@pytest.mark.parametrize(
    ("status", "action", "payload"),
    [
        (INITIATED, "authorize", {}),
        (AUTHORIZED, "capture", {"amount": _money(400)}),
        (CAPTURED, "refunds", {"amount": _money(100), "reason": "x"}),
        (PARTIALLY_REFUNDED, "refunds", {"amount": _money(100)}),
        (AUTHORIZED, "cancel", {"reason": "x"}),
    ],
    ids=["authorize", "capture", "refund", "refund-again", "cancel"],
)
def test_action_same_key_same_body_replays_and_acts_once(merchant_client, visa_token, status, action, payload):
    # given
    payment = _payment(merchant_client, status, card=visa_token)
    headers = {"Idempotency-Key": f"{action}-{uuid.uuid4()}"}
    first = _act(merchant_client, payment["id"], action, payload, headers=headers)
    assert first.status_code == 200
    after_first = _events(merchant_client, payment["id"])
    # when retried, twice
    second = _act(merchant_client, payment["id"], action, payload, headers=headers)
    third = _act(merchant_client, payment["id"], action, payload, headers=headers)
    # then
    for replay in (second, third):
        assert replay.status_code == 200
        assert replay["Idempotent-Replayed"] == "true"
        assert replay.json() == first.json()
        assert replay["ETag"] == first["ETag"]
    assert _events(merchant_client, payment["id"]) == after_first
    assert len(after_first) == payment["version"] + 1


def test_refund_with_new_key_refunds_again(merchant_client, visa_token):
    payment = _payment(merchant_client, CAPTURED, card=visa_token)
    body = {"amount": _money(100)}
    _ok(_act(merchant_client, payment["id"], "refunds", body, headers={"Idempotency-Key": "refund-a"}))
    second = _ok(_act(merchant_client, payment["id"], "refunds", body, headers={"Idempotency-Key": "refund-b"}))
    assert second["refunded_amount"] == _money(200)


def test_replay_returns_the_first_response_after_the_payment_moved_on(merchant_client, visa_token):
    payment = _payment(merchant_client, AUTHORIZED, card=visa_token)
    headers = {"Idempotency-Key": "capture-then-refund"}
    first = _act(merchant_client, payment["id"], "capture", {}, headers=headers)
    _ok(_act(merchant_client, payment["id"], "refunds", {"amount": _money(10)}))
    replay = _act(merchant_client, payment["id"], "capture", {}, headers=headers)
    assert replay.json() == first.json()
    assert replay.json()["status"] == "captured"
    assert len(_events(merchant_client, payment["id"])) == 4


@pytest.mark.parametrize(
    "second",
    [
        lambda c, card, pid: _create(c, 999, card=card, headers={"Idempotency-Key": "shared"}),
        lambda c, card, pid: _create(c, 1000, card=card, description="other", headers={"Idempotency-Key": "shared"}),
        lambda c, card, pid: _act(c, pid, "capture", {}, headers={"Idempotency-Key": "shared"}),
    ],
    ids=["other-amount", "other-description", "other-endpoint"],
)
def test_same_key_other_request_is_422_and_does_nothing(merchant_client, visa_token, second):
    # given
    first = _create(merchant_client, 1000, card=visa_token, headers={"Idempotency-Key": "shared"})
    assert first.status_code == 201
    pid = first.json()["id"]
    _ok(_act(merchant_client, pid, "authorize", {}))
    before_count = _initiated_count(MERCHANT)
    before_events = _events(merchant_client, pid)
    # when
    response = second(merchant_client, visa_token, pid)
    # then
    _assert_problem(response, 422, "idempotency_key_reused")
    assert _initiated_count(MERCHANT) == before_count
    assert _events(merchant_client, pid) == before_events


def test_same_key_other_body_after_success_is_422_on_actions(merchant_client, visa_token):
    payment = _payment(merchant_client, CAPTURED, card=visa_token)
    headers = {"Idempotency-Key": "refund-k"}
    _ok(_act(merchant_client, payment["id"], "refunds", {"amount": _money(100)}, headers=headers))
    response = _act(merchant_client, payment["id"], "refunds", {"amount": _money(200)}, headers=headers)
    _assert_problem(response, 422, "idempotency_key_reused")
    assert len(_events(merchant_client, payment["id"])) == 4


def test_validation_error_is_stored_and_replayed_as_400(merchant_client, visa_token):
    # given a first attempt that was a validation error
    before = _initiated_count(MERCHANT)
    headers = {"Idempotency-Key": "bad-create"}
    body = {"amount": {"amount": 10.5, "currency": "JPY"}, "payment_method": {"token": visa_token}}
    first = merchant_client.post(BASE, body, format="json", headers=headers)
    first_problem = _assert_problem(first, 400, "validation_error")
    assert "Idempotent-Replayed" not in first
    # when it is retried
    second = merchant_client.post(BASE, body, format="json", headers=headers)
    # then the error is replayed, as problem+json
    assert _assert_problem(second, 400, "validation_error") == first_problem
    assert second["Idempotent-Replayed"] == "true"
    # and the key stays bound to that request
    fixed = merchant_client.post(BASE, _create_body(card=visa_token), format="json", headers=headers)
    _assert_problem(fixed, 422, "idempotency_key_reused")
    assert _initiated_count(MERCHANT) == before


def test_domain_400_is_stored_and_replayed(merchant_client, visa_token):
    payment = _payment(merchant_client, AUTHORIZED, card=visa_token)
    headers = {"Idempotency-Key": "capture-too-much"}
    first = _act(merchant_client, payment["id"], "capture", {"amount": _money(5000)}, headers=headers)
    _assert_problem(first, 400, "invalid_amount")
    second = _act(merchant_client, payment["id"], "capture", {"amount": _money(5000)}, headers=headers)
    assert _assert_problem(second, 400, "invalid_amount") == first.json()
    assert second["Idempotent-Replayed"] == "true"


def test_404_is_stored_and_replayed(merchant_client):
    headers = {"Idempotency-Key": "missing"}
    missing = uuid.uuid4()
    first = _act(merchant_client, missing, "cancel", {}, headers=headers)
    _assert_problem(first, 404, "not_found")
    second = _act(merchant_client, missing, "cancel", {}, headers=headers)
    _assert_problem(second, 404, "not_found")
    assert second["Idempotent-Replayed"] == "true"


def test_409_is_not_stored_and_the_retry_executes(merchant_client, visa_token):
    # given a capture refused because the payment was not authorized yet
    payment = _payment(merchant_client, INITIATED, card=visa_token)
    headers = {"Idempotency-Key": "capture-early"}
    first = _act(merchant_client, payment["id"], "capture", {}, headers=headers)
    _assert_problem(first, 409, "invalid_transition")
    # when the payment is authorized and the same request retried
    _ok(_act(merchant_client, payment["id"], "authorize", {}))
    second = _act(merchant_client, payment["id"], "capture", {}, headers=headers)
    # then it ran this time
    assert _ok(second)["status"] == "captured"
    assert "Idempotent-Replayed" not in second
    # and from now on it replays
    third = _act(merchant_client, payment["id"], "capture", {}, headers=headers)
    assert third["Idempotent-Replayed"] == "true"
    assert [e["event_type"] for e in _events(merchant_client, payment["id"])].count("PaymentCaptured") == 1


def test_412_is_not_stored_and_the_retry_executes(merchant_client, visa_token):
    payment = _payment(merchant_client, AUTHORIZED, card=visa_token)
    key = "capture-stale"
    stale = _act(merchant_client, payment["id"], "capture", {}, headers={"Idempotency-Key": key, "If-Match": '"1"'})
    _assert_problem(stale, 412, "precondition_failed")
    again = _act(merchant_client, payment["id"], "capture", {}, headers={"Idempotency-Key": key, "If-Match": '"1"'})
    _assert_problem(again, 412, "precondition_failed")
    assert "Idempotent-Replayed" not in again
    fresh = _act(merchant_client, payment["id"], "capture", {}, headers={"Idempotency-Key": key, "If-Match": '"2"'})
    assert _ok(fresh)["version"] == 3
    assert "Idempotent-Replayed" not in fresh


def test_502_is_not_stored_and_the_retry_executes(merchant_client, visa_token):
    payment = _payment(merchant_client, INITIATED, minor=3000, card=visa_token)
    headers = {"Idempotency-Key": "authorize-unavailable"}
    for _ in range(2):
        response = _act(merchant_client, payment["id"], "authorize", {}, headers=headers)
        _assert_problem(response, 502, "acquirer_unavailable")
        assert "Idempotent-Replayed" not in response
    assert len(_events(merchant_client, payment["id"])) == 1
    # the key was never stored: a request of another path may still use it
    cancelled = _act(merchant_client, payment["id"], "cancel", {}, headers=headers)
    assert _ok(cancelled)["status"] == "cancelled"


def test_keys_belong_to_their_user(merchant_client, visa_token, other_merchant_client):
    headers = {"Idempotency-Key": "same-key-two-users"}
    alpha = _create(merchant_client, card=visa_token, headers=headers)
    beta = _create(other_merchant_client, card=card_token(OTHER_MERCHANT), headers=headers)
    assert alpha.status_code == beta.status_code == 201
    assert "Idempotent-Replayed" not in beta
    assert beta.json()["id"] != alpha.json()["id"]
    assert beta.json()["merchant_id"] == "m-beta"


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "caf\u00e9"])
def test_malformed_idempotency_key_is_400(merchant_client, visa_token, key):
    before = _initiated_count(MERCHANT)
    response = merchant_client.post(BASE, _create_body(card=visa_token), format="json", HTTP_IDEMPOTENCY_KEY=key)
    _assert_problem(response, 400, "validation_error")
    assert _initiated_count(MERCHANT) == before


def test_longest_idempotency_key_is_accepted(merchant_client, visa_token):
    assert _create(merchant_client, card=visa_token, headers={"Idempotency-Key": "k" * 255}).status_code == 201


# concurrency ----------------------------------------------------------------------------------------------
def _concurrent_user() -> tuple[str, str, str]:
    """(API token, merchant id, Visa card token) of a merchant of its own, committed for the threads to see."""
    merchant_id = unique_merchant_id()
    api_token = api_token_issue(username=f"u-{uuid.uuid4().hex[:12]}", merchant_id=merchant_id)
    return api_token, merchant_id, card_token(merchant_id)


@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_creates_with_one_key_create_once(run_concurrently):
    # given
    token, merchant_id, card = _concurrent_user()
    headers = {"Idempotency-Key": "concurrent-create"}

    def create():
        return _create(_client_for(token), card=card, headers=headers)

    # when
    results = run_concurrently(create, create)
    # then
    assert [kind for kind, _ in results] == ["ok", "ok"], results
    responses = [value for _, value in results]
    assert [r.status_code for r in responses] == [201, 201]
    assert responses[0].json() == responses[1].json()
    assert sorted(r.get("Idempotent-Replayed", "") for r in responses) == ["", "true"]
    assert _initiated_count(merchant_id) == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_captures_with_one_key_capture_once(run_concurrently):
    # given
    token, _, card = _concurrent_user()
    client = _client_for(token)
    payment = _payment(client, AUTHORIZED, card=card)
    headers = {"Idempotency-Key": "concurrent-capture"}

    def capture():
        return _act(_client_for(token), payment["id"], "capture", {"amount": _money(700)}, headers=headers)

    # when
    results = run_concurrently(capture, capture)
    # then
    assert [kind for kind, _ in results] == ["ok", "ok"], results
    responses = [value for _, value in results]
    assert [r.status_code for r in responses] == [200, 200]
    assert responses[0].json() == responses[1].json()
    events = _events(client, payment["id"])
    assert [e["event_type"] for e in events].count("PaymentCaptured") == 1
    assert [e["version"] for e in events] == [1, 2, 3]


@pytest.mark.django_db(transaction=True)
def test_concurrent_authorizations_reach_the_acquirer_once(run_concurrently, monkeypatch):
    # given a payment, and a gateway recording what reaches the acquirer (the real simulator underneath)
    token, _, card = _concurrent_user()
    payment = _payment(_client_for(token), INITIATED, card=card)
    gateway = RecordingGateway()
    monkeypatch.setattr(services, "_gateway", gateway)

    def authorize(index: int):
        # Each with its own Idempotency-Key; half of them pin the version they saw.
        headers = {"Idempotency-Key": f"authorize-{index}", **({"If-Match": '"1"'} if index % 2 else {})}
        return lambda: _act(_client_for(token), payment["id"], "authorize", {}, headers=headers)

    # when eight authorize requests race
    results = run_concurrently(*[authorize(index) for index in range(8)])
    # then one was authorized, the seven others refused: 409 or 412, never a second acquirer call
    assert [kind for kind, _ in results] == ["ok"] * 8, results
    responses = [value for _, value in results]
    [winner] = [r for r in responses if r.status_code == 200]
    assert (winner.json()["status"], winner.json()["version"]) == (AUTHORIZED, 2)
    losers = [r for r in responses if r is not winner]
    assert {r.status_code for r in losers} <= {409, 412}, [r.status_code for r in responses]
    for response in losers:
        code = "precondition_failed" if response.status_code == 412 else "invalid_transition"
        _assert_problem(response, response.status_code, code)
    assert len(gateway.requests) == 1
    assert gateway.requests[0].idempotency_key == f"{payment['id']}:1:1"
    # and the card was decrypted once, by the gateway
    [audit] = DetokenizationAudit.objects.filter(token=card)
    assert (audit.outcome, audit.channel) == ("granted", "gateway")
    assert [e["version"] for e in _events(_client_for(token), payment["id"])] == [1, 2]


@pytest.mark.django_db(transaction=True)
def test_concurrent_captures_with_the_same_if_match_one_wins_the_others_412(run_concurrently):
    # given an authorized payment at version 2
    token, _, card = _concurrent_user()
    payment = _payment(_client_for(token), AUTHORIZED, card=card)

    def capture():
        return _act(_client_for(token), payment["id"], "capture", {}, headers={"If-Match": '"2"'})

    # when four captures pinned to version 2 race
    responses = [value for kind, value in run_concurrently(*[capture] * 4) if kind == "ok"]
    # then one captures, and the three that lost are told their precondition failed, never 409
    assert sorted(r.status_code for r in responses) == [200, 412, 412, 412]
    for response in responses:
        if response.status_code == 412:
            _assert_problem(response, 412, "precondition_failed")
    assert [e["event_type"] for e in _events(_client_for(token), payment["id"])].count("PaymentCaptured") == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_captures_without_if_match_one_wins_the_others_see_it_captured(run_concurrently):
    token, _, card = _concurrent_user()
    client = _client_for(token)
    payment = _payment(client, AUTHORIZED, card=card)

    def capture():
        return _act(_client_for(token), payment["id"], "capture", {})

    responses = [value for kind, value in run_concurrently(*[capture] * 4) if kind == "ok"]
    assert sorted(r.status_code for r in responses) == [200, 409, 409, 409]
    for response in responses:
        if response.status_code == 409:
            _assert_problem(response, 409, "invalid_transition")
    assert [e["event_type"] for e in _events(client, payment["id"])].count("PaymentCaptured") == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_partial_refunds_without_if_match_both_succeed(run_concurrently):
    # given a captured payment of 1000
    token, _, card = _concurrent_user()
    client = _client_for(token)
    payment = _payment(client, CAPTURED, card=card)

    def refund(minor):
        return lambda: _act(_client_for(token), payment["id"], "refunds", {"amount": _money(minor)})

    # when two partial refunds that fit together race
    results = run_concurrently(refund(300), refund(400))
    # then both are made, one after the other
    assert [value.status_code for _, value in results] == [200, 200], results
    assert sorted(value.json()["version"] for _, value in results) == [4, 5]
    events = _events(client, payment["id"])
    assert [e["event_type"] for e in events][-2:] == ["PaymentRefunded", "PaymentRefunded"]
    assert sorted(e["data"]["refunded_amount"]["amount"] for e in events[-2:]) == [300, 400]


# the detokenisation audit outlives the request's transaction -----------------------------------------------
def test_authorize_answer_lost_502_rolls_back_but_keeps_the_decryption_audited(
    merchant_client, visa_token, monkeypatch
):
    # given an authorization whose answer is lost after the acquirer saw the card
    payment = _payment(merchant_client, INITIATED, card=visa_token)
    monkeypatch.setattr(services, "_gateway", RecordingGateway(lost_answers=1))
    # when it is sent with an Idempotency-Key, whose transaction rolls back on a 502
    response = _act(merchant_client, payment["id"], "authorize", {}, headers={"Idempotency-Key": "lost-answer"})
    # then nothing of the request stays but the record of the decryption
    _assert_problem(response, 502, "acquirer_unavailable")
    assert len(_events(merchant_client, payment["id"])) == 1
    assert not IdempotencyRecord.objects.filter(key="lost-answer").exists()
    [audit] = DetokenizationAudit.objects.filter(token=visa_token)
    assert (audit.outcome, audit.channel) == ("granted", "gateway")
    assert audit.purpose == f"authorization of payment {payment['id']}"


def test_authorize_409_rolls_back_but_keeps_the_decryption_audited(merchant_client, visa_token, monkeypatch):
    # given a payment that a writer bypassing the payment's lock cancels during every acquirer call (in the
    # request's own transaction, so the rollback takes the cancellations too)
    payment = _payment(merchant_client, INITIATED, card=visa_token)

    def cancelled_meanwhile(request):
        append_bypassing_the_lock(request.payment_id, lambda p: p.cancel(reason="raced", now=timezone.now()))

    gateway = RecordingGateway(during=cancelled_meanwhile)
    monkeypatch.setattr(services, "_gateway", gateway)
    # when the authorization loses every attempt
    response = _act(merchant_client, payment["id"], "authorize", {}, headers={"Idempotency-Key": "lost-race"})
    # then it answers 409, everything it did is rolled back, and the decryption is still on record, once: every
    # attempt had the same idempotency key
    _assert_problem(response, 409, "concurrency_conflict")
    assert len(gateway.requests) == services.COMMAND_ATTEMPTS
    assert [e["event_type"] for e in _events(merchant_client, payment["id"])] == ["PaymentInitiated"]
    assert DetokenizationAudit.objects.filter(token=visa_token, outcome="granted").count() == 1


def test_openapi_schema_is_served(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    schema = json.loads(client.get("/api/schema/?format=json").content)
    assert {
        "/api/v1/payments",
        "/api/v1/payments/{payment_id}/authorize",
        "/api/v1/payments/{payment_id}/capture",
        "/api/v1/payments/{payment_id}/refunds",
        "/api/v1/payments/{payment_id}/cancel",
        "/api/v1/payments/{payment_id}/events",
    } <= set(schema["paths"])


def test_api_docs_are_served(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    assert b"swagger" in response.content.lower()
