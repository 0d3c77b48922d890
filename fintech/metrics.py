"""Prometheus metrics: request latency per route, API commands and their outcomes, ledger entries, vault
tokenisations and detokenisations; projection lag is read at scrape time (project.metrics).

Under a server of several processes (make serve), PROMETHEUS_MULTIPROC_DIR names a directory the processes
share, and a scrape, whichever process answers it, sums them all (prometheus_client's multiprocess mode)."""

from __future__ import annotations

import functools
import time

from django.db import transaction
from prometheus_client import Counter, Histogram

REQUEST_SECONDS = Histogram(
    "fintech_http_request_duration_seconds",
    "Time to answer an HTTP request, per route pattern, method and status class.",
    ["route", "method", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
COMMANDS = Counter(
    "fintech_api_commands_total",
    "API commands (POST, PUT, PATCH, DELETE under /api/) per route and HTTP status.",
    ["route", "status"],
)
LEDGER_ENTRIES = Counter("fintech_ledger_entries_total", "Journal entries committed, per kind.", ["kind"])
VAULT_TOKENISATIONS = Counter("fintech_vault_tokenisations_total", "Cards vaulted or refreshed.")
VAULT_DETOKENISATIONS = Counter(
    "fintech_vault_detokenisations_total", "Detokenisation attempts, per outcome and channel.", ["outcome", "channel"]
)
COMMAND_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def ledger_entry_committed(kind: str) -> None:
    """Count a journal entry once its transaction commits (a rolled-back one was never written)."""
    transaction.on_commit(_ledger_entries(kind).inc)


@functools.cache
def _ledger_entries(kind: str):
    # labels() looks the child up under a lock on every call; there are a handful of kinds.
    return LEDGER_ENTRIES.labels(kind=kind)


class RequestMetricsMiddleware:
    """Every request's latency under its route pattern (never the raw path: ids would make a series each)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = match.route if match is not None and match.route else "unmatched"
        status = f"{response.status_code // 100}xx"
        REQUEST_SECONDS.labels(route=route, method=request.method, status=status).observe(time.perf_counter() - started)
        if request.method in COMMAND_METHODS and request.path.startswith("/api/"):
            COMMANDS.labels(route=route, status=str(response.status_code)).inc()
        return response
