"""What must hold after every fault, once it has cleared. Each check returns its failures (empty: it holds).

The log and the checkpoints are read with SQL as the database's owner; the ledger's and the projections' own
verdicts come from their management commands (`reconcile`, `projection_status`); everything a client can see
is asked through the API."""

from __future__ import annotations

import collections
import time

from tests.faults.client import DROP, ApiClient, Call, Journal
from tests.faults.load import Beliefs
from tests.faults.stack import Stack

Checkpoint = tuple[int, int]


# the log and the projections ---------------------------------------------------------------------------------
def log_head(stack: Stack) -> Checkpoint:
    """The newest event projections may read now (fintech.eventstore.head, from outside)."""
    import psycopg

    with psycopg.connect(stack.postgres.url(), autocommit=True, connect_timeout=5) as conn:
        # The horizon in a statement of its own, before the read (migration fintech 0003 says why).
        horizon = conn.execute("SELECT fintech_log_horizon()::text::bigint").fetchone()[0]
        row = conn.execute(
            "SELECT transaction_id::text::bigint, position FROM fintech_event WHERE transaction_id < %s::text::xid8 "
            "ORDER BY transaction_id DESC, position DESC LIMIT 1",
            [horizon],
        ).fetchone()
    return tuple(row) if row else (0, 0)


def checkpoints(stack: Stack) -> dict[str, Checkpoint]:
    rows = stack.sql("SELECT name, checkpoint_transaction, checkpoint_position FROM projections_projectionstate")
    return {name: (transaction_id, position) for name, transaction_id, position in rows}


def caught_up_to(stack: Stack, target: Checkpoint) -> bool:
    """Whether every projection's checkpoint is at or past `target` (a projection moves its checkpoint over
    events it does not handle, so each one reaches the head of the log)."""
    try:
        at = checkpoints(stack)
    except Exception:  # noqa: BLE001 - the database restarting: not caught up yet
        return False
    return all(name in at and at[name] >= target for name in stack.projections)


def wait_caught_up(stack: Stack, *, timeout: float) -> float | None:
    """Wait until every projection is at the head of the log and the head stays put (the ledger's bookings
    append events of their own while catching up); seconds waited, None on timeout."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        head = log_head(stack)
        if caught_up_to(stack, head) and log_head(stack) == head:
            return time.monotonic() - started
        time.sleep(0.2)
    return None


# the checks --------------------------------------------------------------------------------------------------
def status_label(status: int | str) -> str:
    return str(status)


def answers_tally(journal: Journal) -> collections.Counter:
    return collections.Counter(status_label(attempt.status) for attempt in journal.attempts())


def answers_acceptable(journal: Journal) -> list[str]:
    """Every answer was 2xx, 4xx, 503 or a dropped connection."""
    bad = collections.Counter(
        status_label(a.status)
        for a in journal.attempts()
        if not (a.status == DROP or a.status == 503 or 200 <= a.status < 300 or 400 <= a.status < 500)
    )
    return [f"{count} answer(s) {status}" for status, count in sorted(bad.items())]


def calls_settled(journal: Journal) -> list[str]:
    """Once the fault cleared, every call's retries reached an answer."""
    unsettled = [call for call in journal.calls if call.status is None]
    if not unsettled:
        return []
    first = unsettled[0]
    return [f"{len(unsettled)} call(s) never answered within the retry time, e.g. {first.method} {first.path}"]


def reconcile_clean(verdicts: dict[str, dict]) -> list[str]:
    """`reconcile` finds no difference."""
    reconcile = verdicts["reconcile"]
    if reconcile["ok"]:
        return []
    differences = [line.strip() for line in reconcile["output"].splitlines() if line.startswith(" ")]
    return [f"reconcile: {len(differences)} difference(s), e.g. {differences[0] if differences else reconcile}"]


def projections_at_head(verdicts: dict[str, dict]) -> list[str]:
    """`projection_status` says every projection has no lag and no error."""
    lines = verdicts["projection_status"]["output"].splitlines()
    behind = [
        line.strip() for line in lines if ("lag " in line and " lag 0 events" not in line) or "stopped at" in line
    ]
    return [f"projection behind: {line}" for line in behind]


def log_exactly_once(stack: Stack) -> list[str]:
    """Every event is in the log once: unique ids, one event per (stream, version), each stream's events
    numbered 1..its version without a gap, and no event outside a stream."""
    ((events, ids, slots),) = stack.sql(
        "SELECT count(*), count(DISTINCT event_id), count(DISTINCT (aggregate_id, version)) FROM fintech_event"
    )
    ((streams_total,),) = stack.sql("SELECT coalesce(sum(version), 0) FROM fintech_stream")
    ((gapped,),) = stack.sql(
        "SELECT count(*) FROM fintech_stream s LEFT JOIN (SELECT aggregate_id, count(*) n, min(version) lo, "
        "max(version) hi FROM fintech_event GROUP BY aggregate_id) e ON e.aggregate_id = s.stream_id "
        "WHERE e.n IS DISTINCT FROM s.version OR e.lo <> 1 OR e.hi <> s.version"
    )
    failures = []
    if ids != events:
        failures.append(f"{events - ids} event id(s) appear twice")
    if slots != events:
        failures.append(f"{events - slots} (stream, version) pair(s) hold two events")
    if streams_total != events:
        failures.append(f"the log holds {events} events, its streams' versions add up to {streams_total}")
    if gapped:
        failures.append(f"{gapped} stream(s) whose events are not numbered 1..version")
    return failures


def idempotency_replays(stack: Stack, journal: Journal) -> list[str]:
    """Every command that succeeded, sent again with its key and body, is answered the first answer again
    (marked Idempotent-Replayed), and appends nothing."""
    commands = [call for call in journal.calls if call.is_command and call.succeeded]
    tokens = {"merchant": stack.tokens["merchant"], "finance": stack.tokens["finance"]}
    clients = {role: ApiClient(stack.base_url, token, Journal(), retry_seconds=0) for role, token in tokens.items()}
    events_before = stack.sql("SELECT count(*) FROM fintech_event")[0][0]
    different: list[str] = []
    try:
        for call in commands:
            client = clients["merchant" if call.path.startswith(("/api/v1/payments", "/api/v1/vault")) else "finance"]
            status, body, replayed = client.replay(call)
            if (status, body) != (call.status, call.answer) or not replayed:
                different.append(f"{call.path} {call.status}→{status}{'' if replayed else ' (not a replay)'}")
    finally:
        for client in clients.values():
            client.close()
    events_after = stack.sql("SELECT count(*) FROM fintech_event")[0][0]
    failures = []
    if different:
        failures.append(f"{len(different)} of {len(commands)} replays differ, e.g. {different[0]}")
    if events_after != events_before:
        failures.append(f"replaying appended {events_after - events_before} event(s)")
    return failures


def reads_match_beliefs(stack: Stack, journal: Journal, beliefs: Beliefs) -> list[str]:
    """The API's reads (payment read model, payment events, balances) say what the clients were told: every
    payment of this load and every customer account."""
    journal_payments = {
        call.answer["id"] for call in journal.calls if call.path == "/api/v1/payments" and call.status == 201
    }
    merchant = ApiClient(stack.base_url, stack.tokens["merchant"], Journal(), retry_seconds=10)
    finance = ApiClient(stack.base_url, stack.tokens["finance"], Journal(), retry_seconds=10)
    failures: list[str] = []
    try:
        for payment_id in sorted(journal_payments):
            belief = beliefs.payments.get(payment_id)
            if belief is None or belief.uncertain:
                continue
            failures += _payment_differs(merchant, payment_id, belief)
        for account, available in sorted(beliefs.balances.items()):
            if account in beliefs.uncertain_accounts:
                continue
            read = finance.read(f"/api/v1/accounts/{account}/balance")
            seen = read.answer["available"]["amount"] if read.status == 200 else read.status
            if seen != available:
                failures.append(f"account {account}: balance {seen} ({_source(read)}), the clients expect {available}")
    finally:
        merchant.close()
        finance.close()
    return failures


def _source(read: Call) -> str:
    answer = read.answer if isinstance(read.answer, dict) else {}
    return answer.get("source") or answer.get("freshness", {}).get("source", "?")


def _payment_differs(client: ApiClient, payment_id: str, belief) -> list[str]:
    read = client.read(f"/api/v1/payments/{payment_id}")
    if read.status != 200:
        return [f"payment {payment_id}: GET answered {read.status}"]
    document = read.answer
    seen = (document["status"], document["captured_amount"]["amount"], document["refunded_amount"]["amount"])
    expected = (belief.status, belief.captured, belief.refunded)
    failures = []
    if seen != expected:
        failures.append(f"payment {payment_id}: read {seen} ({_source(read)}), the clients expect {expected}")
    events = client.read(f"/api/v1/payments/{payment_id}/events")
    types = [event["event_type"] for event in events.answer["results"]] if events.status == 200 else events.status
    if types != belief.events:
        failures.append(f"payment {payment_id}: events {types}, the clients expect {belief.events}")
    return failures
