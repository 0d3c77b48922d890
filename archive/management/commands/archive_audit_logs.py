import datetime as dt
import getpass

from django.core.management.base import BaseCommand, CommandError

from archive import audit, events
from archive.management.commands.archive_events import month_arg


class Command(BaseCommand):
    help = (
        "Archive the audit logs (staff audit trail, detokenisation audit) month by month once a month ended longer "
        "ago than the audit_logs policy's hot window (P30D): sealed into the archive, verified, then removed from "
        "their tables in one transaction."
    )

    def add_arguments(self, parser):
        parser.add_argument("--month", type=month_arg, help="YYYY-MM: this month only")

    def handle(self, *args, month, **options):
        boundary = audit.hot_boundary(dt.datetime.now(dt.UTC))
        actor = f"archive_audit_logs ({getpass.getuser()})"
        failed = 0
        for kind in audit.LOGS:
            months = [month] if month is not None else audit.audit_months_before(kind, boundary)
            for first in months:
                try:
                    result = audit.audit_month_archive(kind=kind, first=first, actor=actor)
                except (events.ArchiveRefused, events.ArchiveCorrupt) as error:
                    failed += 1
                    self.stderr.write(f"{kind} {first:%Y-%m}: {error}")
                    continue
                self.stdout.write(f"{kind} {first:%Y-%m}: {result.outcome}, {result.rows} rows")
        if failed:
            raise CommandError(f"{failed} month(s) not archived")
