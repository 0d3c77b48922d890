from django.core.management.base import BaseCommand
from django.utils import timezone

from fintech import eventstore
from projections import engine
from projections.models import ProjectionState


class Command(BaseCommand):
    help = "Each projection's checkpoint, the head of the log, the lag in events and seconds, and its last error."

    def handle(self, *args, **options):
        head = eventstore.head()
        self.stdout.write(f"head of the log: transaction {head.transaction_id}, position {head.position}")
        for name in sorted(engine.projections()):
            state = ProjectionState.objects.filter(name=name).first() or ProjectionState(name=name)
            checkpoint = eventstore.Checkpoint(state.checkpoint_transaction, state.checkpoint_position)
            behind = len(eventstore.read_all(after=checkpoint, limit=100_000))
            lag = (timezone.now() - state.last_event_at).total_seconds() if behind and state.last_event_at else 0.0
            self.stdout.write(
                f"{name}: checkpoint ({checkpoint.transaction_id}, {checkpoint.position}), "
                f"{state.events_applied} applied, lag {behind}{'+' if behind == 100_000 else ''} events / {lag:.1f} s"
            )
            if state.error:
                self.stdout.write(f"  stopped at event {state.error_event_id} since {state.error_at}:")
                self.stdout.write("  " + state.error.strip().splitlines()[-1])
