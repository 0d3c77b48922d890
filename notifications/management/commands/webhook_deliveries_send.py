from django.core.management.base import BaseCommand

from notifications.delivery import webhook_deliveries_send


class Command(BaseCommand):
    help = "Send the webhook deliveries that are due now (what the Celery task does), and say how many."

    def handle(self, *args, **options):
        attempted = webhook_deliveries_send()
        self.stdout.write(f"{attempted} deliveries attempted")
