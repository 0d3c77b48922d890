import uuid

import pytest
from django.core.management import call_command

from fintech.money import Money
from payments import services as payments
from projections import selectors
from projections.engine import projection_run
from projections.models import MerchantDailySummary, PaymentView, ProjectionState
from vault.models import Card
from vault.services import card_tokenize

# Projections read only committed events (the log below the oldest running transaction): these tests commit.
pytestmark = pytest.mark.django_db(transaction=True)

ACTOR = "user:proj"


@pytest.fixture
def merchant():
    # Events are never flushed between tests, so each test works under a merchant of its own.
    return f"m-proj-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def token(merchant):
    return card_tokenize(card_number="4242424242424242", exp_month=12, exp_year=2035, merchant_id=merchant).token


def _pay(token, minor=5000, currency="JPY"):
    merchant = Card.objects.get(token=token).merchant_id
    return payments.payment_initiate(
        merchant_id=merchant, amount=Money(minor, currency), payment_method_token=token, actor=ACTOR
    )


def _captured(token, minor=5000, capture=None):
    payment = _pay(token, minor)
    payments.payment_authorize(payment_id=payment.id, actor=ACTOR)
    return payments.payment_capture(
        payment_id=payment.id, amount=Money(capture, "JPY") if capture else None, actor=ACTOR
    )


def test_projection_run_builds_payment_rows_from_events(token, merchant):
    # given payments in several states
    initiated = _pay(token, 1200)
    captured = _captured(token, 7000, capture=6000)
    payments.payment_refund(payment_id=captured.id, amount=Money(1000, "JPY"), actor=ACTOR)
    declined = _pay(token, 2500)
    payments.payment_authorize(payment_id=declined.id, actor=ACTOR)
    # when the projection runs
    projection_run(name="payments")
    # then each row says what the events say
    rows = {row.payment_id: row for row in PaymentView.objects.filter(merchant_id=merchant)}
    assert rows[initiated.id].status == "initiated"
    refunded = rows[captured.id]
    assert (refunded.status, refunded.amount, refunded.authorized_amount) == ("partially_refunded", 7000, 7000)
    assert (refunded.captured_amount, refunded.refunded_amount, refunded.version) == (6000, 1000, 4)
    assert refunded.captured_at
    assert refunded.refunded_at
    assert refunded.authorized_at
    assert (rows[declined.id].status, rows[declined.id].failure_code) == ("failed", "2500")
    summary = MerchantDailySummary.objects.get(merchant_id=merchant, currency="JPY")
    assert (summary.captured_count, summary.captured_amount) == (1, 6000)
    assert (summary.refunded_count, summary.refunded_amount) == (1, 1000)


def test_projection_run_twice_applies_each_event_once(token, merchant):
    captured = _captured(token)
    projection_run(name="payments")
    before = ProjectionState.objects.get(name="payments").events_applied
    # when it runs again with nothing new, and then after one more event
    projection_run(name="payments")
    payments.payment_refund(payment_id=captured.id, amount=Money(5000, "JPY"), actor=ACTOR)
    projection_run(name="payments", batch_size=1)
    # then only the new event was applied, once
    assert ProjectionState.objects.get(name="payments").events_applied == before + 1
    row = PaymentView.objects.get(payment_id=captured.id)
    assert (row.status, row.refunded_amount) == ("refunded", 5000)
    summary = MerchantDailySummary.objects.get(merchant_id=merchant, currency="JPY")
    assert (summary.captured_count, summary.refunded_count, summary.refunded_amount) == (1, 1, 5000)


def test_payment_get_reads_cache_then_table(token, merchant):
    captured = _captured(token)
    projection_run(name="payments")
    # given the cache was refreshed after commit, a read comes from Redis
    document, source = selectors.payment_get(payment_id=captured.id, merchant_id=merchant)
    assert source == "cache"
    assert document["captured_amount"] == {"amount": 5000, "currency": "JPY"}
    # and another merchant does not see it, from the cache either
    assert selectors.payment_get(payment_id=captured.id, merchant_id="m-other") is None


def test_replay_projection_rebuilds_same_rows(token, merchant):
    for minor in (1000, 2000, 3500):
        _captured(token, minor + 1) if minor != 2000 else _pay(token, minor)
    projection_run(name="payments")
    live = sorted(PaymentView.objects.filter(merchant_id=merchant).values_list("payment_id", "status", "version"))
    # when the projection is replayed into fresh tables and swapped in
    call_command("replay_projection", "payments")
    # then the rows are the same, and the checkpoint is at the head
    replayed = sorted(PaymentView.objects.filter(merchant_id=merchant).values_list("payment_id", "status", "version"))
    assert replayed == live
    assert projection_run(name="payments") == 0


def test_projection_status_and_rebuild_cache_commands_report(token, capsys):
    _captured(token)
    projection_run(name="payments")
    call_command("projection_status")
    call_command("rebuild_cache", "payments")
    out = capsys.readouterr().out
    assert "payments: checkpoint" in out
    assert "lag 0 events" in out
    assert "cache entries written" in out


def _names(table: str) -> dict[str, list[str]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s ORDER BY 1", [table])
        indexes = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass ORDER BY 1", [table])
        constraints = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            "SELECT pg_get_serial_sequence(attrelid::regclass::text, attname) FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attname = 'id'",
            [table],
        )
        sequences = [row[0] for row in cursor.fetchall()]
    return {"indexes": indexes, "constraints": constraints, "sequences": sequences}


def test_replay_keeps_index_constraint_and_sequence_names(token, merchant):
    tables = ("projections_payment", "projections_merchant_daily")
    before = {table: _names(table) for table in tables}
    assert "projections_payment_list" in before["projections_payment"]["indexes"]
    assert "projections_merchant_daily_key" in before["projections_merchant_daily"]["constraints"]
    # when the projection is replayed and its fresh tables swapped in
    call_command("replay_projection", "payments")
    # then the tables answer to the names the migrations gave them
    assert {table: _names(table) for table in tables} == before
    # and the id sequence still works after the swap
    from django.utils import timezone

    row = MerchantDailySummary.objects.create(merchant_id=merchant, day=timezone.now().date(), currency="EUR")
    assert row.id


def test_replay_that_fails_leaves_the_live_tables_and_no_fresh_ones(token, merchant, monkeypatch):
    from django.core.management.base import CommandError
    from django.db import connection

    from projections import engine

    _captured(token)
    projection_run(name="payments")
    live = PaymentView.objects.count()
    projection = engine.projection_get("payments")

    def broken(cursor, tables, recorded):
        raise RuntimeError("handler bug")

    monkeypatch.setitem(projection.handlers, "PaymentCaptured", broken)
    # when a handler fails during the replay, the command says where and why
    with pytest.raises(CommandError, match="stopped at event .*handler bug.*live tables are unchanged"):
        call_command("replay_projection", "payments")
    # and the live tables still serve, the fresh ones are gone
    assert PaymentView.objects.count() == live
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_tables WHERE tablename LIKE '%%__replay'")
        assert cursor.fetchone()[0] == 0


def test_cache_refresh_never_replaces_a_newer_version(token, merchant):
    import json

    from django_redis import get_redis_connection

    from projections import cache

    payment = _pay(token)
    projection_run(name="payments")
    key = cache.payment_key(payment.id)
    redis = get_redis_connection("default")
    # given a newer version already in the cache (a later run refreshed first)
    newer = {**json.loads(redis.get(key)), "version": 99, "status": "captured"}
    redis.set(key, json.dumps(newer))
    # when a slower run refreshes the older row, the newer entry stays
    cache.payments_refresh({str(payment.id)})
    assert json.loads(redis.get(key))["version"] == 99
    # and an entry at an older version is replaced, with the one-hour TTL
    redis.set(key, json.dumps({**newer, "version": 0}))
    cache.payments_refresh({str(payment.id)})
    assert json.loads(redis.get(key))["version"] == 1
    assert 3500 < redis.ttl(key) <= 3600
