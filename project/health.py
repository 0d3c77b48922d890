"""Health for load balancers and orchestrators.

- `/healthz`: the process answers (nothing else is touched: a slow database must not get a live process killed).
- `/readyz`: PostgreSQL, Redis and the Celery broker answer, and no projection lags more than
  READYZ_MAX_LAG_SECONDS behind the log; 503 with the failing checks otherwise. What it says names components and
  error classes only, never an address or a credential. With a read replica configured it also says whether the
  replica serves reads now; that never makes the process unready.
"""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django_redis import get_redis_connection

from fintech import dbrouter
from fintech.celery import app as celery_app
from projections.selectors import projection_lags

OK = "ok"


def _failure(error: Exception) -> str:
    return f"unavailable ({type(error).__name__})"


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as error:  # noqa: BLE001 - any failure makes the process not ready, and says which
        return _failure(error)
    return OK


def _redis() -> str:
    try:
        get_redis_connection("default").ping()
    except Exception as error:  # noqa: BLE001
        return _failure(error)
    return OK


def _broker() -> str:
    try:
        with celery_app.connection_for_write() as broker:
            broker.ensure_connection(max_retries=1, interval_start=0, timeout=settings.READYZ_BROKER_TIMEOUT_SECONDS)
    except Exception as error:  # noqa: BLE001
        return _failure(error)
    return OK


def _projections() -> str:
    try:
        lags = projection_lags()
    except Exception as error:  # noqa: BLE001
        return _failure(error)
    bound = settings.READYZ_MAX_LAG_SECONDS
    behind = [f"{name} {seconds:.0f} s" for name, seconds, _ in lags if seconds > bound]
    stopped = [f"{name} stopped" for name, _, error in lags if error]
    problems = behind + stopped
    return OK if not problems else f"{', '.join(problems)} (bound {bound} s)"


@never_cache
@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request):
    checks = {"database": _database(), "redis": _redis(), "broker": _broker()}
    checks["projections"] = _projections() if checks["database"] == OK else "not checked (no database)"
    ready = all(value == OK for value in checks.values())
    if settings.DATABASE_REPLICA_URL:
        # Reported, never a reason to be unready: the primary serves every read while the replica cannot.
        checks["replica"] = OK if dbrouter.health.replica_usable() else "unusable: reads go to the primary"
    return JsonResponse({"status": "ready" if ready else "not ready", "checks": checks}, status=200 if ready else 503)
