"""Run scenarios under load against a `Stack`, check what must hold afterwards, and render the table."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.faults import checks
from tests.faults.load import Beliefs, Fixtures, Load, fixtures_create
from tests.faults.scenarios import FaultContext, Scenario
from tests.faults.stack import Stack


@dataclass(frozen=True)
class Options:
    clients: int = 3
    max_commands: int = 400  # per client and scenario: the load's bound, whatever the times below
    warmup_seconds: float = 2.0  # load before the fault
    fault_seconds: float = 3.0  # how long the fault lasts
    after_seconds: float = 3.0  # load after the fault cleared
    retry_seconds: float = 30.0  # how long a client retries one command (503, dropped connection)
    think_seconds: float = 0.02  # between a client's commands
    catch_up_timeout: float = 60.0
    seed: int = 1


@dataclass
class Result:
    name: str
    requests: int = 0
    commands: int = 0
    tally: dict[str, int] = field(default_factory=dict)
    first_success: float | None = None  # s from fault cleared to the first command answered 2xx after it
    caught_up: float | None = None  # s from fault cleared to every projection at the log head of that moment
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.failures


def run_suite(scenarios: list[Scenario], options: Options, say: Callable[[str], None]) -> list[Result]:
    """Start the stack, run the scenarios one after the other under load, stop everything."""
    results: list[Result] = []
    with Stack(say=say) as stack:
        say(f"application at {stack.base_url}; creating the load's accounts and card")
        beliefs = Beliefs()
        fixtures = fixtures_create(stack.base_url, stack.tokens, beliefs)
        if checks.wait_caught_up(stack, timeout=options.catch_up_timeout) is None:
            raise RuntimeError("the projections did not catch up before any fault")
        for scenario in scenarios:
            results.append(run_scenario(stack, fixtures, beliefs, scenario, options, say))
            say(f"[{scenario.name}] {'PASS' if results[-1].passed else 'FAIL'} in {results[-1].seconds:.0f} s")
    return results


def run_scenario(
    stack: Stack,
    fixtures: Fixtures,
    beliefs: Beliefs,
    scenario: Scenario,
    options: Options,
    say: Callable[[str], None],
) -> Result:
    """Inject the scenario's fault under load, clear it, wait for the read side, check; the result's failures
    say why it did not pass."""
    started = time.monotonic()
    result = Result(scenario.name)
    load = Load(
        base_url=stack.base_url,
        tokens=stack.tokens,
        fixtures=fixtures,
        beliefs=beliefs,
        clients=options.clients,
        max_commands=options.max_commands,
        retry_seconds=options.retry_seconds,
        think_seconds=options.think_seconds,
        seed=options.seed + len(beliefs.payments),
    )
    ctx = FaultContext(stack, fixtures, beliefs, load.journal)
    catch_up = _fault_under_load(scenario, ctx, load, options, result, say)
    say(f"[{scenario.name}] load stopped; waiting for the projections")
    if checks.wait_caught_up(stack, timeout=options.catch_up_timeout) is None:
        result.failures.append(f"projections not at the log head {options.catch_up_timeout:g} s after the load")
    if catch_up is not None:
        result.caught_up = catch_up.stop()
        result.first_success = _first_success_after(load, ctx.cleared_at)
    result.requests = len(load.journal.attempts())
    result.commands = sum(1 for call in load.journal.calls if call.is_command)
    result.tally = dict(checks.answers_tally(load.journal))
    say(f"[{scenario.name}] checking")
    result.failures += _checked(scenario, ctx, load, beliefs)
    result.seconds = time.monotonic() - started
    return result


def _fault_under_load(
    scenario: Scenario,
    ctx: FaultContext,
    load: Load,
    options: Options,
    result: Result,
    say: Callable[[str], None],
) -> _CatchUpWatch | None:
    """Start the load, inject, wait, clear, keep the load on a while, stop it. Returns the watch of the read
    side's recovery, None when the fault could not be cleared in time."""
    catch_up = None
    load.start()
    try:
        time.sleep(options.warmup_seconds)
        say(f"[{scenario.name}] inject")
        ctx.injected_at = time.monotonic()
        scenario.inject(ctx)
        time.sleep(options.fault_seconds)
        say(f"[{scenario.name}] recover")
        scenario.recover(ctx)
        ctx.cleared_at = time.monotonic()
        catch_up = _CatchUpWatch(ctx.stack, ctx.cleared_at)
        time.sleep(options.after_seconds)
    except Exception as error:  # noqa: BLE001 - the harness itself failed: a FAIL with the reason, then go on
        result.failures.append(f"harness: {type(error).__name__}: {error}")
    except BaseException:
        load.stop(wait=False)  # Ctrl-C: straight to the clean-up
        raise
    load.stop()
    if not ctx.cleared_at:
        try:
            scenario.recover(ctx)
        except Exception as error:  # noqa: BLE001 - reported; later scenarios will say what it broke
            result.failures.append(f"could not clear the fault: {error}")
    return catch_up


def _checked(scenario: Scenario, ctx: FaultContext, load: Load, beliefs: Beliefs) -> list[str]:
    """Every check's failures; a check that cannot run is a failure too, with its reason."""
    stack = ctx.stack
    verdicts: dict[str, dict] = {}

    def verdict(check):
        if not verdicts:
            verdicts.update(stack.verdicts())
        return check(verdicts)

    failures: list[str] = []
    for check in (
        lambda: checks.answers_acceptable(load.journal),
        lambda: checks.calls_settled(load.journal),
        lambda: verdict(checks.projections_at_head),
        lambda: verdict(checks.reconcile_clean),
        lambda: checks.log_exactly_once(stack),
        lambda: checks.idempotency_replays(stack, load.journal),
        lambda: checks.reads_match_beliefs(stack, load.journal, beliefs),
        *[(lambda c=c: c(ctx)) for c in scenario.checks],
    ):
        try:
            failures += check()
        except Exception as error:  # noqa: BLE001 - see the docstring
            failures.append(f"check failed to run: {type(error).__name__}: {error}")
    return failures


def _first_success_after(load: Load, cleared_at: float) -> float | None:
    times = [
        attempt.started + attempt.seconds
        for call in load.journal.calls
        if call.is_command
        for attempt in call.attempts
        if isinstance(attempt.status, int) and 200 <= attempt.status < 300 and attempt.started >= cleared_at
    ]
    return min(times) - cleared_at if times else None


class _CatchUpWatch:
    """Polls, from the moment the fault cleared, until every projection reached the head of the log as it was
    then: how long the read side took to recover, independently of the load that goes on."""

    def __init__(self, stack: Stack, cleared_at: float) -> None:
        self.stack, self.cleared_at = stack, cleared_at
        self.reached: float | None = None
        self._done = threading.Event()
        self.target = checks.log_head(stack)
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._done.is_set():
            if checks.caught_up_to(self.stack, self.target):
                self.reached = time.monotonic() - self.cleared_at
                return
            time.sleep(0.1)

    def stop(self) -> float | None:
        # The final wait has brought every projection to the head: the watch sees it on its next poll.
        self._thread.join(timeout=5)
        self._done.set()
        return self.reached


# the table ---------------------------------------------------------------------------------------------------
def _tally_text(tally: dict[str, int]) -> str:
    order = sorted(tally, key=lambda status: (not status.isdigit(), status))
    return " ".join(f"{status}:{tally[status]}" for status in order)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def table(results: list[Result]) -> str:
    header = ("fault", "requests", "answers by status", "first 2xx", "caught up", "verdict")
    rows = [
        (
            r.name,
            f"{r.requests} ({r.commands} cmd)",
            _tally_text(r.tally),
            _seconds(r.first_success),
            _seconds(r.caught_up),
            "PASS" if r.passed else "FAIL: " + "; ".join(r.failures[:3]) + (" ..." if len(r.failures) > 3 else ""),
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        lines.append(
            "  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
        )
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)
