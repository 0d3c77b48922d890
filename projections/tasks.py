from celery import shared_task
from django.conf import settings

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
def projections_wake_task(trail: bool = False) -> None:
    """Sent after commits (projections.services.projections_wake): run every projection. `trail`: the commit
    that sent it took the wake-up gate, and the commits made while the gate holds send nothing, so run every
    projection once more when it has lapsed (sent before this run, so that a failed run does not lose it)."""
    if trail:
        projections_wake_task.apply_async(countdown=settings.PROJECTIONS_WAKE_INTERVAL_SECONDS)
    _run_each()


@shared_task(ignore_result=True)
def projections_catch_up_task() -> None:
    """Celery beat, every few seconds: a lost wake-up only delays a projection, and a Redis that lost the
    caches' entries gets them back."""
    _run_each()
    caches_refill_if_lost()
