import sys
import time

from django.core.management.base import BaseCommand, CommandError

from vault import keys, services


class Command(BaseCommand):
    help = (
        "Add a new primary key-encryption key and re-wrap every stored data key under it, in batches. "
        "Interrupt at will; --resume finishes without adding another key. --retire then removes the old keys "
        "once nothing uses them: what only they could unwrap is unreadable from then on."
    )

    def add_arguments(self, parser):
        parser.add_argument("--resume", action="store_true", help="re-wrap what is left, add no new key")
        parser.add_argument("--retire", action="store_true", help="afterwards, remove old keys nothing uses")
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args, resume, retire, batch_size, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be positive")
        provider = keys.key_provider()
        try:
            if not resume:
                self.stdout.write(f"new primary key {provider.rotate()}")
            primary = provider.primary_key_id()
            total = services.keys_pending_count(primary=primary)
            self._rewrap(total, batch_size)
            if retire:
                retired = services.keys_retire()
                self.stdout.write(f"retired {len(retired)} key(s): {', '.join(map(str, sorted(retired))) or '-'}")
        except keys.VaultKeyError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"keys in the keyset: {', '.join(map(str, provider.key_ids()))}; primary {primary}")

    def _rewrap(self, total: int, batch_size: int) -> None:
        done, started = 0, time.monotonic()
        self._progress(done, total, started)
        for count in services.keys_rewrap(batch_size=batch_size):
            done += count
            self._progress(done, total, started)
        self.stdout.write(f"\nre-wrapped {done} data key(s)")

    def _progress(self, done: int, total: int, started: float) -> None:
        width = 30
        filled = width if total == 0 else min(width, width * done // total)
        rate = done / max(time.monotonic() - started, 1e-9)
        line = f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} data keys, {rate:,.0f}/s"
        self.stdout.write(line, ending="")
        if hasattr(sys.stdout, "flush"):
            self.stdout.flush()
