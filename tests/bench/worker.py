"""One benchmark client: an OS process of its own (spawned), with its own database connection.

The service client sets Django up in its process (DATABASE_URL already names the bench database); the hand
SQL client never imports Django. Each client warms up outside the measurement, waits at the shared barrier,
then runs payments for a fixed count or until a deadline, and reports its start and end on the monotonic
clock (system-wide on Linux, so the parent compares them across processes).
"""

from __future__ import annotations

import os
import time
import traceback
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier
from queue import Queue

SERVICE = "service"
HAND_SQL = "hand SQL"
BARRIER_TIMEOUT = 180.0


@dataclass(frozen=True)
class ClientSpec:
    implementation: str
    conninfo: str
    merchant_id: str
    payments: int | None
    seconds: float
    warmup: int


@dataclass(frozen=True)
class ClientResult:
    index: int
    payments: int
    started: float
    finished: float
    payment_ids: bytes  # 16 bytes per payment, warm-up payments included (they are verified too)
    error: str | None = None


def _service_pay():
    import django

    django.setup()
    from django.db import connection

    if not connection.settings_dict["NAME"].endswith("_bench"):
        raise RuntimeError(f"refusing to benchmark database {connection.settings_dict['NAME']!r}")
    from tests.bench import service

    return service.pay


def _hand_pay(conninfo: str):
    from tests.bench.handsql import HandWrittenPayments

    return HandWrittenPayments(conninfo).pay


def client_main(index: int, spec: ClientSpec, barrier: Barrier, results: Queue) -> None:
    ids: list[bytes] = []
    try:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fintech.settings")
        pay = _service_pay() if spec.implementation == SERVICE else _hand_pay(spec.conninfo)
        merchant_id = f"{spec.merchant_id}-{index}"
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
