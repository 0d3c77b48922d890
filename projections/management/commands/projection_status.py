from django.core.management.base import BaseCommand

from fintech import eventstore
from projections.selectors import projection_status_list


class Command(BaseCommand):
    help = (
        "Each projection's checkpoint, the head of the log, the lag in events and seconds, its last error, and the "
        "cache entries it missed while Redis was unreachable (written by its next run once Redis answers)."
    )

    def handle(self, *args, **options):
        head = eventstore.head()
        self.stdout.write(f"head of the log: transaction {head.transaction_id}, position {head.position}")
        for status in projection_status_list():
            checkpoint = status.checkpoint
            self.stdout.write(
                f"{status.name}: checkpoint ({checkpoint.transaction_id}, {checkpoint.position}), "
                f"{status.events_applied} applied, lag {status.lag_events} events / {status.lag_seconds:.1f} s"
            )
            if status.cache_misses:
                self.stdout.write(
                    f"  cache: {status.cache_misses} entries missed while Redis was unreachable, to repair"
                )
            if status.error:
                self.stdout.write(f"  stopped at event {status.error_event_id} since {status.error_at}:")
                self.stdout.write("  " + status.error_line)
