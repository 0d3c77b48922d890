"""Read-model queries on a PostgreSQL streaming replica (DATABASE_REPLICA_URL), everything else on the primary.

A query goes to the replica only when all of these hold, and to the primary otherwise:
- it reads one of the read tables (READ_MODELS): never the event store, the ledger, the vault, users or tokens,
  which commands read and which must see their own writes;
- it runs inside `replica_reads()`, which `ReplicaReadsMiddleware` opens around GET, HEAD and OPTIONS requests
  only: commands, Celery tasks, management commands and POSTs read the primary;
- no transaction is open on the primary (what runs in one must see that transaction's snapshot);
- the replica is usable: it answers, is still in recovery (a promoted or mistaken server follows no one), and
  has replayed what the primary had written DATABASE_REPLICA_MAX_LAG_SECONDS ago. Each process checks that at
  most once a second, by comparing the replica's replay position with the primary's write positions it noted
  before; a replica that is down or behind is left alone until a check finds it usable again.

The read models are eventually consistent already (projections run after the commit); the replica adds its
replay lag, bounded by the setting.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
import time
from collections import deque
from collections.abc import Iterator

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

logger = logging.getLogger(__name__)

REPLICA = "replica"
READ_MODELS = frozenset({"projections.paymentview", "projections.merchantdailysummary", "projections.balanceview"})
CHECK_SECONDS = 1.0

_reads_allowed: contextvars.ContextVar[bool] = contextvars.ContextVar("replica_reads", default=False)


@contextlib.contextmanager
def replica_reads() -> Iterator[None]:
    """Read-model queries within may go to the replica."""
    token = _reads_allowed.set(True)
    try:
        yield
    finally:
        _reads_allowed.reset(token)


class ReplicaHealth:
    """Whether the replica may serve reads, checked at most every CHECK_SECONDS per process.

    `samples` holds (time, primary write position) pairs noted at each check: the replica's lag is the age of
    the newest sample its replay position has reached (0 once it has reached the primary's current position).
    A replica behind every sample kept is lagging by more than the bound."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.checked_at = float("-inf")
        self.usable = False
        self.lag_seconds: float | None = None
        self.samples: deque[tuple[float, int]] = deque()

    def replica_usable(self) -> bool:
        now = time.monotonic()
        if now - self.checked_at < CHECK_SECONDS:
            return self.usable
        # One thread checks; the others go on with the last answer meanwhile.
        if not self.lock.acquire(blocking=False):
            return self.usable
        try:
            self.usable = self._check(now)
            self.checked_at = time.monotonic()
        finally:
            self.lock.release()
        return self.usable

    def _check(self, now: float) -> bool:
        bound = settings.DATABASE_REPLICA_MAX_LAG_SECONDS
        try:
            with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
                cursor.execute("SELECT (pg_current_wal_lsn() - '0/0')::bigint")
                (primary_at,) = cursor.fetchone()
            replica = connections[REPLICA]
            with replica.cursor() as cursor:
                cursor.execute("SELECT pg_is_in_recovery(), (pg_last_wal_replay_lsn() - '0/0')::bigint")
                in_recovery, replayed = cursor.fetchone()
        except DatabaseError as error:
            self._unusable(f"does not answer ({type(error).__name__})")
            connections[REPLICA].close()
            return False
        if not in_recovery:
            self._unusable("is not in recovery: it follows no primary")
            return False
        self.samples.append((now, primary_at))
        while now - self.samples[0][0] > bound + CHECK_SECONDS:
            self.samples.popleft()
        reached = [at for at, position in self.samples if replayed >= position]
        self.lag_seconds = now - reached[-1] if reached else None
        if self.lag_seconds is None or self.lag_seconds > bound:
            self._unusable(f"lags more than {bound} s")
            return False
        if not self.usable:
            logger.info("read replica usable: read-model queries of safe requests go to it")
        return True

    def _unusable(self, why: str) -> None:
        if self.usable or self.checked_at == float("-inf"):
            logger.warning("read replica %s: read-model queries go to the primary", why)
        self.lag_seconds = None


health = ReplicaHealth()


def read_alias(model) -> str:
    """The database a read of `model` goes to now."""
    return ReplicaRouter().db_for_read(model) or DEFAULT_DB_ALIAS


class ReplicaRouter:
    """Installed only when DATABASE_REPLICA_URL is set (settings)."""

    def db_for_read(self, model, **hints) -> str | None:
        if (
            _reads_allowed.get()
            and model._meta.label_lower in READ_MODELS
            and REPLICA in connections.settings
            and not connections[DEFAULT_DB_ALIAS].in_atomic_block
            and health.replica_usable()
        ):
            return REPLICA
        return None

    def db_for_write(self, model, **hints) -> str | None:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints) -> bool:
        # Both databases hold the same rows: the replica is a copy of the primary.
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints) -> bool:
        # The replica receives the schema by replication; it refuses writes anyway.
        return db == DEFAULT_DB_ALIAS


class ReplicaReadsMiddleware:
    """Opens `replica_reads()` around safe-method requests."""

    SAFE = frozenset({"GET", "HEAD", "OPTIONS"})

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method not in self.SAFE:
            return self.get_response(request)
        with replica_reads():
            return self.get_response(request)
