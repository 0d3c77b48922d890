from django.core.management.base import BaseCommand, CommandError

from fintech.partitions import ensure_partitions, existing_partitions


class Command(BaseCommand):
    help = "Create the monthly partitions of the event store for this month and the next N months."

    def add_arguments(self, parser):
        parser.add_argument("--months-ahead", type=int, default=3)

    def handle(self, *args, months_ahead, **options):
        if months_ahead < 0 or months_ahead > 120:
            raise CommandError("--months-ahead must be between 0 and 120")
        created = ensure_partitions(months_ahead=months_ahead)
        for name in created:
            self.stdout.write(f"created {name}")
        self.stdout.write(f"{len(created)} created, {len(existing_partitions())} partitions in all")
