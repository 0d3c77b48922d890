"""An API client as a careful integrator writes one: every command carries an Idempotency-Key, and a 503 or a
dropped connection is retried with the same key and body (after Retry-After), for a bounded time. Every answer
of every attempt is recorded in a `Journal`."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field

import requests

DROP = "drop"  # the status recorded for an attempt that got no HTTP answer (refused, reset, timed out)
CONNECT_TIMEOUT, READ_TIMEOUT = 3.0, 20.0


@dataclass
class Attempt:
    started: float  # time.monotonic()
    seconds: float
    status: int | str  # an HTTP status, or DROP


@dataclass
class Call:
    """One command (or read) and what became of it: the attempts, and the answer it settled on (None when the
    retries ran out without one)."""

    method: str
    path: str
    body: dict | None
    key: str | None
    attempts: list[Attempt] = field(default_factory=list)
    status: int | None = None
    answer: dict | list | None = None

    @property
    def is_command(self) -> bool:
        return self.method == "POST"

    @property
    def succeeded(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class Journal:
    """Every call of a load, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[Call] = []

    def add(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    def attempts(self) -> list[Attempt]:
        with self._lock:
            return [attempt for call in self.calls for attempt in call.attempts]


def _retryable(status: int | str) -> bool:
    return status in (DROP, 503, 429)


class ApiClient:
    """One thread's HTTP session with one API token."""

    def __init__(self, base_url: str, token: str, journal: Journal, *, retry_seconds: float) -> None:
        self.base_url = base_url
        self.journal = journal
        self.retry_seconds = retry_seconds
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {token}"

    def close(self) -> None:
        self.session.close()

    def command(self, path: str, body: dict, *, key: str | None = None) -> Call:
        """POST with an Idempotency-Key (a new one unless given), retried as the API invites."""
        return self.send("POST", path, body, key=key or str(uuid.uuid4()))

    def read(self, path: str) -> Call:
        return self.send("GET", path, None, key=None)

    def send(self, method: str, path: str, body: dict | None, *, key: str | None, record: bool = True) -> Call:
        call = Call(method=method, path=path, body=body, key=key)
        if record:
            self.journal.add(call)
        deadline = time.monotonic() + self.retry_seconds
        while True:
            status, answer, wait = self._attempt(call)
            if not _retryable(status):
                call.status, call.answer = status, answer
                return call
            if time.monotonic() + wait > deadline:
                return call
            time.sleep(wait)

    def replay(self, call: Call) -> tuple[int | str, dict | list | None, bool]:
        """Send a recorded command again, same key and body, recorded nowhere: (status, body, replayed?)."""
        headers = {"Idempotency-Key": call.key} if call.key else {}
        try:
            response = self.session.request(
                call.method,
                self.base_url + call.path,
                json=call.body,
                headers=headers,
                timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
            )
        except requests.RequestException:
            return DROP, None, False
        return response.status_code, _json(response), response.headers.get("Idempotent-Replayed") == "true"

    def _attempt(self, call: Call) -> tuple[int | str, dict | list | None, float]:
        """(status, body, seconds to wait before a retry) of one attempt, recorded in the call."""
        headers = {"Idempotency-Key": call.key} if call.key else {}
        started = time.monotonic()
        try:
            response = self.session.request(
                call.method,
                self.base_url + call.path,
                json=call.body,
                headers=headers,
                timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
            )
        except requests.RequestException:
            call.attempts.append(Attempt(started, time.monotonic() - started, DROP))
            # A fresh connection for the retry: the old one may be half closed.
            self.session.close()
            return DROP, None, 0.5
        call.attempts.append(Attempt(started, time.monotonic() - started, response.status_code))
        try:
            wait = min(float(response.headers.get("Retry-After", "1")), 5.0)
        except ValueError:
            wait = 1.0
        return response.status_code, _json(response), wait


def _json(response: requests.Response) -> dict | list | None:
    try:
        return response.json()
    except ValueError:
        return None
