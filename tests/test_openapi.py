import io

from django.core.management import call_command


def test_openapi_schema_generates_without_warnings_outcome():
    # The documented contract must be complete: a field spectacular cannot type would show as a string.
    out = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    schema = out.getvalue()
    assert "/api/v1/payments/{payment_id}/capture:" in schema
    assert "/capture/:" not in schema
    assert "PaymentCaptureInput" in schema
