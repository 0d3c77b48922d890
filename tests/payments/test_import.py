"""`manage.py import_payments FILE.jsonl`: historical payments land by COPY with their original times, under the
live path's rules; a rejected line is named with its reason and the others land; a chunk is whole or nothing
(the log's own stream check refusing it); a file imported twice duplicates nothing; the projections and the
ledger take the events like live ones."""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid

import pytest
from django.core.management import call_command

from fintech import eventstore, partitions
from fintech.db import raw_cursor
from payments import imports
from payments.imports import payments_import
from projections.engine import projection_run, projections
from projections.models import PaymentView
from vault.services import card_tokenize

pytestmark = pytest.mark.django_db(transaction=True)

PAN = "4242424242424242"


@pytest.fixture
def merchant():
    merchant_id = f"m-import-{uuid.uuid4().hex[:8]}"
    token = card_tokenize(card_number=PAN, exp_month=12, exp_year=2035, merchant_id=merchant_id).token
    return merchant_id, token


def _at(days_back: float) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(days=days_back)).isoformat()


def _line(merchant_id: str, token: str, *history, amount: int = 5000, currency: str = "JPY", **extra) -> dict:
    return {
        "payment_id": str(uuid.uuid4()),
        "merchant_id": merchant_id,
        "amount": {"amount": amount, "currency": currency},
        "payment_method_token": token,
        "description": "from the old processor",
        "initiated_at": _at(150),
        "history": list(history),
        **extra,
    }


def _jsonl(*lines) -> list[str]:
    return [line if isinstance(line, str) else json.dumps(line) for line in lines]


CAPTURED = [
    {"type": "authorized", "at": _at(149.9), "authorization_code": "OLD-1"},
    {"type": "captured", "at": _at(149)},
]


def test_payments_land_with_their_original_times_and_project_like_live_ones(merchant):
    merchant_id, token = merchant
    refunded = _line(
        merchant_id,
        token,
        *CAPTURED,
        {"type": "refunded", "at": _at(120), "amount": {"amount": 2000, "currency": "JPY"}},
    )
    failed = _line(merchant_id, token, {"type": "failed", "at": _at(149), "reason": "declined", "response_code": "05"})
    cancelled = _line(merchant_id, token, {"type": "cancelled", "at": _at(148), "reason": "customer"})
    report = payments_import(_jsonl(refunded, failed, cancelled), actor="import:test", source="t.jsonl")
    assert (report.payments, report.events, report.rejected) == (3, 8, [])
    recorded = eventstore.load(uuid.UUID(refunded["payment_id"]))
    assert [r.event_type for r in recorded] == [
        "PaymentInitiated",
        "PaymentAuthorized",
        "PaymentCaptured",
        "PaymentRefunded",
    ]
    assert [r.version for r in recorded] == [1, 2, 3, 4]
    assert recorded[0].occurred_at == dt.datetime.fromisoformat(refunded["initiated_at"])
    assert recorded[0].metadata["actor"] == "import:test"
    # in the old month's own partition, not the default one
    month = partitions.month_start(recorded[0].occurred_at.date())
    assert partitions.partition_name(month) in partitions.existing_partitions()
    for name in projections():
        projection_run(name=name)
    statuses = dict(PaymentView.objects.filter(merchant_id=merchant_id).values_list("payment_id", "status").iterator())
    assert statuses == {
        uuid.UUID(refunded["payment_id"]): "partially_refunded",
        uuid.UUID(failed["payment_id"]): "failed",
        uuid.UUID(cancelled["payment_id"]): "cancelled",
    }
    with raw_cursor() as cursor:
        cursor.execute("SELECT count(*) FROM projections_projectionstate WHERE error <> ''")
        assert cursor.fetchone()[0] == 0


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda m, t: _line(m, t, {"type": "captured", "at": _at(149)}), "capture"),
        (
            lambda m, t: _line(
                m, t, *CAPTURED, {"type": "refunded", "at": _at(1), "amount": {"amount": 9000, "currency": "JPY"}}
            ),
            "cannot refund",
        ),  # noqa: E501
        (
            lambda m, t: _line(
                m, t, *CAPTURED, {"type": "refunded", "at": _at(1), "amount": {"amount": 10, "currency": "USD"}}
            ),
            "JPY",
        ),  # noqa: E501
        (lambda m, t: _line(m, "tok_" + "0" * 24), "unknown or another merchant's"),
        (lambda m, t: _line("m-someone-else", t), "unknown or another merchant's"),
        (lambda m, t: _line(m, t, initiated_at=_at(-1)), "future"),
        (lambda m, t: _line(m, t, {"type": "authorized", "at": _at(151)}), "go back"),
        (lambda m, t: _line(m, t, amount=0), "positive"),
        (lambda m, t: _line(m, t, amount=1.5), "amount"),
        (lambda m, t: _line(m, t, initiated_at="2025-01-01T00:00:00"), "no time zone"),
        (lambda m, t: {k: v for k, v in _line(m, t).items() if k != "payment_id"}, "payment_id is required"),
        (lambda m, t: _line(m, t, payment_id="not-a-uuid"), "payment_id must be a UUID"),
        (lambda m, t: _line(m, t, surprise=1), "unknown fields"),
        (lambda m, t: _line(m, t, {"type": "teleported", "at": _at(149)}), "unknown history type"),
        (lambda m, t: "{not json", "not a JSON object"),
        (lambda m, t: _line(m, t, description=f"card {PAN}"), "card number"),
    ],
)
def test_a_line_breaking_a_rule_is_rejected_with_its_reason_and_the_others_land(merchant, change, reason):
    merchant_id, token = merchant
    good, bad = _line(merchant_id, token, *CAPTURED), change(merchant_id, token)
    report = payments_import(_jsonl(good, bad), actor="import:test", source="t.jsonl")
    assert report.payments == 1
    assert [r.line for r in report.rejected] == [2]
    assert reason in report.rejected[0].reason
    assert PAN not in report.rejected[0].reason


def test_a_file_imported_twice_is_refused_line_by_line_the_second_time(merchant):
    merchant_id, token = merchant
    lines = _jsonl(*[_line(merchant_id, token, *CAPTURED) for _ in range(3)])
    assert payments_import(lines, actor="a", source="f").payments == 3
    again = payments_import(lines, actor="a", source="f")
    assert again.payments == 0
    assert [r.line for r in again.rejected] == [1, 2, 3]
    assert all("exists already" in r.reason for r in again.rejected)
    ids = [uuid.UUID(json.loads(line)["payment_id"]) for line in lines]
    with raw_cursor() as cursor:
        cursor.execute("SELECT count(*) FROM fintech_event WHERE aggregate_id = ANY(%s)", [ids])
        assert cursor.fetchone()[0] == 9


def test_a_chunk_is_written_whole_or_not_at_all(merchant, monkeypatch):
    merchant_id, token = merchant
    taken = _line(merchant_id, token)
    payments_import(_jsonl(taken), actor="a", source="f")
    # The check before the COPY misses it (a payment created meanwhile): the log's stream check refuses the chunk.
    monkeypatch.setattr(imports, "_existing_streams", lambda stream_ids: set())
    others = [_line(merchant_id, token, *CAPTURED) for _ in range(2)]
    report = payments_import(_jsonl(others[0], taken, others[1]), actor="a", source="f", chunk_lines=3)
    assert report.payments == 0
    assert [r.line for r in report.rejected] == [1, 2, 3]
    assert all("not written" in r.reason for r in report.rejected)
    with raw_cursor() as cursor:
        ids = [uuid.UUID(line["payment_id"]) for line in others]
        cursor.execute("SELECT count(*) FROM fintech_event WHERE aggregate_id = ANY(%s)", [ids])
        assert cursor.fetchone()[0] == 0


def test_events_of_an_archived_month_are_refused(merchant, monkeypatch):
    merchant_id, token = merchant
    line = _line(merchant_id, token)
    month = partitions.month_start(dt.datetime.fromisoformat(line["initiated_at"]).date())
    monkeypatch.setattr(eventstore, "archived_months", lambda: {month})
    report = payments_import(_jsonl(line), actor="a", source="f")
    assert report.payments == 0
    assert "archived month" in report.rejected[0].reason


def test_the_command_reports_rejected_lines_and_exits_non_zero(merchant, tmp_path):
    merchant_id, token = merchant
    path = tmp_path / "payments.jsonl"
    path.write_text(
        "\n".join(_jsonl(_line(merchant_id, token, *CAPTURED), _line(merchant_id, token, description=PAN))) + "\n"
    )
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("import_payments", str(path), "--by", "ops", stdout=out, stderr=err)
    assert exited.value.code == 1
    assert "imported 1 payments (3 events) of 2 lines" in out.getvalue()
    assert "line 2: it holds a card number" in err.getvalue()
    assert PAN not in err.getvalue() + out.getvalue()
