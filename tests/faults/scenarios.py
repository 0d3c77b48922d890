"""The faults, one small object each: a name, how to inject it, how to clear it, and checks of its own beyond
the ones every scenario gets (tests.faults.checks). A new fault is one more `Scenario` in `SCENARIOS`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tests.faults.client import ApiClient, Journal
from tests.faults.load import Beliefs, Fixtures
from tests.faults.stack import Stack


@dataclass
class FaultContext:
    """What a scenario's steps may use: the servers and processes (`stack.web`, `stack.worker` and their
    `web_start`/`worker_start`, `stack.postgres`, `stack.cache`, `stack.broker`), the load's journal and the
    clients' beliefs, and the monotonic times at which the fault was injected and cleared (0: not yet)."""

    stack: Stack
    fixtures: Fixtures
    beliefs: Beliefs
    journal: Journal
    injected_at: float = 0.0
    cleared_at: float = 0.0


Step = Callable[[FaultContext], None]
Check = Callable[[FaultContext], list[str]]


@dataclass(frozen=True)
class Scenario:
    """`inject` starts the fault, `recover` ends it and returns once the faulty part serves again; `checks` run
    after the ones every scenario gets."""

    name: str
    inject: Step
    recover: Step
    checks: tuple[Check, ...] = ()


# PostgreSQL --------------------------------------------------------------------------------------------------
def _postgres_stop(ctx: FaultContext) -> None:
    ctx.stack.postgres.stop("fast")


def _postgres_start(ctx: FaultContext) -> None:
    ctx.stack.postgres.start()


# Redis, the cache --------------------------------------------------------------------------------------------
def _cache_stop(ctx: FaultContext) -> None:
    ctx.stack.cache.stop()


def _cache_start(ctx: FaultContext) -> None:
    ctx.stack.cache.start()


def _caches_refill(ctx: FaultContext) -> list[str]:
    """Without an operator, a read after the outage puts what it read back in Redis: the second read of a
    payment and of a balance comes from the cache."""
    failures = []
    payment = next((pid for pid, belief in reversed(ctx.beliefs.payments.items()) if not belief.uncertain), None)
    reads = []
    if payment is not None:
        reads.append(("merchant", f"/api/v1/payments/{payment}", lambda answer: answer["freshness"]["source"]))
    reads.append(("finance", f"/api/v1/accounts/{ctx.fixtures.accounts[0]}/balance", lambda answer: answer["source"]))
    for role, path, source in reads:
        client = ApiClient(ctx.stack.base_url, ctx.stack.tokens[role], Journal(), retry_seconds=10)
        try:
            client.read(path)
            second = client.read(path)
        finally:
            client.close()
        if second.status != 200 or source(second.answer) != "cache":
            failures.append(f"{path}: the second read after the outage came from {second.answer!r:.80}, not cache")
    return failures


# Redis, the broker -------------------------------------------------------------------------------------------
def _broker_stop(ctx: FaultContext) -> None:
    ctx.stack.broker.stop()


def _broker_start(ctx: FaultContext) -> None:
    ctx.stack.broker.start()


SLOW_COMMAND_SECONDS = 2.0


def _commands_not_held_by_broker(ctx: FaultContext) -> list[str]:
    """Nothing that needs the broker holds a request for long: no command answered during the outage took
    more than SLOW_COMMAND_SECONDS."""
    slow = [
        attempt.seconds
        for call in ctx.journal.calls
        if call.is_command
        for attempt in call.attempts
        if ctx.injected_at <= attempt.started <= ctx.cleared_at and attempt.seconds > SLOW_COMMAND_SECONDS
    ]
    return [f"{len(slow)} command(s) took over {SLOW_COMMAND_SECONDS:g} s with the broker down"] if slow else []


# the Celery worker -------------------------------------------------------------------------------------------
def _worker_kill(ctx: FaultContext) -> None:
    ctx.stack.worker.kill()


def _worker_start(ctx: FaultContext) -> None:
    ctx.stack.worker_start()


# the web process, killed between the acquirer's approval and the commit ---------------------------------------
CRASHING_GATEWAY = "tests.faults.gateways.DiesAfterApproval"


def _web_crashing(ctx: FaultContext) -> None:
    """The application server restarted on an acquirer gateway that kills it right after each approval: the next
    authorization of the load dies between the approval and the commit."""
    web = ctx.stack.web
    web.stop()
    web.env = {**web.env, "PAYMENTS_ACQUIRER_GATEWAY": CRASHING_GATEWAY}
    ctx.stack.web_start()


def _web_restart(ctx: FaultContext) -> None:
    web = ctx.stack.web
    died = web.popen is not None and web.popen.poll() is not None
    ctx.stack.say("  the web process died after an approval" if died else "  no authorization reached the acquirer")
    web.stop()
    web.env = {name: value for name, value in web.env.items() if name != "PAYMENTS_ACQUIRER_GATEWAY"}
    ctx.stack.web_start()


def _no_approval_unaccounted_for(ctx: FaultContext) -> list[str]:
    """Once the recovery job has run, every approval the acquirer gave is recorded on its payment (the client's
    retry got it replayed) or voided; no attempt is left open."""
    ctx.stack.manage("recover_authorizations", "--older-than", "0")
    unaccounted = ctx.stack.sql(
        "SELECT s.idempotency_key FROM payments_simulatedauthorization s "
        "WHERE s.approved AND s.voided_at IS NULL AND NOT EXISTS ("
        "  SELECT FROM fintech_event e WHERE e.aggregate_id = s.payment_id AND e.event_type = 'PaymentAuthorized'"
        "  AND e.event_data->>'authorization_code' = s.authorization_code)"
    )
    still_open = ctx.stack.sql("SELECT count(*) FROM payments_authorizationattempt WHERE outcome = ''")[0][0]
    outcomes = dict(ctx.stack.sql("SELECT outcome, count(*) FROM payments_authorizationattempt GROUP BY 1"))
    ctx.stack.say("  authorization attempts: " + ", ".join(f"{k or 'open'} {v}" for k, v in sorted(outcomes.items())))
    failures = []
    if unaccounted:
        failures.append(f"{len(unaccounted)} approval(s) neither recorded nor voided, e.g. {unaccounted[0][0]}")
    if still_open:
        failures.append(f"{still_open} authorization attempt(s) still open after the recovery job")
    return failures


SCENARIOS: list[Scenario] = [
    Scenario("postgres restart (fast)", _postgres_stop, _postgres_start),
    Scenario("redis cache down", _cache_stop, _cache_start, checks=(_caches_refill,)),
    Scenario("broker down", _broker_stop, _broker_start, checks=(_commands_not_held_by_broker,)),
    Scenario("worker SIGKILL", _worker_kill, _worker_start),
    Scenario("web killed after approval", _web_crashing, _web_restart, checks=(_no_approval_unaccounted_for,)),
]


def scenario_named(name: str) -> Scenario:
    for scenario in SCENARIOS:
        if scenario.name.split()[0] == name or scenario.name == name:
            return scenario
    raise LookupError(f"no scenario {name!r}; known: {', '.join(s.name for s in SCENARIOS)}")
