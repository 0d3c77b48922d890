from celery import shared_task

from fintech.services import idempotency_records_purge


@shared_task(ignore_result=True)
def idempotency_records_purge_task() -> None:
    """Celery beat: delete idempotency records past their time to live."""
    idempotency_records_purge()
