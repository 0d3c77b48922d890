"""Hostile input never reaches a 5xx: every refusal is a 4xx application/problem+json with a stable code."""

from __future__ import annotations

import json

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from accounts.services import api_token_issue
from fintech.parsers import MAX_BODY_BYTES, MAX_DEPTH
from vault.services import role_groups_ensure

PROBLEM = "application/problem+json"
DEEP_ARRAY = b"[" * 50_000 + b"]" * 50_000
DEEP_OBJECT = b'{"a":' * 50_000 + b"1" + b"}" * 50_000
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


def _post_paths() -> list[str]:
    """Every POST operation of the documented API, its path parameters filled with ids that exist nowhere."""
    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    return [
        path.replace("{payment_id}", UNKNOWN_ID)
        .replace("{account_id}", UNKNOWN_ID)
        .replace("{hold_id}", UNKNOWN_ID)
        .replace("{token}", "tok_unknown")
        for path, operations in sorted(paths.items())
        if "post" in operations
    ]


@pytest.fixture
def every_role_client(db) -> APIClient:
    """A user of merchant m-alpha in the finance and cde groups: no endpoint refuses it before reading the body."""
    role_groups_ensure()
    api_token_issue(username="all-roles", merchant_id="m-alpha", group="finance")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_issue(username='all-roles', group='cde')}")
    return client


def _assert_problem(response, http_status: int, code: str | None = None) -> dict:
    assert response.status_code == http_status, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == http_status
    if code is not None:
        assert body["code"] == code, body
    return body


def test_post_paths_cover_every_command():
    # given the schema; then the parametrised tests below really walk every POST of the API
    assert len(_post_paths()) == 15


@pytest.mark.parametrize("path", _post_paths())
@pytest.mark.parametrize("body", [DEEP_ARRAY, DEEP_OBJECT], ids=["array", "object"])
def test_post_deeply_nested_body_is_parse_error(every_role_client, path, body):
    # given a body nested 50,000 levels (the standard parser recursed into RecursionError: a 500)
    # when it is posted, with an Idempotency-Key so that even the commands without a body read it
    response = every_role_client.generic(
        "POST", path, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="deep-1"
    )
    # then
    _assert_problem(response, 400, "parse_error")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), "nested deeper"),
        (b'{"amount": NaN}', "NaN"),
        (b'{"amount": -Infinity}', "Infinity"),
        (b'{"amount": 1e400}', "out of range"),
        (b'{"amount": ' + b"9" * 5000 + b"}", "digits"),
        (b'{"reason": "a", "reason": "b"}', "duplicate key"),
        (b'{"reason": "\\ud800"}', "lone surrogate"),
        (b'{"reason": "caf\xe9"}', "not UTF-8"),
        (b'{"reason": "' + b"a" * MAX_BODY_BYTES + b'"}', "larger than"),
        (b'{"reason": "unterminated', "Unterminated string"),
        (b"\xef\xbb\xbf{}", "BOM"),
    ],
)
def test_post_malformed_json_is_parse_error(merchant_client, body, reason):
    # when
    response = merchant_client.generic(
        "POST", f"/api/v1/payments/{UNKNOWN_ID}/cancel", body, content_type="application/json"
    )
    # then
    assert reason in _assert_problem(response, 400, "parse_error")["detail"]


def test_post_brackets_inside_strings_do_not_count_as_nesting(merchant_client):
    # given a reason made of brackets, deeper than MAX_DEPTH if they counted
    reason = "[{" * 200 + '\\"'
    # when
    response = merchant_client.post(f"/api/v1/payments/{UNKNOWN_ID}/cancel", {"reason": reason}, format="json")
    # then parsed and answered by the view
    _assert_problem(response, 404, "not_found")


def test_post_json_in_another_charset_is_read_as_utf8_and_refused(merchant_client):
    # when
    response = merchant_client.generic(
        "POST",
        f"/api/v1/payments/{UNKNOWN_ID}/cancel",
        '{"reason": "x"}'.encode("utf-16"),
        content_type="application/json; charset=utf-16",
    )
    # then
    _assert_problem(response, 400, "parse_error")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_post_other_content_type_is_415(merchant_client, content_type):
    # when
    response = merchant_client.generic("POST", "/api/v1/payments", b"amount=1", content_type=content_type)
    # then
    _assert_problem(response, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("description", "order\u0000 42"),
        ("description", "order \ud83d"),
        ("amount", {"amount": 10**30, "currency": "JPY"}),
        ("amount", {"amount": 1000, "currency": "JPY", "extra": 1}),
        ("amount", {"amount": 1000, "currency": "\u0000PY"}),
        ("payment_method", {"token": "tok\u0000"}),
    ],
)
def test_create_payment_hostile_field_is_4xx(merchant_client, field, value):
    # given
    body = {"amount": {"amount": 1000, "currency": "JPY"}, "payment_method": {"token": "tok_x"}, field: value}
    # when (encoded here: the test client's own renderer cannot encode a lone surrogate)
    response = merchant_client.generic(
        "POST", "/api/v1/payments", json.dumps(body), content_type="application/json", HTTP_IDEMPOTENCY_KEY="hostile-1"
    )
    # then
    _assert_problem(response, 400)


@pytest.mark.parametrize(
    "query",
    [
        "limit=99999999999999999999",
        "amount_min=99999999999999999999",
        "amount_max=-1",
        "cursor=garbage",
        "cursor=%00",
        "currency=%00",
        "created_from=%00",
        "status=%ED%A0%80",
    ],
)
def test_list_payments_hostile_query_is_400(merchant_client, query):
    # when
    response = merchant_client.get(f"/api/v1/payments?{query}")
    # then
    if response.status_code != 200:  # an out-of-range filter may simply match nothing
        _assert_problem(response, 400, "validation_error")
    else:
        assert query.startswith("amount_min")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/payments/%00",
        "/api/v1/payments/not-a-uuid/events",
        "/api/v1/payments/%ED%A0%80",
        "/api/v1/accounts/%00/balance",
        "/api/v1/accounts/99999999999999999999/entries",
    ],
)
def test_get_invalid_id_in_path_is_404(merchant_client, path):
    _assert_problem(merchant_client.get(path), 404, "not_found")


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("HTTP_IF_MATCH", '"' + "9" * 10_000 + '"'),
        ("HTTP_IF_MATCH", "\u0000"),
        ("HTTP_IDEMPOTENCY_KEY", "k" * 10_000),
        ("HTTP_IDEMPOTENCY_KEY", "key\u0000"),
    ],
)
def test_capture_hostile_header_is_400(merchant_client, header, value):
    # when
    response = merchant_client.post(f"/api/v1/payments/{UNKNOWN_ID}/capture", {}, format="json", **{header: value})
    # then
    _assert_problem(response, 400, "validation_error")


def test_open_account_with_a_floor_above_zero_is_400(every_role_client):
    # given a new account starts at 0, a floor above it broke the table's check constraint: a 500
    body = {"owner_type": "merchant", "owner_id": "m-alpha", "currency": "AED", "kind": "merchant_payable", "floor": 1}
    # when
    response = every_role_client.post("/api/v1/accounts", body, format="json")
    # then
    _assert_problem(response, 400, "validation_error")
