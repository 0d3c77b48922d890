"""The payments projection applies a range of the log in SQL (Projection.apply_range) and gets exactly what its
event handlers get, row for row and day for day: payments whose whole life falls in one range, payments split
across ranges, partial refunds twice in one range, declines and cancels, old PaymentInitiated v1 events."""

from __future__ import annotations

import json
import random
import uuid

import pytest
from django.db import connection

from fintech import eventstore
from fintech.money import Money
from payments import services as payments
from projections import cache, engine, selectors
from projections.engine import apply_events, projection_get, projection_run
from projections.models import PaymentView
from projections.payments import DAILY_TABLE, PAYMENT_TABLE, PAYMENTS
from vault.services import card_tokenize

pytestmark = pytest.mark.django_db(transaction=True)

ACTOR = "user:range-test"


def _jpy(minor: int) -> Money:
    return Money(minor, "JPY")


def _histories(merchant_id: str, count: int, seed: int) -> list[uuid.UUID]:
    rng = random.Random(seed)
    token = card_tokenize(card_number="4242424242424242", exp_month=12, exp_year=2035, merchant_id=merchant_id).token
    made = []
    for _ in range(count):
        # 2000-2999 minor units are declined by the simulator
        amount = rng.choice([1000, 1500, 2500, 4000, 9000])
        payment = payments.payment_initiate(
            merchant_id=merchant_id, amount=_jpy(amount), payment_method_token=token, actor=ACTOR
        )
        made.append(payment.id)
        path = rng.choice(["initiated", "cancel", "authorize", "cancel-authorized", "capture", "refund", "refunds"])
        if path == "initiated":
            continue
        if path == "cancel":
            payments.payment_cancel(payment_id=payment.id, actor=ACTOR)
            continue
        payment = payments.payment_authorize(payment_id=payment.id, actor=ACTOR)
        if payment.status != "authorized" or path == "authorize":
            continue
        if path == "cancel-authorized":
            payments.payment_cancel(payment_id=payment.id, actor=ACTOR)
            continue
        payments.payment_capture(payment_id=payment.id, actor=ACTOR, amount=_jpy(amount - 100))
        if path in ("refund", "refunds"):
            payments.payment_refund(payment_id=payment.id, amount=_jpy(300), actor=ACTOR)
        if path == "refunds":
            payments.payment_refund(payment_id=payment.id, amount=_jpy(amount - 400), actor=ACTOR)
    return made


def _v1_initiated(merchant_id: str) -> uuid.UUID:
    """A payment whose PaymentInitiated is of the seed's v1 shape (a bare token), written as old code wrote it."""
    payment_id = uuid.uuid4()
    data = {"payment_id": str(payment_id), "merchant_id": merchant_id, "amount": {"amount": 700, "currency": "JPY"}}
    data |= {"payment_method": "tok_legacy", "initiated_by": ACTOR}
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO fintech_event (event_id, aggregate_id, aggregate_type, event_type, event_version, event_data, "
            "version, occurred_at) VALUES (%s, %s, 'payment', 'PaymentInitiated', 1, %s, 1, now())",
            [uuid.uuid4(), payment_id, json.dumps(data)],
        )
    return payment_id


def _rows(table: str, column: str, values: list, columns: str = "*") -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM {table} WHERE {column} = ANY(%s) ORDER BY 1, 2", [values])  # noqa: S608
        return cursor.fetchall()


# The daily table's own id is a serial: which row took which number says nothing.
DAILY = "merchant_id, day, currency, captured_count, captured_amount, refunded_count, refunded_amount"


def _by_handlers() -> dict[str, str]:
    """Every event of the log applied by the projection's handlers into tables of their own."""
    projection = projection_get(PAYMENTS)
    tables = {table: f"{table}__handlers" for table in projection.tables}
    with connection.cursor() as cursor:
        for table, copy in tables.items():
            cursor.execute(f"CREATE TABLE {copy} (LIKE {table} INCLUDING ALL)")
    after = eventstore.Checkpoint()
    while True:
        batch = eventstore.read_batch(after=after, limit=1000, event_types=projection.handlers)
        if not batch.read:
            return tables
        apply_events(projection, tables, batch.events)
        after = batch.end


@pytest.mark.parametrize("batch_size", [3, 7, 500])
def test_ranges_in_sql_build_what_the_handlers_build(batch_size, monkeypatch, caplog):
    merchant_id = f"m-range-{uuid.uuid4().hex[:8]}"
    made = _histories(merchant_id, 40, seed=batch_size) + [_v1_initiated(merchant_id)]
    projection = projection_get(PAYMENTS)
    ranges = []
    monkeypatch.setattr(projection, "apply_range", lambda **kw: ranges.append(kw) or _apply(**kw))
    projection_run(name=PAYMENTS, batch_size=batch_size)
    assert ranges, "the ranges went through the handlers"
    assert "applied by its handlers" not in caplog.text
    expected = _by_handlers()
    try:
        assert _rows(PAYMENT_TABLE, "payment_id", made) == _rows(expected[PAYMENT_TABLE], "payment_id", made)
        daily = _rows(DAILY_TABLE, "merchant_id", [merchant_id], DAILY)
        assert daily == _rows(expected[DAILY_TABLE], "merchant_id", [merchant_id], DAILY)
        assert daily, "nothing was captured"
    finally:
        with connection.cursor() as cursor:
            for table in expected.values():
                cursor.execute(f"DROP TABLE {table}")


_apply = projection_get(PAYMENTS).apply_range


def test_a_range_the_server_cannot_apply_goes_to_the_handlers(monkeypatch, caplog):
    merchant_id = f"m-range-{uuid.uuid4().hex[:8]}"
    made = _histories(merchant_id, 5, seed=1)

    def broken(**kwargs):
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 / 0")

    monkeypatch.setattr(projection_get(PAYMENTS), "apply_range", broken)
    projection_run(name=PAYMENTS)
    assert "applied by its handlers" in caplog.text
    assert len(_rows(PAYMENT_TABLE, "payment_id", made)) == 5


def test_an_event_version_the_sql_does_not_know_goes_to_the_handlers(monkeypatch):
    monkeypatch.setattr(projection_get(PAYMENTS), "range_versions", {})
    called = []
    monkeypatch.setattr(engine, "apply_located", lambda *args: called.append(args) or set())
    merchant_id = f"m-range-{uuid.uuid4().hex[:8]}"
    _histories(merchant_id, 1, seed=2)
    projection_run(name=PAYMENTS)
    assert called


def test_documents_built_by_the_server_are_payment_document():
    merchant_id = f"m-range-{uuid.uuid4().hex[:8]}"
    made = _histories(merchant_id, 30, seed=3) + [_v1_initiated(merchant_id)]
    projection_run(name=PAYMENTS)
    with connection.cursor() as cursor:
        # a time on the whole second: isoformat() leaves out the fraction
        cursor.execute(
            "UPDATE projections_payment SET created_at = date_trunc('second', created_at) WHERE payment_id = %s",
            [made[0]],
        )
    built = selectors.payment_documents_json(payment_ids=made)
    rows = PaymentView.objects.filter(payment_id__in=made)
    assert {str(row.payment_id): selectors.payment_document(row) for row in rows} == {
        payment_id: json.loads(document) for payment_id, (document, _) in built.items()
    }
    assert "." not in json.loads(built[str(made[0])][0])["created_at"]
    # and the refresh puts them in Redis as the cache serves them
    cache.payments_refresh({str(payment_id) for payment_id in made})
    for payment_id in made:
        assert cache.payment_cached(payment_id)[0] == json.loads(built[str(payment_id)][0])
