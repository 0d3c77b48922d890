from django.core.management.base import BaseCommand, CommandError

from projections import services


class Command(BaseCommand):
    help = "Refill Redis from a projection's read tables (Redis is only a cache of them)."

    def add_arguments(self, parser):
        parser.add_argument("name")

    def handle(self, *args, name, **options):
        try:
            count = services.cache_rebuild(name=name)
        except LookupError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"{name}: {count} cache entries written")
