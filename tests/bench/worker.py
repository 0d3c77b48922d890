"""One benchmark client: an OS process of its own (spawned), with its own database connection.

The parent vaults one card per client merchant before spawning; every payment of a client pays with its
token, through either implementation. The service client sets Django up in its process (DATABASE_URL already
names the bench database); the hand SQL client never imports Django (only `vault.keys`, plain Python and Tink,
for the KEK the service uses). Each client warms up outside the measurement, waits at the shared barrier, then
runs payments for a fixed count or until a deadline, and reports its start and end on the monotonic clock
(system-wide on Linux, so the parent compares them across processes).
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import queue
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier
from queue import Queue
from typing import Any

from tests.bench.handsql import VaultKeys

SERVICE = "service"
HAND_SQL = "hand SQL"
BARRIER_TIMEOUT = 180.0
# Issue 14: each command path at 8 clients, the median of its rounds' ratios, at least 7 rounds.
TARGET_RATIO = 0.85
TARGET_CLIENTS = 8
TARGET_ROUNDS = 7


def target_verdict(what: str, service_rounds: list[float], hand_rounds: list[float]) -> str:
    """The target line of a command path: the median of the per-round ratios against TARGET_RATIO."""
    ratios = sorted(s / h for s, h in zip(service_rounds, hand_rounds, strict=True))
    median = statistics.median(ratios)
    verdict = "MET" if median >= TARGET_RATIO else "NOT MET"
    too_few = ""
    if len(ratios) < TARGET_ROUNDS:
        too_few = f" (only {len(ratios)} rounds: the target asks for {TARGET_ROUNDS})"
    return (
        f"target: {what} >= {TARGET_RATIO:.2f} x hand-written SQL at {TARGET_CLIENTS} clients, median of the rounds: "
        f"{verdict} (median {median:.2f} of {len(ratios)} rounds){too_few}"
    )


@dataclass(frozen=True)
class ClientSpec:
    implementation: str
    conninfo: str
    merchant_id: str
    payments: int | None
    seconds: float
    warmup: int
    tokens: tuple[str, ...]  # the vaulted card of client i's merchant `<merchant_id>-<i>` is tokens[i]
    vault_keys: VaultKeys


@dataclass(frozen=True)
class ClientResult:
    index: int
    payments: int
    started: float
    finished: float
    payment_ids: bytes  # 16 bytes per payment, warm-up payments included (they are verified too)
    error: str | None = None


def _service_pay(token: str) -> Callable[..., object]:
    import django

    django.setup()
    from django.db import connection

    if not connection.settings_dict["NAME"].endswith("_bench"):
        raise RuntimeError(f"refusing to benchmark database {connection.settings_dict['NAME']!r}")
    from projections.services import projections_wake_prepare

    # A one-time cost of a new process, as preparing statements is (the warm-up covers that one).
    projections_wake_prepare()
    from tests.bench import service

    return functools.partial(service.pay, token=token)


def _hand_pay(spec: ClientSpec, token: str) -> Callable[..., object]:
    from tests.bench.handsql import HandWrittenPayments

    pay = functools.partial(HandWrittenPayments(spec.conninfo, spec.vault_keys).pay, token=token)
    if "django" in sys.modules:
        raise RuntimeError("the hand SQL client imported Django")
    return pay


def client_main(index: int, spec: ClientSpec, barrier: Barrier, results: Queue) -> None:
    ids: list[bytes] = []
    try:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fintech.settings")
        merchant_id = f"{spec.merchant_id}-{index}"
        token = spec.tokens[index]
        pay = _service_pay(token) if spec.implementation == SERVICE else _hand_pay(spec, token)
        for _ in range(spec.warmup):
            ids.append(pay(merchant_id=merchant_id).bytes)
        barrier.wait(BARRIER_TIMEOUT)
        started = time.monotonic()
        done = 0
        if spec.payments is not None:
            for _ in range(spec.payments):
                ids.append(pay(merchant_id=merchant_id).bytes)
            done = spec.payments
        else:
            deadline = started + spec.seconds
            while time.monotonic() < deadline:
                ids.append(pay(merchant_id=merchant_id).bytes)
                done += 1
        finished = time.monotonic()
        results.put(ClientResult(index, done, started, finished, b"".join(ids)))
    except BaseException:
        barrier.abort()
        results.put(ClientResult(index, 0, 0.0, 0.0, b"".join(ids), error=traceback.format_exc()))


def spawn_clients(target: Callable[..., None], spec: Any, clients: int) -> tuple[list[Any], float]:
    """Start `clients` processes running `target(index, spec, barrier, results)`, release them together at the
    barrier; returns their results (each with `error`, `started` and `finished`) and the wall seconds from the
    first start to the last finish. Raises when a client failed or died."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(clients)
    results = context.Queue()
    processes = [
        context.Process(target=target, args=(index, spec, barrier, results), name=f"bench-client-{index}")
        for index in range(clients)
    ]
    for process in processes:
        process.start()
    collected: list[Any] = []
    try:
        while len(collected) < clients:
            try:
                collected.append(results.get(timeout=1.0))
            except queue.Empty:
                dead = [p.name for p in processes if p.exitcode not in (None, 0)]
                if dead:
                    raise RuntimeError(f"client processes died without a result: {', '.join(dead)}") from None
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
                process.join()
    errors = [result.error for result in collected if result.error]
    if errors:
        raise RuntimeError(f"{spec.implementation} client failed:\n{errors[0]}")
    return collected, max(r.finished for r in collected) - min(r.started for r in collected)
