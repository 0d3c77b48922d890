"""The read path through the production server: `GET /api/v1/payments/{id}` and `GET
/api/v1/accounts/{id}/balance` of cached documents, by a merchant's API token, under `make serve`'s granian (workers
from the CPU count, access log, multiprocess metrics), loaded by wrk, beside the floor: a view on the same server
that does one Redis GET of the payment's document and returns its bytes (project.bench). Rounds interleave the
three; each figure is the median of the rounds' requests/s, and any non-2xx answer fails the bench.

Call only after django.setup() on the bench database.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

from tests.bench.projections import _median

TARGET_RATIO = 0.5
CONNECTIONS = 16
ACTOR = "user:bench-serve"


def _fixtures() -> tuple[str, str, str]:
    """(payment path, balance path, API token) of a merchant with a captured payment and a ledger account, both
    projected and cached."""
    from accounts.services import api_token_issue, merchant_get_or_create
    from fintech.money import Money
    from ledger import services as ledger
    from ledger.domain import AccountKind
    from payments import services as payments
    from projections.balances import BALANCES
    from projections.engine import projection_run
    from projections.payments import PAYMENTS
    from vault.services import card_tokenize

    merchant_id = merchant_get_or_create(merchant_id=f"m-serve-{uuid.uuid4().hex[:8]}").id
    card = card_tokenize(card_number="4242424242424242", exp_month=12, exp_year=2035, merchant_id=merchant_id)
    payment = payments.payment_initiate(
        merchant_id=merchant_id, amount=Money(1200, "JPY"), payment_method_token=card.token, actor=ACTOR
    )
    payments.payment_authorize(payment_id=payment.id, actor=ACTOR)
    payments.payment_capture(payment_id=payment.id, actor=ACTOR)
    account = ledger.account_open(
        owner_type="merchant", owner_id=merchant_id, currency="JPY", kind=AccountKind.MERCHANT_PAYABLE, actor=ACTOR
    )
    for name in (PAYMENTS, BALANCES):
        projection_run(name=name)
    token = api_token_issue(username=f"bench-serve-{merchant_id}", merchant_id=merchant_id)
    return f"/api/v1/payments/{payment.id}", f"/api/v1/accounts/{account.id}/balance", token


def _get(url: str, token: str = "") -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Token {token}"} if token else {})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - our own server
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _serve(url: str, port: int, directory: Path) -> subprocess.Popen:
    from django.conf import settings

    from fintech.run import web_command

    metrics = directory / "metrics"
    metrics.mkdir()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "FINTECH_BENCH_ENDPOINTS": "true",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
        "STATIC_ROOT": str(directory / "static"),
        # Counted on every request, as in production, but never reached by the bench's one token.
        "API_THROTTLE_TOKEN_RATE": "1000000000/minute",
        "API_THROTTLE_IP_RATE": "1000000000/minute",
    }
    command = web_command(sys.executable, [sys.executable, "manage.py"], serve=True, address=f"127.0.0.1:{port}")
    log = (directory / "server.log").open("wb")
    return subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
        command, cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_ready(base: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited: {log.read_text()[-2000:]}")
        try:
            if _get(f"{base}/healthz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server did not answer: {log.read_text()[-2000:]}")


def _wrk(url: str, token: str, seconds: float) -> float:
    """Requests/s of wrk against `url`; raises on any non-2xx answer or socket error."""
    command = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{max(1, round(seconds))}s", "--latency", url]
    if token:
        command[1:1] = ["-H", f"Authorization: Token {token}"]
    report = subprocess.run(command, capture_output=True, text=True, check=True).stdout  # noqa: S603
    if "Non-2xx" in report or "Socket errors" in report:
        raise RuntimeError(f"wrk {url}: errors\n{report}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", report).group(1))


def run(*, url: str, seconds: float, rounds: int, out: Callable[[str], None]) -> dict[str, float] | None:
    if shutil.which("wrk") is None:
        out("")
        out("serve: wrk is not installed (apt-get install -y wrk): the read path through the server is not measured")
        return None
    payment, balance, token = _fixtures()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as directory:
        process = _serve(url, port, Path(directory))
        try:
            _wait_ready(base, process, Path(directory) / "server.log")
            payment_id = payment.rsplit("/", 1)[1]
            targets = {
                "raw": (f"{base}/bench/redis-get/{payment_id}", ""),
                "payment": (f"{base}{payment}", token),
                "balance": (f"{base}{balance}", token),
            }
            for name, (target, key) in targets.items():
                # The first GET of each goes through DRF (and caches the token); each must be a 200 from the cache.
                for _ in range(2):
                    status, body = _get(target, key)
                if status != 200 or (name != "raw" and b'"source":"cache"' not in body):
                    raise RuntimeError(f"GET {target}: {status} {body[:300]!r}")
            _wrk(targets["raw"][0], "", 1)  # warm every worker
            rates: dict[str, list[float]] = {name: [] for name in targets}
            for _ in range(rounds):
                for name, (target, key) in targets.items():
                    rates[name].append(_wrk(target, key, seconds))
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    raw = _median(rates["raw"])
    out("")
    duration = max(1, round(seconds))
    out(
        f"serve: granian ({os.cpu_count()} workers, as make serve), wrk -t2 -c{CONNECTIONS} {duration} s, "
        f"{rounds} interleaved rounds (median requests/s)"
    )
    out(f"{'read':<24}{'requests/s':>14}{'one Redis GET view':>22}{'ratio':>10}")
    ratios = {}
    for name, label in (("payment", "GET /payments/{id}"), ("balance", "GET /accounts/{id}/balance")):
        rate = _median(rates[name])
        ratios[name] = rate / raw
        out(f"{label:<24}{rate:>14,.0f}{raw:>22,.0f}{rate / raw:>10.4f}")
    for name, ratio in ratios.items():
        out(f"  {name}: target >= {TARGET_RATIO} of the one-GET view: {'MET' if ratio >= TARGET_RATIO else 'NOT MET'}")
    return ratios
