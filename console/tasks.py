import uuid

from celery import shared_task

from console.services import operation_run


@shared_task(ignore_result=True)
def operation_run_task(operation_id: str) -> None:
    """A console operation (console.services.operation_request sends it once its record commits)."""
    operation_run(operation_id=uuid.UUID(operation_id))
