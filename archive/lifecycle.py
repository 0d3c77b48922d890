"""The retention policy applied to archive objects: warm to cold past the warm window, purged past the total.

Each object is handled in a transaction of its own holding its row (SELECT ... FOR UPDATE SKIP LOCKED: two runs
at once each take different objects, none twice), under the archiver's advisory lock (no archive, restore or
projection replay meanwhile). A move goes store first, then the row, then the manifest beside the new key; a run
cut off between them leaves the object under its new key and the row on the old one, which the next run repairs
(the old key gone and the new one there: only the row is updated). A purge deletes the object and its manifest,
marks the row purged and leaves a PurgeRecord, kept forever."""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from archive import analytics, audit, events, retention, shortlived, snapshots
from archive.models import ArchiveObject, PurgeRecord, RetentionPolicy
from archive.store import ArchiveStoreError, archive_store

logger = logging.getLogger(__name__)

# The policy that governs each kind of archive object.
POLICY_OF = {
    ArchiveObject.EVENTS: RetentionPolicy.PAYMENT_EVENTS,
    ArchiveObject.ANALYTICS: "analytics",
    ArchiveObject.STAFF_AUDIT: "audit_logs",
    ArchiveObject.DETOKENIZATION_AUDIT: "audit_logs",
    ArchiveObject.BALANCE_SNAPSHOTS: "balance_snapshots",
}
WARM_PREFIX, COLD_PREFIX = "warm/", "cold/"


@dataclass
class Outcome:
    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def manifest_key(key: str) -> str:
    return f"{key}.manifest.json"


def cold_key(key: str) -> str:
    if not key.startswith(WARM_PREFIX):
        raise ArchiveStoreError(f"{key} is not a warm key")
    return COLD_PREFIX + key[len(WARM_PREFIX) :]


def _cutoff_date(kind: str, bound: str, now: dt.datetime) -> dt.date | None:
    """Objects whose period ended on or before this date are past the policy's `bound`; None: never."""
    policy = retention.policy_get(POLICY_OF[kind])
    moment = retention.cutoff(getattr(policy, bound), now)
    return None if moment is None else moment.date()


def due_to_move(now: dt.datetime) -> list[ArchiveObject]:
    """Archived objects in the warm tier whose newest data is older than the policy's warm window, and not yet
    past retention (those are purged, not moved)."""
    due = []
    for kind in POLICY_OF:
        before = _cutoff_date(kind, "warm_until", now)
        if before is None:
            continue
        objects = ArchiveObject.objects.filter(
            kind=kind, state=ArchiveObject.ARCHIVED, tier=ArchiveObject.WARM, period_end__lte=before
        )
        purge_before = _cutoff_date(kind, "keep", now)
        if purge_before is not None:
            objects = objects.filter(period_end__gt=purge_before)
        due += objects.order_by("period_start")
    return due


def due_to_purge(now: dt.datetime) -> list[ArchiveObject]:
    """Archived objects, in any tier, whose newest data is older than the policy's total retention."""
    due = []
    for kind in POLICY_OF:
        before = _cutoff_date(kind, "keep", now)
        if before is not None:
            due += ArchiveObject.objects.filter(
                kind=kind, state=ArchiveObject.ARCHIVED, period_end__lte=before
            ).order_by("period_start")
    return due


def _locked(obj_id: int, **conditions) -> ArchiveObject | None:
    """The object's row, locked for this transaction, if it still is as expected and no other run holds it."""
    return (
        ArchiveObject.objects.select_for_update(skip_locked=True)
        .filter(id=obj_id, state=ArchiveObject.ARCHIVED, **conditions)
        .first()
    )


def object_move_cold(obj_id: int) -> str | None:
    """Move one warm object to cold (see the module); what was done, or None when another run has it."""
    store = archive_store()
    with transaction.atomic():
        obj = _locked(obj_id, tier=ArchiveObject.WARM)
        if obj is None:
            return None
        old, new = obj.key, cold_key(obj.key)
        if store.exists(old):
            store.move(old, new)
            how = "moved"
        elif store.exists(new):
            how = "found moved by a run cut off, row updated"
        else:
            raise events.ArchiveCorrupt(f"{old} is missing from {store.describe()}, and so is {new}")
        ArchiveObject.objects.filter(id=obj.id).update(tier=ArchiveObject.COLD, key=new)
        obj.refresh_from_db()
        store.put(manifest_key(new), json.dumps(obj.manifest(), indent=2, sort_keys=True).encode())
        store.delete(manifest_key(old))
    return f"{obj} {how}: {old} -> {new}"


def object_purge(obj_id: int, *, actor: str, now: dt.datetime) -> str | None:
    """Purge one object past its retention (see the module); what was done, or None when another run has it."""
    store = archive_store()
    with transaction.atomic():
        obj = _locked(obj_id)
        if obj is None:
            return None
        policy = retention.policy_get(POLICY_OF[obj.kind])
        try:
            manifest = json.loads(store.get(manifest_key(obj.key)))
        except (ArchiveStoreError, ValueError):
            manifest = obj.manifest()  # the row the manifest was written from
        PurgeRecord.objects.create(
            purged_at=now,
            purged_by=actor[:150],
            archive_object_id=obj.id,
            kind=obj.kind,
            period_start=obj.period_start,
            period_end=obj.period_end,
            key=obj.key,
            row_count=obj.row_count,
            sha256_plaintext=obj.sha256_plaintext,
            sha256_object=obj.sha256_object,
            manifest=manifest,
            policy=retention.policy_snapshot(policy),
        )
        ArchiveObject.objects.filter(id=obj.id).update(state=ArchiveObject.PURGED, purged_at=now)
        # Last: a run cut off before the commit leaves the object (and its row archived) for the next run.
        store.delete(obj.key)
        store.delete(manifest_key(obj.key))
    return f"{obj.kind} {obj.period_start:%Y-%m}: purged {obj.row_count} rows ({obj.key}), kept {policy.keep}"


def archives_move(*, now: dt.datetime | None = None) -> Outcome:
    """Move every warm object past the warm window to cold; a failure of one is reported, the others go on."""
    now = now or timezone.now()
    return _each(
        lambda: due_to_move(now), object_move_cold, (ArchiveStoreError, events.ArchiveCorrupt), "moving %s to cold"
    )


def archives_purge(*, actor: str, now: dt.datetime | None = None) -> Outcome:
    """Purge every object past its total retention; a failure of one is reported, the others go on."""
    now = now or timezone.now()
    return _each(
        lambda: due_to_purge(now),
        lambda object_id: object_purge(object_id, actor=actor, now=now),
        (ArchiveStoreError,),
        "purging %s",
    )


def _each(due, act, errors: tuple[type[Exception], ...], doing: str) -> Outcome:
    """`act` on the id of each object `due()` lists, under the archivers' lock: what it did, and each failure
    (one of `errors`) logged and reported while the others go on."""
    outcome = Outcome()
    with events._exclusive("events"):
        for obj in due():
            try:
                done = act(obj.id)
            except errors as error:
                logger.exception(f"{doing} failed", obj)
                outcome.failed.append(f"{obj}: {error}")
                continue
            if done:
                outcome.done.append(done)
    return outcome


def _periods_due(now: dt.datetime) -> list[tuple[str, Callable[[], events.MonthResult]]]:
    """What the policy says leaves the database now, as (label, archive it) pairs, events first."""
    today = now.date()
    due: list[tuple[str, Callable[[], events.MonthResult]]] = []

    def add(label: str, archive: Callable[[], events.MonthResult]) -> None:
        due.append((label, archive))

    for first in events.months_before(retention.events_hot_boundary(today)):
        add(f"events {first:%Y-%m}", functools.partial(events.events_month_archive, first=first))
    for first in analytics.analytics_months_before(retention.events_hot_boundary(today, kind="analytics")):
        add(f"analytics {first:%Y-%m}", functools.partial(analytics.analytics_month_archive, first=first))
    for kind in audit.LOGS:
        for first in audit.audit_months_before(kind, audit.hot_boundary(now)):
            add(f"{kind} {first:%Y-%m}", functools.partial(audit.audit_month_archive, kind=kind, first=first))
    last = snapshots.last_archivable_year(now)
    for year in [] if last is None else snapshots.snapshot_years_before(last):
        add(f"balance snapshots {year}", functools.partial(snapshots.snapshots_year_archive, year=year))
    return due


def lifecycle_apply(*, actor: str) -> Outcome:
    """The policy applied, as the beat job does it: what is past its hot window archived (event months, merchant
    daily summaries, audit logs, years of balance snapshots), short-lived rows past their policy deleted, warm
    objects past the warm window moved to cold, objects past retention purged. A period or object that fails is
    logged and the others go on."""
    outcome = Outcome()
    for label, archive in _periods_due(timezone.now()):
        try:
            result = archive(actor=actor)
        except events.ArchiveRefused as error:  # not now (a projection behind, a replay): the next run
            logger.warning("%s not archived now: %s", label, error)
            outcome.failed.append(f"{label}: {error}")
            continue
        except Exception as error:
            logger.exception("archiving %s failed", label)
            outcome.failed.append(f"{label}: {error}")
            continue
        outcome.done.append(f"{label}: {result.outcome}, {result.rows} rows")
    try:
        for table, count in shortlived.short_lived_purge(timezone.now()).items():
            if count:
                outcome.done.append(f"{table}: deleted {count} rows past retention")
    except Exception as error:
        logger.exception("deleting short-lived rows failed")
        outcome.failed.append(f"short-lived rows: {error}")
    for step in (archives_move, lambda: archives_purge(actor=actor)):
        try:
            result = step()
        except events.ArchiveRefused as error:  # another run or a replay holds the archiver's lock
            logger.warning("a lifecycle step did not run now: %s", error)
            outcome.failed.append(str(error))
            continue
        except Exception as error:
            logger.exception("a lifecycle step failed")
            outcome.failed.append(str(error))
            continue
        outcome.done += result.done
        outcome.failed += result.failed
    return outcome
