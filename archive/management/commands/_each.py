"""What the archive commands share: each period archived in turn, one line each, a refused or corrupt period
reported on stderr without stopping the others, and a non-zero exit naming how many failed."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.core.management.base import BaseCommand, CommandError

from archive.events import ArchiveCorrupt, ArchiveRefused, MonthResult


def archive_each(
    command: BaseCommand, periods: Iterable[tuple[str, Callable[[], MonthResult]]], *, noun: str, failure: str
) -> None:
    """Run each (label, archive it) pair; `noun` names the rows counted, `failure` (with {failed}) the error."""
    failed = 0
    for label, archive in periods:
        try:
            result = archive()
        except (ArchiveRefused, ArchiveCorrupt) as error:
            failed += 1
            command.stderr.write(f"{label}: {error}")
            continue
        command.stdout.write(f"{label}: {result.outcome}, {result.rows} {noun}")
    if failed:
        raise CommandError(failure.format(failed=failed))
