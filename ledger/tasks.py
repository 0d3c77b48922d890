from celery import shared_task
from django.utils import timezone

from ledger.settlement import settlement_run
from ledger.snapshots import balance_snapshots_catch_up


# Registered under the name it had in the accounts app, which the beat schedule sends: a message queued before a
# deploy (or a schedule still naming it) finds the task after it.
@shared_task(name="accounts.tasks.settlement_run_task", ignore_result=True)
def settlement_run_task() -> None:
    """Celery beat: settle what is due by today (UTC); once a day's batch exists, reruns change nothing."""
    settlement_run(settlement_date=timezone.now().date(), actor="system:settlement")


@shared_task(ignore_result=True)
def balance_snapshots_task() -> None:
    """Celery beat, hourly: snapshot every ended day of the last week that has none yet."""
    balance_snapshots_catch_up()
