"""`python -m tests.faults` (`make faults`): start a PostgreSQL, two Redis servers (cache, broker), the
application server and a Celery worker of the suite's own, then inject each fault in turn under a bounded load
of mixed commands, check what must hold once it cleared, and print a table. Exits 1 if any verdict fails.
Everything it started is stopped, and its directory deleted, on exit, Ctrl-C or error."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

from tests.faults.checks import wait_caught_up
from tests.faults.load import Beliefs, fixtures_create
from tests.faults.runner import Options, Result, run_scenario, table
from tests.faults.scenarios import SCENARIOS, scenario_named
from tests.faults.stack import Stack


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, Options]:
    defaults = Options()
    parser = argparse.ArgumentParser(prog="python -m tests.faults", description=__doc__)
    parser.add_argument(
        "--scenario",
        action="append",
        help=f"run only this one (repeatable): {', '.join(s.name.split()[0] for s in SCENARIOS)}",
    )
    parser.add_argument("--clients", type=int, default=int(_env_float("FAULTS_CLIENTS", defaults.clients)))
    parser.add_argument(
        "--max-commands",
        type=int,
        default=int(_env_float("FAULTS_MAX_COMMANDS", defaults.max_commands)),
        help="at most this many commands per client and scenario",
    )
    for name, value, what in (
        ("warmup", defaults.warmup_seconds, "load before each fault"),
        ("fault", defaults.fault_seconds, "how long each fault lasts"),
        ("after", defaults.after_seconds, "load after each fault cleared"),
    ):
        parser.add_argument(
            f"--{name}-seconds", type=float, default=_env_float(f"FAULTS_{name.upper()}_SECONDS", value), help=what
        )
    args = parser.parse_args(argv)
    options = Options(
        clients=args.clients,
        max_commands=args.max_commands,
        warmup_seconds=args.warmup_seconds,
        fault_seconds=args.fault_seconds,
        after_seconds=args.after_seconds,
    )
    return args, options


def run(scenarios, options: Options) -> list[Result]:
    """Start the stack, run the scenarios one after the other, stop everything."""
    results: list[Result] = []
    with Stack(say=say) as stack:
        say(f"application at {stack.base_url}; creating the load's accounts and card")
        beliefs = Beliefs()
        fixtures = fixtures_create(stack.base_url, stack.tokens, beliefs)
        if wait_caught_up(stack, timeout=options.catch_up_timeout) is None:
            raise RuntimeError("the projections did not catch up before any fault")
        for scenario in scenarios:
            results.append(run_scenario(stack, fixtures, beliefs, scenario, options, say))
            say(f"[{scenario.name}] {'PASS' if results[-1].passed else 'FAIL'} in {results[-1].seconds:.0f} s")
    return results


def _terminate(signum, frame):
    # SIGTERM as Ctrl-C: unwinds through the stack's clean-up.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args, options = parse_args(argv)
    scenarios = [scenario_named(name) for name in args.scenario] if args.scenario else SCENARIOS
    signal.signal(signal.SIGTERM, _terminate)
    # Also when started in the background of a shell, which would have it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    started = time.monotonic()
    try:
        results = run(scenarios, options)
    except KeyboardInterrupt:
        say("interrupted: servers stopped, directory deleted")
        return 130
    say("")
    say(table(results))
    say("")
    say(
        f"{len(results)} scenario(s) in {time.monotonic() - started:.0f} s; first 2xx: from the fault cleared to the "
        "first command answered 2xx; caught up: from the fault cleared to every projection at the log head of "
        "that moment"
    )
    for result in results:
        for failure in result.failures:
            say(f"{result.name}: {failure}")
    return 0 if all(result.passed for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
