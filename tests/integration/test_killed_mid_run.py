"""Work killed with SIGKILL in the middle of a run: a settlement run inside the Celery worker, a key rotation in
a process of its own. Each run is stopped at a known point (it waits for a row lock this test holds on something
it needs after it has written part of its work, as pg_stat_activity shows) and killed there; the restart then
finishes the work, with nothing applied twice."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psycopg
import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

from fintech.money import Money
from ledger import bookings
from ledger.models import Account, JournalEntry, Posting, SettledPayment, SettlementBatch, SettlementLine
from ledger.tasks import settlement_run_task
from tests.integration.conftest import WORKER_APPLICATION_NAME, database_url, wait_for, wait_for_sessions_gone
from tests.integration.helpers import unique_merchant_id
from tests.vault.helpers import EXP_MONTH, EXP_YEAR, pan_random
from vault import keys
from vault import services as vault
from vault.models import Card, SubjectKey

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SETTLEMENT_TASK = "accounts.tasks.settlement_run_task"
# The worker hands out a dead worker's unacknowledged message again once it is older than this.
VISIBILITY_TIMEOUT_SECONDS = 1
ROTATE_APPLICATION_NAME = "integration-rotate-keys"
SYSTEM = vault.SystemActor("integration")


@contextmanager
def _row_locked(sql: str, params: list) -> Iterator[psycopg.Connection]:
    """A session of the test's own holding the row locks of `sql` (a SELECT ... FOR UPDATE) until the block ends."""
    barrier = psycopg.connect(**connection.get_connection_params())
    try:
        assert barrier.execute(sql, params).fetchall(), "nothing to lock"
        yield barrier
    finally:
        barrier.rollback()
        barrier.close()


def _waiting_on(barrier: psycopg.Connection, application_name: str, query: str, *, wrote: tuple[str, ...] = ()):
    """The session of `application_name` running `query` (a regular expression) and waiting for the barrier's
    lock, once it holds the locks of a writer on every table of `wrote`."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.pid FROM pg_stat_activity a WHERE a.datname = current_database() AND a.application_name = %s "
            "AND a.wait_event_type = 'Lock' AND a.query ~ %s AND %s = ANY(pg_blocking_pids(a.pid)) "
            "AND (SELECT count(*) FROM pg_locks l WHERE l.pid = a.pid AND l.granted AND l.mode = 'RowExclusiveLock' "
            "     AND l.relation::regclass::text = ANY(%s)) = %s",
            [application_name, query, barrier.info.backend_pid, list(wrote), len(wrote)],
        )
        return cursor.fetchone()


# settlement ----------------------------------------------------------------------------------------------------
def _captures_due(merchant_id: str, amounts: list[int], due: dt.date) -> list[uuid.UUID]:
    """Captures of a merchant, each booked as the bookings process manager books a payment's capture event (no
    fee), due on `due`; their payment ids."""
    payment_ids = []
    for minor in amounts:
        payment_ids.append(uuid.uuid4())
        with transaction.atomic():
            bookings.payment_capture_book(
                event_id=uuid.uuid4(),
                payment_id=payment_ids[-1],
                merchant_id=merchant_id,
                amount=Money(minor, "JPY"),
                settlement_date=due,
                fee_bps=0,
            )
    return payment_ids


def _unacked(client) -> dict[str, float]:
    """The tasks of the messages the broker holds unacknowledged, with the time each was handed out (kombu's
    `unacked` hash and `unacked_index` sorted set)."""
    handed_out = {tag.decode(): score for tag, score in client.zrange("unacked_index", 0, -1, withscores=True)}
    return {
        json.loads(raw)[0]["headers"]["task"]: handed_out[tag.decode()]
        for tag, raw in client.hgetall("unacked").items()
    }


def _balances(accounts: dict[str, Account]) -> dict[str, tuple[int, int]]:
    rows = Account.objects.in_bulk([account.id for account in accounts.values()])
    return {merchant: (rows[a.id].available, rows[a.id].pending) for merchant, a in accounts.items()}


def _settlement_entries(accounts: dict[str, Account]) -> set[uuid.UUID]:
    return set(
        JournalEntry.objects.filter(kind="settlement", postings__account__in=accounts.values()).values_list(
            "id", flat=True
        )
    )


def test_settlement_run_killed_mid_run_is_delivered_again_and_settles_every_payment_once(worker, redis_db):
    # given two merchants' captures due yesterday, and no batch for today yet
    today = timezone.now().date()
    assert not SettlementBatch.objects.filter(settlement_date=today).exists(), "today's run must be this test's"
    amounts = {unique_merchant_id("settle-a"): [1_000, 2_000, 3_000], unique_merchant_id("settle-b"): [400, 500]}
    payments = {
        merchant: _captures_due(merchant, minors, today - dt.timedelta(days=1)) for merchant, minors in amounts.items()
    }
    every_payment = [payment_id for ids in payments.values() for payment_id in ids]
    accounts = {merchant: Account.objects.get(owner_type="merchant", owner_id=merchant) for merchant in amounts}
    before = _balances(accounts)
    assert before == {merchant: (0, sum(minors)) for merchant, minors in amounts.items()}
    batches = SettlementBatch.objects.count()
    # and a worker with a child process, as `make run` starts it, that hands a dead worker's message out again
    # after a second
    worker.pool = "prefork"
    worker.env["CELERY_VISIBILITY_TIMEOUT_SECONDS"] = str(VISIBILITY_TIMEOUT_SECONDS)
    worker.start()
    # and the event stream of the account of the two that the run settles second (it goes by id) locked by this
    # test
    second = max(account.id for account in accounts.values())
    with _row_locked("SELECT 1 FROM fintech_stream WHERE stream_id = %s FOR UPDATE", [second]) as barrier:
        # when the settlement task is sent, as beat sends it, and the run has settled the first merchant and
        # written the second one's postings (uncommitted), and waits to append the second one's events
        settlement_run_task.delay()
        wait_for(
            lambda: _waiting_on(
                barrier,
                WORKER_APPLICATION_NAME,
                "^INSERT INTO fintech_event",
                wrote=("accounts_posting",),
            ),
            what="the settlement run waiting in the middle",
            worker=worker,
        )
        # and the worker is killed there
        worker.kill_processes()
    wait_for_sessions_gone()

    # then nothing of the run is left: no batch, no payment settled, the balances as they were
    assert SettlementBatch.objects.count() == batches
    assert not SettledPayment.objects.filter(payment_id__in=every_payment).exists()
    assert _balances(accounts) == before
    # and its message is still unacknowledged at the broker
    unacked = _unacked(redis_db.client())
    assert SETTLEMENT_TASK in unacked

    # when the worker starts again once the message is older than the visibility timeout
    wait_for(
        lambda: time.time() - max(unacked.values()) > VISIBILITY_TIMEOUT_SECONDS,
        what="the unacknowledged message to age",
    )
    worker.start()
    # then the message is handed out again and the run settles every payment due, once, in one batch
    wait_for(lambda: worker.tasks_succeeded(SETTLEMENT_TASK) == 1, what="the settlement task again", worker=worker)
    assert SettlementBatch.objects.count() == batches + 1
    settled = list(SettledPayment.objects.filter(payment_id__in=every_payment))
    assert sorted((s.payment_id, s.amount) for s in settled) == sorted(
        (payment_id, minor)
        for merchant, ids in payments.items()
        for payment_id, minor in zip(ids, amounts[merchant], strict=True)
    )
    [batch] = SettlementBatch.objects.filter(id__in={s.batch_id for s in settled})
    assert batch.settlement_date >= today
    assert batch.actor == "system:settlement"
    lines = SettlementLine.objects.filter(batch=batch, merchant_id__in=amounts)
    assert {line.merchant_id: (line.payments, line.amount) for line in lines} == {
        merchant: (len(minors), sum(minors)) for merchant, minors in amounts.items()
    }
    # and each merchant's funds moved from pending to available once, by one entry
    assert _balances(accounts) == {merchant: (pending, 0) for merchant, (_, pending) in before.items()}
    entries = _settlement_entries(accounts)
    assert len(entries) == len(accounts)
    assert Posting.objects.filter(entry__in=entries).count() == 2 * len(accounts)

    # when beat sends the task again for the day
    settlement_run_task.delay()
    wait_for(lambda: worker.tasks_succeeded(SETTLEMENT_TASK) == 2, what="the settlement task's rerun", worker=worker)
    # then it changes nothing, and the ledger reconciles
    assert SettlementBatch.objects.count() == batches + 1
    assert _settlement_entries(accounts) == entries
    assert _balances(accounts) == {merchant: (pending, 0) for merchant, (_, pending) in before.items()}
    worker.stop()
    out = io.StringIO()
    call_command("reconcile", stdout=out)
    assert "the ledger reconciles" in out.getvalue()


# key rotation --------------------------------------------------------------------------------------------------
@pytest.fixture
def key_directory(settings, tmp_path) -> Iterator[Path]:
    """A key directory of the test's own, for this process and the commands it starts: the real keys in
    .data/keys are shared with other processes and must not be rotated."""
    directory = tmp_path / "keys"
    settings.VAULT_KEYS_DIR = str(directory)
    settings.VAULT_KEK_KEYSET = None
    keys.key_provider_reset()
    yield directory
    keys.key_provider_reset()


def _rotate_keys(*args: str, keys_dir: Path, log: Path) -> subprocess.Popen:
    """`manage.py rotate_keys ARGS` in a process group of its own, on the test database and the key directory."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(django_settings.DATABASE_URL, connection.settings_dict["NAME"]),
        "REDIS_URL": django_settings.REDIS_URL,
        "VAULT_KEYS_DIR": str(keys_dir),
        "PGAPPNAME": ROTATE_APPLICATION_NAME,
        "PROJECTIONS_WAKE_ON_COMMIT": "false",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("VAULT_KEK_KEYSET", None)
    with log.open("ab") as output:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
            [sys.executable, "manage.py", "rotate_keys", *args],
            cwd=django_settings.BASE_DIR,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _rotate_keys_to_the_end(*args: str, keys_dir: Path, log: Path) -> str:
    start = log.stat().st_size if log.exists() else 0
    process = _rotate_keys(*args, keys_dir=keys_dir, log=log)
    try:
        returncode = process.wait(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    output = log.read_bytes()[start:].decode()
    assert returncode == 0, output
    return output


def _card_tokenize(number: str, merchant_id: str) -> str:
    return vault.card_tokenize(
        card_number=number, exp_month=EXP_MONTH, exp_year=EXP_YEAR, merchant_id=merchant_id
    ).token


def _wrapped_keys(tokens: list[str]) -> dict[str, bytes]:
    return {
        token: bytes(key) for token, key in Card.objects.filter(token__in=tokens).values_list("token", "wrapped_key")
    }


def _all_readable(cards: dict[str, str]) -> None:
    for token, number in cards.items():
        assert vault.card_detokenize(token=token, purpose="rotation check", actor=SYSTEM) == number


def test_rotate_keys_killed_between_batches_resumes_then_retires_with_every_key_readable(key_directory, tmp_path):
    # given six cards and two data subjects vaulted under the first KEK key
    merchant = unique_merchant_id("rotate")
    cards = {_card_tokenize(number, merchant): number for number in (pan_random() for _ in range(6))}
    subjects = {f"cust-{uuid.uuid4().hex[:8]}": f"holder {i}".encode() for i in range(2)}
    ciphertexts = {
        s: vault.subject_key(subject_id=s, create=True).encrypt(name, b"name") for s, name in subjects.items()
    }
    # (in the order the batches take them, the database's)
    tokens = list(Card.objects.order_by("token").values_list("token", flat=True))
    assert sorted(tokens) == sorted(cards)
    provider = keys.key_provider()
    old = provider.primary_key_id()
    log = tmp_path / "rotate_keys.log"
    # and the third card locked by this test
    with _row_locked("SELECT 1 FROM vault_card WHERE token = %s FOR UPDATE", [tokens[2]]) as barrier:
        # when rotate_keys runs a card per batch and, two batches committed, waits for the third card
        process = _rotate_keys("--batch-size", "1", keys_dir=key_directory, log=log)
        try:
            wait_for(
                lambda: _waiting_on(barrier, ROTATE_APPLICATION_NAME, 'FROM "vault_card" .* FOR UPDATE'),
                what="rotate_keys waiting for the third card",
            )
        finally:
            # and it is killed there
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    wait_for_sessions_gone(ROTATE_APPLICATION_NAME)

    # then the new primary is in the keyset beside the old key, and only the two batches before the kill are on it
    new = provider.primary_key_id()
    assert new != old
    assert set(provider.key_ids()) == {old, new}
    assert list(Card.objects.order_by("token").values_list("kek_key_id", flat=True)) == [new, new] + [old] * 4
    assert set(SubjectKey.objects.values_list("kek_key_id", flat=True)) == {old}
    rewrapped_before_the_kill = _wrapped_keys(tokens[:2])
    # and every card reads, on either key
    _all_readable(cards)

    # when the rotation is resumed
    output = _rotate_keys_to_the_end("--resume", keys_dir=key_directory, log=log)
    # then it added no key and re-wrapped what was left (four cards, two subjects), not what was done before
    assert "new primary key" not in output
    assert "re-wrapped 6 data key(s)" in output
    assert provider.primary_key_id() == new
    assert set(Card.objects.values_list("kek_key_id", flat=True)) == {new}
    assert set(SubjectKey.objects.values_list("kek_key_id", flat=True)) == {new}
    assert vault.keys_pending_count(primary=new) == 0
    assert _wrapped_keys(tokens[:2]) == rewrapped_before_the_kill
    _all_readable(cards)

    # when the old key is retired
    output = _rotate_keys_to_the_end("--resume", "--retire", keys_dir=key_directory, log=log)
    # then only the new primary is left, and every card, subject and blind index still works
    assert f"retired 1 key(s): {old}" in output
    assert provider.key_ids() == [new]
    _all_readable(cards)
    for subject_id, name in subjects.items():
        assert vault.subject_key(subject_id=subject_id).decrypt(ciphertexts[subject_id], b"name") == name
    assert _card_tokenize(cards[tokens[0]], merchant) == tokens[0]
