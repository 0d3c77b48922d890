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


SCENARIOS: list[Scenario] = [
    Scenario("postgres restart (fast)", _postgres_stop, _postgres_start),
    Scenario("redis cache down", _cache_stop, _cache_start, checks=(_caches_refill,)),
    Scenario("broker down", _broker_stop, _broker_start, checks=(_commands_not_held_by_broker,)),
    Scenario("worker SIGKILL", _worker_kill, _worker_start),
]


def scenario_named(name: str) -> Scenario:
    for scenario in SCENARIOS:
        if scenario.name.split()[0] == name or scenario.name == name:
            return scenario
    raise LookupError(f"no scenario {name!r}; known: {', '.join(s.name for s in SCENARIOS)}")
