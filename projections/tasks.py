from celery import shared_task

from projections.engine import projection_run, projections


@shared_task(ignore_result=True)
def projection_run_task(name: str) -> int:
    return projection_run(name=name)


@shared_task(ignore_result=True)
def projections_catch_up_task() -> None:
    """Celery beat, every few seconds: a lost wake-up only delays a projection."""
    for name in projections():
        projection_run_task.delay(name)
