import getpass

from django.core.management.base import BaseCommand, CommandError

from archive import retention


class Command(BaseCommand):
    help = (
        "Change a kind's retention: durations as ISO-8601 (P3M, P1Y, P30D, PT24H) or 'forever'. The change and "
        "its history row (when, the OS user and --by, before, after, --reason) are written in one transaction; "
        "nonsense (a negative duration, a tier shorter than the one before it, an unknown kind) is refused."
    )

    def add_arguments(self, parser):
        parser.add_argument("kind", help="the data kind, e.g. payment_events (retention_status lists them)")
        parser.add_argument("--hot", help="how long data stays hot")
        parser.add_argument("--warm-until", help="how old data leaves the warm tier")
        parser.add_argument("--cold-until", help="how old data leaves the cold tier ('forever': never)")
        parser.add_argument("--keep", help="how long data is kept in all ('forever': never purged)")
        parser.add_argument("--reason", required=True, help="why (recorded with the change)")
        parser.add_argument("--by", default="", help="the name of who asked for it (recorded beside the OS user)")

    def handle(self, *args, kind, hot, warm_until, cold_until, keep, reason, by, **options):
        given = {"hot": hot, "warm_until": warm_until, "cold_until": cold_until, "keep": keep}
        changes = {bound: value for bound, value in given.items() if value is not None}
        if not changes:
            raise CommandError("nothing to change: give --hot, --warm-until, --cold-until or --keep")
        try:
            change = retention.policy_change(
                kind=kind, changes=changes, reason=reason, os_user=getpass.getuser(), by=by
            )
        except retention.PolicyError as error:
            raise CommandError(f"{kind}: not changed: {error}") from None
        before, after = change.before or {}, change.after
        for bound in retention.BOUNDS:
            old, new = before.get(bound), after.get(bound)
            mark = "" if old == new else f" (was {old or 'forever'})"
            self.stdout.write(f"{kind} {bound}: {new or 'forever'}{mark}")
        self.stdout.write(f"recorded as retention change {change.id}: {change}")
