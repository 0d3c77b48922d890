"""Ledger throughput: transfers through `ledger.services.transfer_create` against the same SQL by hand.

The pool: `accounts` customers registered, each with a customer balance account in JPY funded with FUNDING
through the service (customer_register, account_open, account_deposit against the company's segregated trust
account), once, before the first measurement. Transfers go from one customer balance to another: money stays
inside customer funds, so the trust and clearing accounts never join the lock and each transfer locks exactly
its two accounts (a customer to merchant transfer would lock four, and queue every transfer of the currency on
the trust account).

Contention: the pool is shared. Every client takes both accounts of each transfer at random from the whole
pool (amounts of 1 to MAX_AMOUNT yen), so with several clients two transfers in flight now and then want the
same account and the later one waits for the other's COMMIT, as two payments of one customer would. Client i
of a round draws the same transfers through either implementation (its generator is seeded by round, clients
and i, never by implementation).

Per transfer both implementations send, on one connection, what the service sends:

- SELECT the two accounts' kind and currency (accounts_peek, no lock), in autocommit;
- BEGIN (Django's atomic turns autocommit off, psycopg begins before the next statement);
- SELECT ... FROM accounts_account WHERE id = ANY(%s) ORDER BY id FOR UPDATE (accounts_lock);
- INSERT accounts_journalentry; INSERT accounts_posting (two rows);
- UPDATE accounts_account ... FROM (VALUES ...) (the two new balances, versions + 1);
- INSERT fintech_event, three rows RETURNING position, transaction id, created_at: a BalanceChanged on each
  account's stream at its version + 1 and a TransferCompleted on the new stream of the transfer id, payloads
  json.dumps of the events' `to_data()` dicts (keys sorted), metadata {"actor": ...};
- INSERT accounts_transfer; COMMIT.

The hand client never imports Django: psycopg 3 with its defaults (prepare after 5 runs of a statement),
autocommit between transfers and off for each transfer's transaction, as Django's atomic does.

A third implementation, "hand + Redis", is the hand client plus what the service does after COMMIT besides
SQL: the balance write-through (projections.balances), one EVALSHA of the same script with the same arguments
over a connection of its own, as fintech.redisscripts sends it (the parent hands it the service's script text:
it is the Redis side of the work, not the client's). The target is against plain hand SQL; this one shows how
much of the gap is that Redis round trip.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import random
import statistics
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.synchronize import Barrier
from queue import Queue

import psycopg
import redis

from tests.bench.handsql import BenchError
from tests.bench.worker import BARRIER_TIMEOUT, HAND_SQL, SERVICE, TARGET_CLIENTS, target_verdict

HAND_REDIS = "hand + Redis"

ACCOUNTS = 200
CURRENCY = "JPY"
FUNDING = 1_000_000_000  # yen per account: random transfers of at most MAX_AMOUNT never reach the floor of 0
MAX_AMOUNT = 999
WARM_TRANSFERS = 5  # psycopg's prepare_threshold: each statement runs once per transfer
ACTOR = "bench:ledger"
REFERENCE = "bench"
FUNDING_REFERENCE = "bench funding"

CUSTOMER_BALANCE = "customer_balance"  # ledger.domain.AccountKind, as stored
TRANSFER_KIND = "transfer"
LEDGER_ACCOUNT = "ledger_account"  # ledger.domain.LEDGER_AGGREGATE
LEDGER_ENTRY = "ledger_entry"  # ledger.domain.ENTRY_AGGREGATE
METADATA = json.dumps({"actor": ACTOR}, sort_keys=True)

# ruff: noqa: S608 - the SQL below joins placeholders only; every value is a parameter

# The statements of ledger.lock_objects, ledger.journal.entry_post, fintech.eventstore.append_streams and
# ledger.services.transfer_create, character for character (psycopg prepares by the text).
PEEK = "SELECT id, kind, currency FROM accounts_account WHERE id = ANY(%s)"
LOCK = (
    "SELECT id, kind, currency, floor, available, pending, version FROM accounts_account "
    "WHERE id = ANY(%s) ORDER BY id FOR UPDATE"
)
INSERT_ENTRY = (
    "INSERT INTO accounts_journalentry (id, kind, reference, actor, event_id, payment_id, settlement_date, "
    "created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
)
INSERT_POSTINGS = (
    "INSERT INTO accounts_posting (entry_id, account_id, currency, bucket, amount, created_at) VALUES "
    "(%s, %s, %s, %s, %s, %s), (%s, %s, %s, %s, %s, %s)"
)
UPDATE_BALANCES = (
    "UPDATE accounts_account AS a SET available = v.available, pending = v.pending, "
    "version = a.version + 1, updated_at = %s FROM (VALUES "
    "(%s::uuid, %s::bigint, %s::bigint), (%s::uuid, %s::bigint, %s::bigint)) AS v (id, available, pending) "
    "WHERE a.id = v.id"
)
_EVENT_ROW = "(%s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s, %s)"
INSERT_EVENTS = (
    "INSERT INTO fintech_event (event_id, aggregate_id, aggregate_type, event_type, event_version, event_data, "
    f"metadata, version, occurred_at) VALUES {', '.join([_EVENT_ROW] * 3)} "
    "RETURNING position, transaction_id::text::bigint, created_at"
)
# As the ORM writes it (Transfer.save), quotes included.
INSERT_TRANSFER = (
    'INSERT INTO "accounts_transfer" ("id", "from_account_id", "to_account_id", "amount", "currency", "reference", '
    '"status", "actor", "created_at") VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)'
)
# Column indexes of LOCK rows.
FLOOR, AVAILABLE, PENDING, VERSION = 3, 4, 5, 6


def _money(minor: int, currency: str) -> dict:
    return {"amount": minor, "currency": currency}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)  # settings.TIME_ZONE is UTC


class HandWrittenTransfers:
    """One client's connection and transfer_create by hand."""

    def __init__(self, conninfo: str, redis_url: str | None = None, balances_script: str = "") -> None:
        # Autocommit between transfers (the peek is a transaction of its own); off for each transfer's locks.
        self.conn = psycopg.connect(conninfo, autocommit=True)
        self.redis: redis.Connection | None = None
        if redis_url:
            pool = redis.ConnectionPool.from_url(redis_url, socket_timeout=1, socket_connect_timeout=1)
            self.redis = pool.connection_class(**pool.connection_kwargs)
            self.redis.send_command("SCRIPT", "LOAD", balances_script)
            self.sha = self.redis.read_response().decode()

    def close(self) -> None:
        self.conn.close()
        if self.redis is not None:
            self.redis.disconnect()

    def _write_through(self, after: dict, versions: dict, occurred_at: dt.datetime) -> None:
        keys, args = [], []
        updated_at = occurred_at.isoformat().replace("+00:00", "Z")
        for account_id, (available, pending) in after.items():
            keys.append(f"balance:{account_id}")
            args += [versions[account_id], "partial", 6, "available", str(available), "pending", str(pending)]
            args += ["updated_at", updated_at]
        self.redis.send_packed_command(self.redis.pack_command("EVALSHA", self.sha, len(keys), *keys, *args))
        self.redis.read_response()

    def transfer(self, *, from_account: uuid.UUID, to_account: uuid.UUID, amount: int) -> uuid.UUID:
        conn = self.conn
        if from_account == to_account or amount <= 0:
            raise BenchError("a transfer needs two different accounts and a positive amount")
        peeked = {row[0]: row[1:] for row in conn.execute(PEEK, ([from_account, to_account],)).fetchall()}
        if len(peeked) != 2 or any(currency != CURRENCY for _, currency in peeked.values()):
            raise BenchError(f"accounts {from_account}, {to_account}: not two {CURRENCY} accounts")
        if any(kind != CUSTOMER_BALANCE for kind, _ in peeked.values()):
            # Anything else crosses the boundary of customer funds (or moves the trust account): not benched.
            raise BenchError("the bench transfers between customer balances only")
        transfer_id = uuid.uuid4()
        conn.autocommit = False
        try:
            locked = {row[0]: row for row in conn.execute(LOCK, (sorted({from_account, to_account}),)).fetchall()}
            if len(locked) != 2:
                raise BenchError(f"accounts {from_account}, {to_account} are gone")
            occurred_at = _now()
            source, destination = locked[from_account], locked[to_account]
            after = {
                from_account: (source[AVAILABLE] - amount, source[PENDING]),
                to_account: (destination[AVAILABLE] + amount, destination[PENDING]),
            }
            if source[FLOOR] is not None and after[from_account][0] < source[FLOOR]:
                raise BenchError(f"account {from_account} would fall below its floor")
            now = _now()
            conn.execute(INSERT_ENTRY, (transfer_id, TRANSFER_KIND, REFERENCE, ACTOR, None, None, None, now))
            conn.execute(
                INSERT_POSTINGS,
                (
                    *(transfer_id, from_account, CURRENCY, "available", -amount, now),
                    *(transfer_id, to_account, CURRENCY, "available", amount, now),
                ),
            )
            conn.execute(
                UPDATE_BALANCES,
                (now, *(value for account_id, (a, p) in after.items() for value in (account_id, a, p))),
            )
            params: list = []
            for account_id, (available, pending) in after.items():
                data = {
                    "account_id": str(account_id),
                    "entry_id": str(transfer_id),
                    "available": _money(available, CURRENCY),
                    "pending": _money(pending, CURRENCY),
                }
                params += _event(account_id, LEDGER_ACCOUNT, "BalanceChanged", data, locked[account_id][VERSION] + 1)
                params.append(now)
            completed = {
                "transfer_id": str(transfer_id),
                "from_account": str(from_account),
                "to_account": str(to_account),
                "amount": _money(amount, CURRENCY),
                "reference": REFERENCE,
            }
            params += _event(transfer_id, LEDGER_ENTRY, "TransferCompleted", completed, 1)
            params.append(occurred_at)
            conn.execute(INSERT_EVENTS, params).fetchall()
            conn.execute(
                INSERT_TRANSFER,
                (transfer_id, from_account, to_account, amount, CURRENCY, REFERENCE, "completed", ACTOR, now),
            )
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.autocommit = True
        if self.redis is not None:
            versions = {account_id: locked[account_id][VERSION] + 1 for account_id in after}
            self._write_through(after, versions, now)
        return transfer_id


def _event(stream_id: uuid.UUID, aggregate_type: str, event_type: str, data: dict, version: int) -> list:
    """The parameters of one event row but its occurred_at (event version 1 for every ledger event)."""
    return [uuid.uuid4(), stream_id, aggregate_type, event_type, 1, json.dumps(data, sort_keys=True), METADATA, version]


# The service side (only after django.setup() on the bench database) -------------------------------------------
def service_transfer(*, from_account: uuid.UUID, to_account: uuid.UUID, amount: int) -> uuid.UUID:
    from fintech.money import Money
    from ledger.services import transfer_create

    transfer = transfer_create(
        from_account=from_account,
        to_account=to_account,
        amount=Money(amount, CURRENCY),
        reference=REFERENCE,
        actor=ACTOR,
    )
    return transfer.id


def open_pool(count: int) -> tuple[uuid.UUID, ...]:
    """`count` customers with a funded customer balance account each, through the service."""
    from accounts import services as accounts_services
    from fintech.money import Money
    from ledger import services
    from ledger.domain import AccountKind

    accounts = []
    for index in range(count):
        customer = accounts_services.customer_register(
            name=f"Bench Customer {index}", email=f"bench.ledger.{index}@example.org", actor=ACTOR
        )
        account = services.account_open(
            owner_type="customer",
            owner_id=str(customer.id),
            currency=CURRENCY,
            kind=AccountKind.CUSTOMER_BALANCE,
            actor=ACTOR,
        )
        services.account_deposit(
            account_id=account.id, amount=Money(FUNDING, CURRENCY), reference=FUNDING_REFERENCE, actor=ACTOR
        )
        accounts.append(account.id)
    return tuple(accounts)


# Clients ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LedgerSpec:
    implementation: str
    conninfo: str
    accounts: tuple[uuid.UUID, ...]
    seed: str  # client i draws its transfers from random.Random(f"{seed}-{i}")
    transfers: int | None
    seconds: float
    warmup: int
    redis_url: str = ""  # the service's Redis and its balance script, for the hand + Redis client
    balances_script: str = ""


@dataclass(frozen=True)
class LedgerResult:
    index: int
    transfers: int
    started: float
    finished: float
    transfer_ids: bytes  # 16 bytes per transfer, warm-up transfers included (they are verified too)
    error: str | None = None


def _service_client() -> Callable[..., uuid.UUID]:
    import django

    django.setup()
    from django.db import connection

    if not connection.settings_dict["NAME"].endswith("_bench"):
        raise RuntimeError(f"refusing to benchmark database {connection.settings_dict['NAME']!r}")
    from projections.services import projections_wake_prepare

    # A one-time cost of a new process, as preparing statements is (the warm-up covers that one).
    projections_wake_prepare()
    return service_transfer


def _hand_client(spec: LedgerSpec) -> Callable[..., uuid.UUID]:
    redis_url = spec.redis_url if spec.implementation == HAND_REDIS else None
    transfer = HandWrittenTransfers(spec.conninfo, redis_url, spec.balances_script).transfer
    if "django" in sys.modules:
        raise RuntimeError("the hand SQL client imported Django")
    return transfer


def _draws(accounts: tuple[uuid.UUID, ...], seed: str) -> Callable[[], dict]:
    rng = random.Random(seed)  # noqa: S311 - which accounts to move yen between, not a secret

    def draw() -> dict:
        source, destination = rng.sample(accounts, 2)
        return {"from_account": source, "to_account": destination, "amount": rng.randint(1, MAX_AMOUNT)}

    return draw


def client_main(index: int, spec: LedgerSpec, barrier: Barrier, results: Queue) -> None:
    ids: list[bytes] = []
    try:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fintech.settings")
        transfer = _service_client() if spec.implementation == SERVICE else _hand_client(spec)
        draw = _draws(spec.accounts, f"{spec.seed}-{index}")
        for _ in range(spec.warmup):
            ids.append(transfer(**draw()).bytes)
        barrier.wait(BARRIER_TIMEOUT)
        started = time.monotonic()
        done = 0
        if spec.transfers is not None:
            for _ in range(spec.transfers):
                ids.append(transfer(**draw()).bytes)
            done = spec.transfers
        else:
            deadline = started + spec.seconds
            while time.monotonic() < deadline:
                ids.append(transfer(**draw()).bytes)
                done += 1
        finished = time.monotonic()
        results.put(LedgerResult(index, done, started, finished, b"".join(ids)))
    except BaseException:
        barrier.abort()
        results.put(LedgerResult(index, 0, 0.0, 0.0, b"".join(ids), error=traceback.format_exc()))


# Verification -----------------------------------------------------------------------------------------------
def verify(url: str, accounts: tuple[uuid.UUID, ...], transfer_ids: list[uuid.UUID]) -> None:
    """After a measurement: every transfer of the run wrote its entry (two postings summing to zero), its
    transfer row and its three events; every account's balances equal the sum of its postings and its stream
    stands at its version with a last event of those balances; every journal entry sums to zero; the pool
    still holds what it was funded with, and the currency sums to zero over all accounts."""
    expected = len(transfer_ids)
    if len(set(transfer_ids)) != expected:
        raise AssertionError("a transfer id was reported twice")
    problems = []
    with psycopg.connect(url) as conn:

        def one(query: str, params: tuple = ()) -> tuple:
            return conn.execute(query, params).fetchone()

        transfers, entries, postings = one(
            "SELECT (SELECT count(*) FROM accounts_transfer WHERE id = ANY(%s) AND status = 'completed'), "
            "(SELECT count(*) FROM accounts_journalentry WHERE id = ANY(%s) AND kind = %s), "
            "count(*) FROM accounts_posting WHERE entry_id = ANY(%s)",
            (transfer_ids, transfer_ids, TRANSFER_KIND, transfer_ids),
        )
        completed, changed = one(
            "SELECT count(*) FILTER (WHERE event_type = 'TransferCompleted' AND aggregate_id = ANY(%s) "
            "AND version = 1), count(*) FILTER (WHERE event_type = 'BalanceChanged' "
            "AND (event_data ->> 'entry_id')::uuid = ANY(%s)) FROM fintech_event "
            "WHERE event_type IN ('TransferCompleted', 'BalanceChanged')",
            (transfer_ids, transfer_ids),
        )
        if (transfers, entries, postings, completed, changed) != (
            expected,
            expected,
            2 * expected,
            expected,
            2 * expected,
        ):
            problems.append(
                f"{expected} transfers: {transfers} transfer rows, {entries} journal entries, {postings} postings "
                f"(want {2 * expected}), {completed} TransferCompleted, {changed} BalanceChanged (want {2 * expected})"
            )
        short, unbalanced = one(
            "SELECT (SELECT count(*) FROM (SELECT FROM accounts_journalentry e LEFT JOIN accounts_posting p "
            "ON p.entry_id = e.id GROUP BY e.id HAVING count(p.id) < 2 OR bool_or(p.amount = 0)) AS short), "
            "(SELECT count(*) FROM (SELECT FROM accounts_posting GROUP BY entry_id, currency "
            "HAVING sum(amount) <> 0) AS unbalanced)"
        )
        if short or unbalanced:
            problems.append(
                f"{unbalanced} journal entries do not sum to zero in a currency, {short} have fewer than two "
                "non-zero postings"
            )
        (off,) = one(
            "SELECT count(*) FROM accounts_account a LEFT JOIN (SELECT account_id, "
            "sum(amount) FILTER (WHERE bucket = 'available') AS available, "
            "sum(amount) FILTER (WHERE bucket = 'pending') AS pending FROM accounts_posting GROUP BY account_id) p "
            "ON p.account_id = a.id "
            "WHERE a.available <> coalesce(p.available, 0) OR a.pending <> coalesce(p.pending, 0)"
        )
        if off:
            problems.append(f"{off} accounts hold balances other than the sum of their postings")
        (streams,) = one(
            "SELECT count(*) FROM accounts_account a JOIN fintech_stream s ON s.stream_id = a.id "
            "AND s.version = a.version JOIN fintech_event e ON e.aggregate_id = a.id AND e.version = a.version "
            "WHERE a.id = ANY(%s) AND e.event_type = 'BalanceChanged' "
            "AND (e.event_data -> 'available' ->> 'amount')::bigint = a.available "
            "AND (e.event_data -> 'pending' ->> 'amount')::bigint = a.pending",
            (list(accounts),),
        )
        if streams != len(accounts):
            problems.append(
                f"{len(accounts) - streams} accounts of the pool: stream not at the account's version, or its last "
                "event not a BalanceChanged of the account's balances"
            )
        pool_available, pool_pending, currency_total = one(
            "SELECT sum(available) FILTER (WHERE id = ANY(%s)), sum(pending) FILTER (WHERE id = ANY(%s)), "
            "sum(available + pending) FROM accounts_account WHERE currency = %s",
            (list(accounts), list(accounts), CURRENCY),
        )
        if (pool_available, pool_pending, currency_total) != (FUNDING * len(accounts), 0, 0):
            problems.append(
                f"the pool holds {pool_available} available and {pool_pending} pending (want "
                f"{FUNDING * len(accounts)} and 0); all {CURRENCY} accounts sum to {currency_total} (want 0)"
            )
    if problems:
        raise AssertionError("; ".join(problems))


def verify_through_service(accounts: tuple[uuid.UUID, ...], transfer_ids: list[uuid.UUID]) -> None:
    """The event store decodes the transfers' and the accounts' streams (hand-written rows included) into the
    same transfers and balances as the tables hold."""
    from django.db import connection

    from fintech import eventstore
    from fintech.money import Money
    from ledger.domain import AccountOpened, BalanceChanged, TransferCompleted
    from ledger.models import Account, Transfer

    try:
        for transfer_id in transfer_ids:
            events = eventstore.load(transfer_id)
            row = Transfer.objects.get(id=transfer_id)
            event = events[0].event if len(events) == 1 else None
            if not isinstance(event, TransferCompleted) or (
                event.transfer_id,
                event.from_account,
                event.to_account,
                event.amount,
                event.reference,
            ) != (row.id, row.from_account_id, row.to_account_id, Money(row.amount, row.currency), row.reference):
                raise AssertionError(f"transfer {transfer_id} loads as {events}")
        for account_id in accounts:
            events = eventstore.load(account_id)
            row = Account.objects.get(id=account_id)
            if (
                [e.version for e in events] != list(range(1, row.version + 1))
                or not isinstance(events[0].event, AccountOpened)
                or not all(isinstance(e.event, BalanceChanged) for e in events[1:])
                or (events[-1].event.available, events[-1].event.pending)
                != (Money(row.available, row.currency), Money(row.pending, row.currency))
            ):
                raise AssertionError(f"account {account_id} at version {row.version} loads {len(events)} events")
    finally:
        connection.close()


# The section ------------------------------------------------------------------------------------------------
def work_per_transfer(conninfo: str, accounts: tuple[uuid.UUID, ...]) -> dict:
    """What one transfer costs the database through each implementation, counted as for a payment
    (database.measure_work), after WARM_TRANSFERS unmeasured transfers so that psycopg has prepared every
    statement. Both move yen back and forth between the first two accounts of the pool."""
    from django.db import connection

    from fintech.db import raw_cursor_forget
    from tests.bench import database

    first, second = accounts[:2]
    pairs = iter([{"from_account": first, "to_account": second}, {"from_account": second, "to_account": first}] * 1000)

    def act(transfer: Callable[..., uuid.UUID]) -> Callable[[], object]:
        return lambda: transfer(**next(pairs), amount=1)

    def service_act() -> None:
        # Its statements go through cursors the counter made: not through the one raw_cursor kept from before.
        raw_cursor_forget()
        service_transfer(**next(pairs), amount=1)

    try:
        for _ in range(WARM_TRANSFERS):
            service_transfer(**next(pairs), amount=1)
        connection.ensure_connection()
        service_work = database.measure_work(connection.connection, service_act)
    finally:
        connection.close()
    hand = HandWrittenTransfers(conninfo)
    try:
        for _ in range(WARM_TRANSFERS):
            hand.transfer(**next(pairs), amount=1)
        hand_work = database.measure_work(hand.conn, act(hand.transfer))
    finally:
        hand.close()
    return {SERVICE: service_work, HAND_SQL: hand_work}


@dataclass
class Totals:
    transfers: int = 0
    seconds: float = 0.0
    rounds: list[float] = field(default_factory=list)  # transfers/s of each round

    @property
    def per_second(self) -> float:
        return self.transfers / self.seconds if self.seconds else 0.0


def _ratios(service: Totals, baseline: Totals) -> tuple[float, str]:
    """The service's rate over the baseline's, over all rounds, and round by round."""
    paired = " ".join(f"{s / b:.2f}" for s, b in zip(service.rounds, baseline.rounds, strict=True))
    return service.per_second / baseline.per_second, paired


def run(
    *,
    url: str,
    accounts: int,
    clients: list[int],
    rounds: int,
    seconds: float,
    transfers: int | None,
    warmup: int,
    out: Callable[[str], None],
) -> int:
    """Open the pool, count the statements of one transfer on each side, then the interleaved rounds and the
    table. Returns the number of transfers made and verified."""
    from django.conf import settings

    from projections.cache import _BALANCES_SET
    from tests.bench.database import describe, describe_tables
    from tests.bench.worker import spawn_clients

    started = time.perf_counter()
    pool = open_pool(accounts)
    warmup = max(warmup, WARM_TRANSFERS)
    out("")
    out(
        f"ledger: {accounts} customers with a {CURRENCY} customer balance account each, funded with {FUNDING:,} "
        f"through the service in {time.perf_counter() - started:.1f} s; transfers of 1 to {MAX_AMOUNT} {CURRENCY} "
        "from one customer balance to another (so only those two accounts are locked), both drawn at random from "
        f"the pool all clients share; {warmup} warm-up transfers per client"
    )
    verify(url, pool, [])
    work = work_per_transfer(url, pool)
    for implementation in (SERVICE, HAND_SQL):
        out(f"statements per transfer, {implementation + ':':<9} {describe(work[implementation])}")
    service_texts, hand_texts = work[SERVICE].texts, work[HAND_SQL].texts
    out(f"  SQL text of each statement, in order: {'the same' if service_texts == hand_texts else 'DIFFERENT'}")
    for number, (service_text, hand_text) in enumerate(itertools.zip_longest(service_texts, hand_texts), 1):
        if service_text != hand_text:
            out(f"    {number}. service:  {service_text}")
            out(f"    {number}. hand SQL: {hand_text}")
    if work[SERVICE].transactions is not None:
        same = "the same" if work[SERVICE].tables == work[HAND_SQL].tables else "DIFFERENT"
        out(f"  per table (partitions summed), scans/rows in/updated ({same}): {describe_tables(work[SERVICE])}")
        if same != "the same":
            out(f"  hand SQL: {describe_tables(work[HAND_SQL])}")
    out(f"  {HAND_REDIS}: the hand SQL, then the write-through's EVALSHA of the service's own script")
    out("")

    verified = 0
    totals: dict[tuple[str, int], Totals] = {}
    for round_number in range(rounds):
        order = (SERVICE, HAND_SQL, HAND_REDIS) if round_number % 2 == 0 else (HAND_REDIS, HAND_SQL, SERVICE)
        for count in clients:
            for implementation in order:
                spec = LedgerSpec(
                    implementation=implementation,
                    conninfo=url,
                    accounts=pool,
                    seed=f"r{round_number}-c{count}",
                    transfers=transfers,
                    seconds=seconds,
                    warmup=warmup,
                    redis_url=settings.CACHES["default"]["LOCATION"],
                    balances_script=_BALANCES_SET,
                )
                collected, took = spawn_clients(client_main, spec, count)
                ids = [
                    uuid.UUID(bytes=r.transfer_ids[i : i + 16])
                    for r in collected
                    for i in range(0, len(r.transfer_ids), 16)
                ]
                verify(url, pool, ids)
                verify_through_service(pool[:2], ids[:: max(1, len(ids) // 20)])
                verified += len(ids)
                done = sum(r.transfers for r in collected)
                total = totals.setdefault((implementation, count), Totals())
                total.transfers += done
                total.seconds += took
                total.rounds.append(done / took)
                out(
                    f"round {round_number + 1}/{rounds}  {implementation:<12}  {count} clients  "
                    f"{done:>6} transfers in {took:6.2f} s  {done / took:8.0f} transfers/s  verified"
                )
    out("")
    out(f"{'clients':<8} {'service transfers/s':>20} {'hand SQL transfers/s':>21} {'ratio':>6}   ratio in each round")
    for count in clients:
        service, hand = totals[(SERVICE, count)], totals[(HAND_SQL, count)]
        ratio, paired = _ratios(service, hand)
        out(f"{count:<8} {service.per_second:>20.0f} {hand.per_second:>21.0f} {ratio:>6.2f}   {paired}")
    out(f"{'clients':<8} {HAND_REDIS + ' transfers/s':>25} {'service ratio to it':>20}   ratio in each round")
    for count in clients:
        hand_redis = totals[(HAND_REDIS, count)]
        ratio, paired = _ratios(totals[(SERVICE, count)], hand_redis)
        out(f"{count:<8} {hand_redis.per_second:>25.0f} {ratio:>20.2f}   {paired}")
    if TARGET_CLIENTS in clients:
        service, hand = totals[(SERVICE, TARGET_CLIENTS)], totals[(HAND_SQL, TARGET_CLIENTS)]
        out(target_verdict("transfers (service layer)", service.rounds, hand.rounds))
        ratios = [s / h for s, h in zip(service.rounds, totals[(HAND_REDIS, TARGET_CLIENTS)].rounds, strict=True)]
        out(
            f"  for comparison, not the target: against {HAND_REDIS} (the same write-through by hand), median "
            f"{statistics.median(ratios):.2f} of {len(ratios)} rounds"
        )
    return verified
