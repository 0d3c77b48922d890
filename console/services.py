"""The console's commands: long operations staff start from a page (replay a projection, rebuild its cache,
reconcile the ledger), recorded as an Operation and run by a Celery worker, which writes their progress as it
goes. Who may start which is fintech.policy's to say; the views ask it before calling here."""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from console.models import Operation
from fintech.db import own_connection_execute
from fintech.masking import audit_text
from ledger.reconciliation import reconciliation_run
from projections import engine
from projections import services as projections_services

logger = logging.getLogger(__name__)

PROGRESS_EVERY_SECONDS = 0.5


class OperationRefused(Exception):
    """The operation cannot be started: an unknown target, or the same one is already queued or running."""


def _check_target(kind: str, target: str) -> None:
    if kind == Operation.RECONCILE:
        if target:
            raise OperationRefused("reconcile takes no target")
        return
    projection = engine.projections().get(target)
    if projection is None:
        raise OperationRefused(f"no projection named {target!r}")
    if kind == Operation.REPLAY and not projection.replayable:
        raise OperationRefused(f"{target} is a process manager, not a read model: it is never replayed")
    if kind == Operation.REBUILD_CACHE and (projection.refresh is None or projection.cached_ids is None):
        raise OperationRefused(f"{target} keeps no cache")
    if kind not in (Operation.REPLAY, Operation.REBUILD_CACHE):
        raise OperationRefused(f"unknown operation {kind!r}")


def _abandon_stale(kind: str, target: str) -> None:
    """An open operation that wrote no progress for a while was cut off (its worker killed, its message lost):
    it no longer stands in the way of a new one. A replay still running underneath is kept single by its own
    lock (projections.services.ReplayRunning)."""
    cutoff = timezone.now() - dt.timedelta(seconds=settings.CONSOLE_OPERATION_STALE_SECONDS)
    for operation in Operation.objects.filter(kind=kind, target=target, state__in=Operation.OPEN):
        last_sign = operation.heartbeat_at or operation.requested_at
        if last_sign < cutoff:
            Operation.objects.filter(id=operation.id, state__in=Operation.OPEN).update(
                state=Operation.FAILED,
                finished_at=timezone.now(),
                error=f"abandoned: no progress since {last_sign:%Y-%m-%d %H:%M:%S} UTC",
            )


def operation_request(*, kind: str, target: str, requested_by: str) -> Operation:
    """Record an operation and send it to the workers once committed. Raises OperationRefused for an unknown
    target or while the same operation is queued or running."""
    _check_target(kind, target)
    with transaction.atomic():
        _abandon_stale(kind, target)
        try:
            with transaction.atomic():
                operation = Operation.objects.create(
                    kind=kind, target=target, requested_by=requested_by[:150], requested_at=timezone.now()
                )
        except IntegrityError:
            label = Operation(kind=kind, target=target).label
            raise OperationRefused(f"{label} is already queued or running") from None
        transaction.on_commit(lambda: _send(operation.id))
    return operation


def _send(operation_id: uuid.UUID) -> None:
    from console.tasks import operation_run_task

    try:
        operation_run_task.delay(str(operation_id))
    except Exception as error:  # noqa: BLE001 - whatever the broker client raised: the operation says it failed
        logger.warning("console operation %s not sent: %s", operation_id, error)
        Operation.objects.filter(id=operation_id, state=Operation.QUEUED).update(
            state=Operation.FAILED,
            finished_at=timezone.now(),
            error=f"the task queue did not take it ({type(error).__name__}); start it again once the broker answers",
        )


def _progress_writer(operation_id: uuid.UUID) -> Callable[[int, int | None], None]:
    """Progress written on the thread's own autocommit connection: a replay's last step runs in a transaction
    that the page would not see into before it commits."""
    last = 0.0

    def write(done: int, remaining: int | None) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last < PROGRESS_EVERY_SECONDS and remaining:
            return
        last = now
        own_connection_execute(
            "UPDATE console_operation SET done = %s, remaining = %s, heartbeat_at = now() "
            "WHERE id = %s AND state = 'running'",
            [done, remaining, operation_id],
        )

    return write


def _replay(operation: Operation, progress: Callable[[int, int | None], None]) -> str:
    total = projections_services.projection_replay(
        name=operation.target, progress=lambda done, left, _seconds: progress(done, left)
    )
    return f"replayed {total} events and swapped the tables in"


def _rebuild_cache(operation: Operation, progress: Callable[[int, int | None], None]) -> str:
    written = projections_services.cache_rebuild(name=operation.target, progress=progress)
    return f"wrote {written} cache entries"


def _reconcile(operation: Operation, progress: Callable[[int, int | None], None]) -> str:
    report, run = reconciliation_run(actor=f"{operation.requested_by} (console)")
    if report.ok:
        return f"the ledger reconciles (run {run.id})"
    return f"{run.difference_count} difference(s) (run {run.id})"


RUNNERS = {Operation.REPLAY: _replay, Operation.REBUILD_CACHE: _rebuild_cache, Operation.RECONCILE: _reconcile}


def operation_run(*, operation_id: uuid.UUID) -> str | None:
    """Run a queued operation (the worker's task); a redelivered message runs it again unless it finished.
    Returns its state after, None for an unknown one."""
    now = timezone.now()
    claimed = Operation.objects.filter(id=operation_id, state__in=Operation.OPEN).update(
        state=Operation.RUNNING, started_at=now, heartbeat_at=now, done=0, remaining=None
    )
    if not claimed:
        return Operation.objects.filter(id=operation_id).values_list("state", flat=True).first()
    operation = Operation.objects.get(id=operation_id)
    try:
        result = RUNNERS[operation.kind](operation, _progress_writer(operation.id))
    except Exception as error:  # noqa: BLE001 - any failure is the operation's outcome, shown on its page
        logger.exception("console operation %s (%s %s) failed", operation.id, operation.kind, operation.target)
        _finish(operation.id, Operation.FAILED, error=f"{type(error).__name__}: {error}")
        return Operation.FAILED
    _finish(operation.id, Operation.DONE, result=result)
    return Operation.DONE


def _finish(operation_id: uuid.UUID, state: str, *, result: str = "", error: str = "") -> None:
    now = timezone.now()
    Operation.objects.filter(id=operation_id, state=Operation.RUNNING).update(
        state=state, finished_at=now, heartbeat_at=now, result=result, error=audit_text(error, 4000)
    )
