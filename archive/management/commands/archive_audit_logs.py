import datetime as dt
import getpass
from functools import partial

from django.core.management.base import BaseCommand

from archive import audit
from archive.management.commands._each import archive_each
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
        periods = [
            (f"{kind} {first:%Y-%m}", partial(audit.audit_month_archive, kind=kind, first=first, actor=actor))
            for kind in audit.LOGS
            for first in ([month] if month is not None else audit.audit_months_before(kind, boundary))
        ]
        archive_each(self, periods, noun="rows", failure="{failed} month(s) not archived")
