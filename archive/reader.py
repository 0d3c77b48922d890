"""Archived events read back for the event store (fintech.eventstore.ArchiveReader): a stream's versions that
live in archived months, and the log's archived rows after a checkpoint (a projection replay). Objects are
verified against their manifests when first read and kept decoded for a while: an archived month never
changes."""

from __future__ import annotations

import datetime as dt
import functools
import time
import uuid

import pyarrow as pa
import pyarrow.compute as pc

from fintech.db import raw_cursor
from fintech.eventstore import Checkpoint

_OBJECTS = (
    "SELECT id FROM archive_object WHERE kind = 'events' AND state = 'archived' "
    "AND (last_transaction, last_position) > (%s, %s) ORDER BY first_transaction, first_position"
)
_STREAM_OBJECTS = (
    "SELECT o.id FROM archive_object o, fintech_stream s WHERE s.stream_id = %s "
    "AND o.kind = 'events' AND o.state = 'archived' "
    "AND o.period_end > s.first_occurred_at AND o.period_start <= s.last_occurred_at ORDER BY o.period_start"
)


MOVE_RETRIES, MOVE_PAUSE_SECONDS = 5, 0.2


@functools.lru_cache(maxsize=4)
def _table(object_id: int) -> pa.Table:
    from archive.events import ArchiveCorrupt, object_table
    from archive.models import ArchiveObject
    from archive.store import archive_store

    for _ in range(MOVE_RETRIES):
        obj = ArchiveObject.objects.get(id=object_id)
        try:
            return object_table(obj)
        except ArchiveCorrupt:
            # move_archives puts the object under its cold key, then records the key: read between the two, the
            # row still names the warm key. Read the row again; anything else is not a move and fails loudly.
            if archive_store().exists(obj.key) or not archive_store().exists(obj.key.replace("warm/", "cold/", 1)):
                raise
            time.sleep(MOVE_PAUSE_SECONDS)
    return object_table(ArchiveObject.objects.get(id=object_id))


def _rows(table: pa.Table) -> list[tuple]:
    """The rows in the event store's column order (fintech.eventstore._SELECT), ids as UUIDs."""
    columns = table.to_pydict().values()
    return [(uuid.UUID(values[0]), uuid.UUID(values[1]), *values[2:]) for values in zip(*columns, strict=True)]


def _ids(sql: str, params: list) -> list[int]:
    with raw_cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


class ArchivedEvents:
    def stream_rows(self, stream_id: uuid.UUID, versions: set[int]) -> list[tuple]:
        rows: list[tuple] = []
        wanted = pa.array(sorted(versions), pa.int32())
        for object_id in _ids(_STREAM_OBJECTS, [stream_id]):
            table = _table(object_id)
            mask = pc.and_(
                pc.equal(table.column("aggregate_id"), str(stream_id)), pc.is_in(table.column("version"), wanted)
            )
            rows += _rows(table.filter(mask))
        return rows

    def months(self) -> set[dt.date]:
        with raw_cursor() as cursor:
            cursor.execute("SELECT period_start FROM archive_object WHERE kind = 'events' AND state = 'archived'")
            return {row[0] for row in cursor.fetchall()}

    def rows_after(self, after: Checkpoint, limit: int) -> list[tuple]:
        rows: list[tuple] = []
        for object_id in _ids(_OBJECTS, [after.transaction_id, after.position]):
            table = _table(object_id)
            tx, pos = table.column("transaction_id"), table.column("position")
            later = pc.or_(
                pc.greater(tx, after.transaction_id),
                pc.and_(pc.equal(tx, after.transaction_id), pc.greater(pos, after.position)),
            )
            rows += _rows(table.filter(later).slice(0, limit))
        return sorted(rows, key=lambda row: (row[10], row[11]))[:limit]
