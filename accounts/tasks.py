from celery import shared_task
from django.utils import timezone

from accounts.settlement import settlement_run


@shared_task(ignore_result=True)
def settlement_run_task() -> None:
    """Celery beat: settle what is due by today (UTC); once a day's batch exists, reruns change nothing."""
    settlement_run(settlement_date=timezone.now().date(), actor="system:settlement")
