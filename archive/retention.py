"""Retention as data: how long each kind of data stays in each tier, read from the archive_retention_policy table
(seeded by archive/migrations/0003_retention.py from the seed's lifecycle table) and changed only with a
RetentionChange recorded in the same transaction (the table's trigger refuses any other write).

Durations are ISO-8601 texts of whole units, PnYnMnDTnHnM (`P3M`, `P1Y`, `P30D`, `PT24H`), counted back from
now: calendar months and years (a month back from 31 March is the last day of February), then days, hours and
minutes. NULL (`forever`) is no end."""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass

from django.db import transaction

from archive.models import RetentionChange, RetentionPolicy
from fintech import partitions

FOREVER = "forever"
_ISO = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?$")
# The policy's durations, youngest first: each must be at least the one before it.
BOUNDS = ("hot", "warm_until", "cold_until", "keep")
_LABELS = {"hot": "hot", "warm_until": "warm until", "cold_until": "cold until", "keep": "kept"}


class PolicyError(Exception):
    """A policy change refused; the message says why. Nothing was changed."""


@dataclass(frozen=True)
class Duration:
    text: str
    months: int
    days: int
    minutes: int

    def before(self, moment: dt.datetime) -> dt.datetime:
        """The moment this long before `moment`."""
        months = moment.year * 12 + moment.month - 1 - self.months
        year, month = divmod(months, 12)
        day = min(moment.day, calendar.monthrange(year, month + 1)[1])
        shifted = moment.replace(year=year, month=month + 1, day=day)
        return shifted - dt.timedelta(days=self.days, minutes=self.minutes)

    def __str__(self) -> str:
        return self.text


def duration_parse(text: str | None) -> Duration | None:
    """A duration, or None for `forever` / NULL. Raises PolicyError for anything else."""
    if text is None or text.strip().lower() == FOREVER:
        return None
    text = text.strip().upper()
    if text.startswith("-"):
        raise PolicyError(f"{text}: a duration cannot be negative")
    match = _ISO.match(text)
    if not match or text in ("P", "PT") or text.endswith("T"):
        raise PolicyError(f"{text!r} is not a duration: write ISO-8601 such as P3M, P1Y, P30D, PT24H, or 'forever'")
    years, months, days, hours, minutes = (int(part or 0) for part in match.groups())
    return Duration(text=text, months=years * 12 + months, days=days, minutes=hours * 60 + minutes)


def cutoff(text: str | None, now: dt.datetime) -> dt.datetime | None:
    """The moment before which data is past this duration; None when it never is."""
    duration = duration_parse(text)
    return None if duration is None else duration.before(now)


def policy_get(kind: str) -> RetentionPolicy:
    try:
        return RetentionPolicy.objects.get(kind=kind)
    except RetentionPolicy.DoesNotExist:
        known = ", ".join(RetentionPolicy.objects.order_by("kind").values_list("kind", flat=True))
        raise PolicyError(f"no retention policy for {kind!r}; the kinds are: {known}") from None


def policy_snapshot(policy: RetentionPolicy) -> dict:
    return {
        "kind": policy.kind,
        "hot": policy.hot,
        "warm_until": policy.warm_until,
        "cold_until": policy.cold_until,
        "keep": policy.keep,
        "hot_where": policy.hot_where,
        "warm_where": policy.warm_where,
        "cold_where": policy.cold_where,
        "applied_by": policy.applied_by,
        "description": policy.description,
        "changed_at": policy.changed_at.isoformat() if policy.changed_at else None,
    }


def policy_validate(values: dict[str, str | None], now: dt.datetime) -> None:
    """Each duration parses, is not negative, and none is shorter than the tier before it (NULL: forever)."""
    if values["hot"] is None:
        raise PolicyError("hot needs a duration (P0D: nothing stays hot)")
    cutoffs = {bound: cutoff(values[bound], now) for bound in BOUNDS}
    for younger, older in zip(BOUNDS, BOUNDS[1:], strict=False):
        a, b = cutoffs[younger], cutoffs[older]
        if a is None and b is not None:
            raise PolicyError(f"{_LABELS[older]} ({values[older]}) is shorter than {_LABELS[younger]} (forever)")
        if a is not None and b is not None and b > a:
            raise PolicyError(
                f"{_LABELS[older]} ({values[older]}) is shorter than {_LABELS[younger]} ({values[younger]})"
            )


def policy_change(
    *, kind: str, changes: dict[str, str | None], reason: str, os_user: str, by: str = ""
) -> RetentionChange:
    """Change a kind's durations and record who, what and why, in one transaction: the history row first (the
    table's trigger lets the policy row change only in a transaction that recorded one)."""
    from django.utils import timezone

    reason = reason.strip()
    if not reason:
        raise PolicyError("a change needs a --reason")
    unknown = set(changes) - set(BOUNDS)
    if unknown:
        raise PolicyError(f"unknown field(s): {', '.join(sorted(unknown))}")
    with transaction.atomic():
        try:
            policy = RetentionPolicy.objects.select_for_update().get(kind=kind)
        except RetentionPolicy.DoesNotExist:
            policy_get(kind)  # raises with the known kinds
            raise
        now = timezone.now()
        normalized = {}
        for bound, text in changes.items():
            duration = duration_parse(text)
            normalized[bound] = None if duration is None else duration.text
        values = {bound: normalized.get(bound, getattr(policy, bound)) for bound in BOUNDS}
        policy_validate(values, now)
        before = policy_snapshot(policy)
        for bound, value in values.items():
            setattr(policy, bound, value)
        policy.changed_at = now
        after = policy_snapshot(policy)
        change = RetentionChange.objects.create(
            changed_at=now,
            os_user=os_user[:150],
            by_name=by[:150],
            kind=kind,
            before=before,
            after=after,
            reason=reason,
        )
        policy.save(update_fields=[*BOUNDS, "changed_at"])
    return change


def events_hot_boundary(today: dt.date, now: dt.datetime | None = None, *, kind: str = "") -> dt.date:
    """The first month of events (or of `kind`'s data) that stays hot: the month that holds the moment `hot`
    before now, and every one after it (P3M: the current month and the two before it). The current month always
    stays."""
    moment = now or dt.datetime.combine(today, dt.time(12), tzinfo=dt.UTC)
    back = cutoff(policy_get(kind or RetentionPolicy.PAYMENT_EVENTS).hot, moment)
    current = partitions.month_start(today)
    if back is None:
        return dt.date.min
    return min(partitions.next_month(partitions.month_start(back.date())), current)


def days_hot_boundary(kind: str, now: dt.datetime) -> dt.date:
    """The first month still (partly) hot for a policy counted in days (audit logs: P30D): every month before it
    ended before the moment `hot` ago."""
    back = cutoff(policy_get(kind).hot, now)
    return dt.date.min if back is None else partitions.month_start(back.date())


def last_archivable_year(kind: str, now: dt.datetime) -> int | None:
    """The last whole year that ended before the policy's database window (`warm_until`: balance snapshots keep
    P1Y in the database); None when the database keeps them for ever."""
    back = cutoff(policy_get(kind).warm_until, now)
    return None if back is None else back.year - 1
