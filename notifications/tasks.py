from celery import shared_task

from notifications.delivery import webhook_deliveries_send


@shared_task(ignore_result=True)
def webhook_deliveries_send_task() -> int:
    """Send the webhook deliveries that are due (woken after a projection batch, and by beat)."""
    return webhook_deliveries_send()
