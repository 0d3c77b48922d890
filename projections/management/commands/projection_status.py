from django.core.management.base import BaseCommand
from django.utils import timezone

from fintech import eventstore
from projections import engine
from projections.models import CacheMiss, ProjectionState


class Command(BaseCommand):
    help = (
        "Each projection's checkpoint, the head of the log, the lag in events and seconds, its last error, and the "
        "cache entries it missed while Redis was unreachable (written by its next run once Redis answers)."
    )

    def handle(self, *args, **options):
        head = eventstore.head()
        self.stdout.write(f"head of the log: transaction {head.transaction_id}, position {head.position}")
        for name, projection in sorted(engine.projections().items()):
            state = ProjectionState.objects.filter(name=name).first() or ProjectionState(name=name)
            checkpoint = eventstore.Checkpoint(state.checkpoint_transaction, state.checkpoint_position)
            behind, oldest = eventstore.backlog(after=checkpoint, event_types=projection.handlers)
            lag = (timezone.now() - oldest).total_seconds() if oldest else 0.0
            self.stdout.write(
                f"{name}: checkpoint ({checkpoint.transaction_id}, {checkpoint.position}), "
                f"{state.events_applied} applied, lag {behind} events / {lag:.1f} s"
            )
            missed = CacheMiss.objects.filter(projection=name).count()
            if missed:
                self.stdout.write(f"  cache: {missed} entries missed while Redis was unreachable, to repair")
            if state.error:
                self.stdout.write(f"  stopped at event {state.error_event_id} since {state.error_at}:")
                self.stdout.write("  " + state.error.strip().splitlines()[-1])
