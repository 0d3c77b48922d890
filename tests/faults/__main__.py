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

from tests.faults.runner import Options, run_suite, table
from tests.faults.scenarios import SCENARIOS, scenario_named

_STARTED = time.monotonic()


def say(line: str) -> None:
    """A progress line, with the seconds since the start."""
    out(f"{time.monotonic() - _STARTED:6.1f} s  {line}")


def out(text: str = "") -> None:
    sys.stdout.write(text + "\n")
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
        results = run_suite(scenarios, options, say)
    except KeyboardInterrupt:
        say("interrupted: servers stopped, directory deleted")
        return 130
    out()
    out(table(results))
    out()
    out(
        f"{len(results)} scenario(s) in {time.monotonic() - started:.0f} s; first 2xx: from the fault cleared to the "
        "first command answered 2xx; caught up: from the fault cleared to every projection at the log head of "
        "that moment"
    )
    for result in results:
        for failure in result.failures:
            out(f"{result.name}: {failure}")
    return 0 if all(result.passed for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
