"""`import_payments`' rate beside a raw COPY of the same rows, in one process on the bench database.

A JSONL file of `payments` captured payments (3 events each, initiated five months back, one vault token of
one merchant) is imported through payments.imports (parse, decide by the aggregate, check the card, COPY in
chunks, the log's stream trigger on every row). The raw figure COPYs the same event rows, as the import wrote
them (their positions included), into a bare copy of the log's table: no trigger, no parsing, no decision.

Call only after django.setup() on the bench database.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Callable

import psycopg

TARGET_EVENTS_PER_SECOND = 10_000
_COLUMNS = (
    "position, event_id, aggregate_id, aggregate_type, event_type, event_version, event_data, metadata, version, "
    "occurred_at"
)


def _lines(payments: int, merchant_id: str, token: str) -> list[str]:
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=150)
    lines = []
    for index in range(payments):
        at = start + dt.timedelta(seconds=index)
        lines.append(
            json.dumps(
                {
                    "payment_id": str(uuid.uuid4()),
                    "merchant_id": merchant_id,
                    "amount": {"amount": 1000 + index % 5000, "currency": "JPY"},
                    "payment_method_token": token,
                    "initiated_at": at.isoformat(),
                    "history": [
                        {"type": "authorized", "at": (at + dt.timedelta(seconds=1)).isoformat()},
                        {"type": "captured", "at": (at + dt.timedelta(seconds=2)).isoformat()},
                    ],
                }
            )
        )
    return lines


def _raw_copy(url: str, payment_ids: list[uuid.UUID]) -> tuple[int, float]:
    with psycopg.connect(url, autocommit=True) as conn:
        data = bytearray()
        with conn.cursor().copy(
            f"COPY (SELECT {_COLUMNS} FROM fintech_event WHERE aggregate_id = ANY(%s)) TO STDOUT",  # noqa: S608
            [payment_ids],
        ) as copy:
            for chunk in copy:
                data += chunk
        conn.execute("CREATE TABLE bench_import_copy (LIKE fintech_event INCLUDING DEFAULTS)")
        try:
            started = time.perf_counter()
            with conn.cursor().copy(f"COPY bench_import_copy ({_COLUMNS}) FROM STDIN") as copy:  # noqa: S608
                copy.write(bytes(data))
            seconds = time.perf_counter() - started
        finally:
            conn.execute("DROP TABLE bench_import_copy")
    return data.count(b"\n"), seconds


def run(*, url: str, payments: int, rounds: int, out: Callable[[str], None]) -> float:
    from accounts.services import merchant_get_or_create
    from payments.imports import payments_import
    from vault.services import card_tokenize

    merchant_id = merchant_get_or_create(merchant_id=f"m-import-{uuid.uuid4().hex[:8]}").id
    token = card_tokenize(card_number="4242424242424242", exp_month=12, exp_year=2035, merchant_id=merchant_id).token
    imported, raws = [], []
    for _ in range(rounds):
        lines = _lines(payments, merchant_id, token)
        started = time.perf_counter()
        report = payments_import(lines, actor="import:bench", source="bench.jsonl")
        seconds = time.perf_counter() - started
        if report.rejected or report.events != 3 * payments:
            raise RuntimeError(f"the bench's import rejected lines: {report.rejected[:3]}")
        imported.append(report.events / seconds)
        ids = [uuid.UUID(json.loads(line)["payment_id"]) for line in lines]
        rows, raw_seconds = _raw_copy(url, ids)
        raws.append(rows / raw_seconds)
    from tests.bench.projections import _median

    rate, raw = _median(imported), _median(raws)
    out("")
    events = 3 * payments
    out(f"import_payments, 1 process: {payments:,} captured payments ({events:,} events), {rounds} rounds (median)")
    out(f"{'':<12}{'events/s':>22}{'raw COPY rows/s':>22}{'ratio':>10}")
    out(f"{'import':<12}{rate:>22,.0f}{raw:>22,.0f}{rate / raw:>10.4f}   (raw: the same rows into a bare table)")
    verdict = "MET" if rate >= TARGET_EVENTS_PER_SECOND else "NOT MET"
    out(f"  import: target >= {TARGET_EVENTS_PER_SECOND:,} events/s: {verdict}")
    return rate
