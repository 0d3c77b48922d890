import io
import re

import pytest
from django.core.management import call_command
from drf_spectacular.generators import SchemaGenerator
from rest_framework.exceptions import ValidationError

from fintech.api import MoneyField
from fintech.money import Money


def test_openapi_schema_generates_without_warnings_outcome():
    # The documented contract must be complete: a field spectacular cannot type would show as a string.
    out = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    schema = out.getvalue()
    assert "/api/v1/payments/{payment_id}/capture:" in schema
    assert "/capture/:" not in schema
    assert "PaymentCaptureInput" in schema


def _schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def _operations(schema: dict):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            yield f"{method.upper()} {path}", operation


def test_every_operation_documents_its_problems_as_problem_json():
    schema = _schema()
    assert set(schema["components"]["schemas"]["Problem"]["required"]) == {"type", "title", "status", "code", "detail"}
    for name, operation in _operations(schema):
        responses = operation["responses"]
        problems = {status for status in responses if status.startswith(("4", "5"))}
        assert {"401", "403", "429"} <= problems, name
        if "{" in name:
            assert "404" in problems, name
        if name.startswith("POST"):
            assert {"400", "415"} <= problems, name
        for status in problems:
            assert list(responses[status]["content"]) == ["application/problem+json"], (name, status)


def test_operations_document_their_domain_statuses_and_headers():
    operations = dict(_operations(_schema()))
    authorize = operations["POST /api/v1/payments/{payment_id}/authorize"]
    assert {"409", "412", "422", "502"} <= set(authorize["responses"])
    assert {p["name"] for p in authorize["parameters"]} == {"payment_id", "If-Match", "Idempotency-Key"}
    assert "412" not in operations["POST /api/v1/transfers"]["responses"]
    assert "insufficient_funds" in operations["POST /api/v1/transfers"]["responses"]["422"]["description"]
    assert "409" in operations["POST /api/v1/holds/{hold_id}/release"]["responses"]
    detokenize = operations["POST /api/v1/vault/tokens/{token}/detokenize"]
    assert "422" not in detokenize["responses"]  # not idempotent: a card number is never stored
    assert [p["schema"]["pattern"] for p in detokenize["parameters"]] == ["^tok_[A-Za-z0-9]{1,60}$"]
    for name, operation in operations.items():
        if name.startswith("GET") and "{" not in name and not operation.get("parameters"):
            assert "400" not in operation["responses"], name


def test_request_schemas_say_what_validation_enforces():
    schemas = _schema()["components"]["schemas"]
    for money in (schemas["Money"], schemas["PositiveMoney"]):
        assert money["additionalProperties"] is False
        assert money["properties"]["amount"]["maximum"] == 2**53 - 1
    assert schemas["PositiveMoney"]["properties"]["amount"]["minimum"] == 1
    assert "JPY" in schemas["Currency"]["enum"]
    assert schemas["PaymentCreateInput"]["properties"]["amount"] == {"$ref": "#/components/schemas/PositiveMoney"}
    description = schemas["PaymentCreateInput"]["properties"]["description"]
    assert description["maxLength"] == 500
    assert description["not"] == {"pattern": r"\u0000"}  # blank allowed, NUL not
    assert "oneOf" not in description
    purpose = schemas["VaultDetokenizeInput"]["properties"]["purpose"]
    assert not re.fullmatch(purpose["pattern"], "  ")
    assert re.fullmatch(purpose["pattern"], " chargeback ")
    assert schemas["TransferCreateInput"]["properties"]["from_account"]["format"] == "uuid"


def test_money_field_refuses_extra_fields():
    # what additionalProperties: false promises
    field = MoneyField()
    with pytest.raises(ValidationError):
        field.run_validation({"amount": 1, "currency": "JPY", "note": "x"})
    assert field.run_validation({"amount": 1, "currency": "JPY"}) == Money(1, "JPY")
