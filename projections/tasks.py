from celery import shared_task

from projections.engine import projection_run, projections
from projections.services import cache_repair, caches_refill_if_lost


@shared_task(ignore_result=True)
def projection_run_task(name: str) -> int:
    """Run a projection, then write to Redis what an outage of Redis made it miss (none: one query)."""
    applied = projection_run(name=name)
    cache_repair(name=name)
    return applied


def _run_each() -> None:
    # One task per projection, so that they run in parallel.
    for name in projections():
        projection_run_task.delay(name)


@shared_task(ignore_result=True)
def projections_wake_task() -> None:
    """Sent after commits (projections.services.projections_wake): run every projection."""
    _run_each()


@shared_task(ignore_result=True)
def projections_catch_up_task() -> None:
    """Celery beat, every few seconds: a lost wake-up only delays a projection, and a Redis that lost the
    caches' entries gets them back."""
    _run_each()
    caches_refill_if_lost()
