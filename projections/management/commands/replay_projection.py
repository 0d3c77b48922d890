import sys

from django.core.management.base import BaseCommand, CommandError

from fintech import eventstore
from projections import engine, services


class Command(BaseCommand):
    help = (
        "Rebuild a read model from the first event into fresh tables while the old ones keep serving, then swap "
        "them in (with the checkpoint) in one transaction."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", nargs="?")
        parser.add_argument("--all", action="store_true")
        parser.add_argument("--batch-size", type=int, default=2000)

    def handle(self, *args, name, all, batch_size, **options):
        if bool(name) == bool(all):
            raise CommandError("name one projection, or --all")
        names = sorted(n for n, p in engine.projections().items() if p.replayable) if all else [name]
        for projection in names:
            try:
                total = services.projection_replay(name=projection, batch_size=batch_size, progress=self._progress)
            except (LookupError, services.NotReplayable, services.ReplayRunning) as error:
                raise CommandError(str(error)) from None
            except (engine.HandlerFailed, eventstore.UndecodableEvent) as error:
                cause = error.__cause__ or error
                raise CommandError(
                    f"{projection}: stopped at event {error.event_id} ({type(cause).__name__}: {cause}); "
                    "the live tables are unchanged"
                ) from None
            self.stdout.write(f"\n{projection}: replayed {total} events and swapped the tables in")

    def _progress(self, done: int, left: int, seconds: float) -> None:
        rate = done / max(seconds, 1e-9)
        eta = left / rate if rate else 0
        filled = 30 * done // max(done + left, 1)
        bar = "#" * filled + "-" * (30 - filled)
        self.stdout.write(f"\r[{bar}] {done:,} events, {rate:,.0f} events/s, ETA {eta:,.0f} s", ending="")
        sys.stdout.flush()
