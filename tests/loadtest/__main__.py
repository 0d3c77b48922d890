"""`make loadtest` (`python -m tests.loadtest`): mixed traffic against `make serve`'s server at rising concurrency.

The whole application runs on servers of its own in a temporary directory (tests.faults.stack: an embedded
PostgreSQL, two Redis, a Celery worker with beat), the web server being make serve's granian, workers from the
CPU count. Each step runs `clients` threads for a bounded time, each a keep-alive HTTP session sending, at
random: reads of a payment (70 %), of a balance (10 %) and of the payments list (5 %); a payment command (10 %:
create, then authorize, capture and refund it on its next turns); a transfer between customer accounts (5 %).
Every command has an Idempotency-Key. A step prints its throughput, latency percentiles and answers by status;
a chart of latency against throughput is written (SVG). Afterwards the projections must catch up, `reconcile`
must be clean and `projection_status` show no lag: the exit status is 1 otherwise, or when any answer was a 5xx
or a dropped connection.
"""

from __future__ import annotations

import argparse
import collections
import random
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.faults.checks import projections_at_head, reconcile_clean, wait_caught_up
from tests.faults.load import Beliefs, fixtures_create, money
from tests.faults.stack import Stack
from tests.loadtest.chart import chart_svg

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "loadtest"
READ_POOL = 40
DROP = "drop"


def out(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


@dataclass
class Step:
    clients: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: collections.Counter = field(default_factory=collections.Counter)
    by_kind: collections.Counter = field(default_factory=collections.Counter)

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000 if ordered else 0.0

    @property
    def errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if status == DROP or int(status) >= 500)


class Traffic:
    """What every client shares: the fixtures, and the payments there are to read."""

    def __init__(self, base_url: str, tokens: dict[str, str], card_token: str, accounts: tuple[str, ...]) -> None:
        self.base_url, self.tokens, self.card_token, self.accounts = base_url, tokens, card_token, accounts
        self.payments: list[str] = []
        self.lock = threading.Lock()

    def session(self, role: str) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Token {self.tokens[role]}"
        return session


class Client:
    """One thread: a merchant's session and a finance one, and the payment it is taking through its life."""

    def __init__(self, traffic: Traffic, seed: int) -> None:
        self.traffic = traffic
        self.rng = random.Random(seed)  # noqa: S311 - a load pattern, not a secret
        self.merchant, self.finance = traffic.session("merchant"), traffic.session("finance")
        self.flow: list[tuple[str, dict]] = []
        self.payment: str | None = None

    def run(self, step: Step, until: float, lock: threading.Lock) -> None:
        while time.monotonic() < until:
            kind, method, session, path, body = self._next()
            started = time.perf_counter()
            try:
                headers = {"Idempotency-Key": str(uuid.uuid4())} if method == "POST" else {}
                response = session.request(method, self.traffic.base_url + path, json=body, headers=headers, timeout=30)
                status: int | str = response.status_code
            except requests.RequestException:
                status, response = DROP, None
                session.close()
            elapsed = time.perf_counter() - started
            if response is not None and kind == "create" and status == 201:
                self.payment = response.json()["id"]
                with self.traffic.lock:
                    self.traffic.payments.append(self.payment)
            elif kind != "create" and kind in ("authorize", "capture", "refund") and status != 200 and status != 201:
                self.flow = []  # the payment goes no further
            with lock:
                step.latencies.append(elapsed)
                step.statuses[str(status)] += 1
                step.by_kind[kind] += 1

    def _next(self) -> tuple[str, str, requests.Session, str, dict | None]:
        roll = self.rng.random()
        traffic = self.traffic
        if roll < 0.70 and traffic.payments:
            return "read payment", "GET", self.merchant, f"/api/v1/payments/{self.rng.choice(traffic.payments)}", None
        if roll < 0.80:
            return (
                "read balance",
                "GET",
                self.finance,
                f"/api/v1/accounts/{self.rng.choice(traffic.accounts)}/balance",
                None,
            )  # noqa: E501
        if roll < 0.85:
            return "list", "GET", self.merchant, "/api/v1/payments?limit=20", None
        if roll < 0.95:
            return self._payment_step()
        source, destination = self.rng.sample(traffic.accounts, 2)
        body = {"from_account": source, "to_account": destination, "amount": money(self.rng.randrange(1, 50))}
        return "transfer", "POST", self.finance, "/api/v1/transfers", {**body, "reference": "load"}

    def _payment_step(self) -> tuple[str, str, requests.Session, str, dict | None]:
        if not self.flow or self.payment is None:
            amount = self.rng.randrange(5000, 20000, 10)
            self.flow = [("authorize", {}), ("capture", {"amount": money(amount)}), ("refund", {"amount": money(100)})]
            self.payment = None
            body = {"amount": money(amount), "payment_method": {"token": self.traffic.card_token}}
            return "create", "POST", self.merchant, "/api/v1/payments", body
        action, body = self.flow.pop(0)
        path = f"/api/v1/payments/{self.payment}/{'refunds' if action == 'refund' else action}"
        return action, "POST", self.merchant, path, body


def run_step(traffic: Traffic, clients: int, seconds: float, seed: int) -> Step:
    step, lock = Step(clients), threading.Lock()
    workers = [Client(traffic, seed * 100 + index) for index in range(clients)]
    started = time.monotonic()
    threads = [threading.Thread(target=w.run, args=(step, started + seconds, lock), daemon=True) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    step.seconds = time.monotonic() - started
    return step


def _seed_payments(traffic: Traffic, count: int) -> None:
    client = Client(traffic, seed=0)
    for _ in range(count):
        amount = client.rng.randrange(5000, 20000, 10)
        body = {"amount": money(amount), "payment_method": {"token": traffic.card_token}}
        created = client.merchant.post(
            f"{traffic.base_url}/api/v1/payments", json=body, headers={"Idempotency-Key": str(uuid.uuid4())}
        )
        created.raise_for_status()
        payment = created.json()["id"]
        for path, step_body in (("authorize", {}), ("capture", {"amount": money(amount)})):
            client.merchant.post(
                f"{traffic.base_url}/api/v1/payments/{payment}/{path}",
                json=step_body,
                headers={"Idempotency-Key": str(uuid.uuid4())},
            ).raise_for_status()
        traffic.payments.append(payment)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.loadtest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 2, 4, 8, 16], help="the steps' client threads")
    parser.add_argument("--seconds", type=float, default=8.0, help="duration of each step (default 8)")
    parser.add_argument("--chart", type=Path, default=ARTIFACTS / "latency.svg", help="where the chart goes")
    args = parser.parse_args(argv)
    if min(args.clients) < 1 or args.seconds <= 0:
        parser.error("clients and seconds must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Counted as in production, never reached: the load is the clients', not a throttle's.
    limits = {"API_THROTTLE_TOKEN_RATE": "1000000000/minute", "API_THROTTLE_IP_RATE": "1000000000/minute"}
    with Stack(serve=True, app_env=limits, say=out) as stack:
        fixtures = fixtures_create(stack.base_url, stack.tokens, Beliefs())
        traffic = Traffic(stack.base_url, stack.tokens, fixtures.card_token, fixtures.accounts)
        _seed_payments(traffic, READ_POOL)
        out(f"make serve's granian on {stack.base_url}; {args.seconds:g} s per step")
        out(f"{'clients':>8}{'requests/s':>12}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}   answers by status")
        steps = []
        for index, clients in enumerate(args.clients):
            step = run_step(traffic, clients, args.seconds, seed=index + 1)
            steps.append(step)
            answers = " ".join(f"{status}:{count}" for status, count in sorted(step.statuses.items()))
            out(
                f"{clients:>8}{step.throughput:>12,.0f}{step.percentile(0.50):>9.1f}{step.percentile(0.95):>9.1f}"
                f"{step.percentile(0.99):>9.1f}{step.errors:>8}   {answers}"
            )
        args.chart.parent.mkdir(parents=True, exist_ok=True)
        args.chart.write_text(chart_svg(steps))
        out(f"chart: {args.chart}")
        waited = wait_caught_up(stack, timeout=120)
        verdicts = stack.verdicts()
        problems = reconcile_clean(verdicts) + projections_at_head(verdicts)
        if waited is None:
            problems.append("the projections did not catch up within 120 s")
        errors = sum(step.errors for step in steps)
        if errors:
            problems.append(f"{errors} answer(s) were a 5xx or a dropped connection")
        out(f"afterwards: projections caught up in {waited:.1f} s" if waited is not None else "afterwards:")
        for problem in problems:
            out(f"  FAIL {problem}")
        if not problems:
            out("  reconcile clean, every projection at the head of the log, no 5xx: PASS")
        return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
