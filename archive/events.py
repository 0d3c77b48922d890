"""Payment events from hot to warm: a whole month partition at a time is exported to Parquet, sealed, written
to the archive store, read back and compared with the partition, and only then detached and dropped, in one
transaction, never deleted row by row. A month is archived whole or not at all; a run cut off anywhere resumes
(a written object that still matches its partition is kept, one that does not is written again). A restore
verifies the object against its manifest first, then re-attaches the month."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from django.db import transaction
from django.utils import timezone
from psycopg.copy import QueuedLibpqWriter

from archive.models import ArchiveObject
from archive.sealing import SealBroken, seal, unseal
from archive.store import ArchiveStoreError, archive_store
from archive.tables import select_table
from fintech import partitions
from fintech.db import raw_cursor
from fintech.eventstore import Checkpoint
from projections.selectors import projection_checkpoints

logger = logging.getLogger(__name__)

# ruff: noqa: S608 - table names below are the partitions' own (partitions.partition_name), never input

SCHEMA_VERSION = 1
SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("aggregate_id", pa.string()),
        ("aggregate_type", pa.string()),
        ("event_type", pa.string()),
        ("event_version", pa.int16()),
        ("event_data", pa.string()),
        ("metadata", pa.string()),
        ("version", pa.int32()),
        ("occurred_at", pa.timestamp("us", tz="UTC")),
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("transaction_id", pa.int64()),
        ("position", pa.int64()),
    ]
)
ANALYTICS_SCHEMA = pa.schema(
    [
        ("merchant_id", pa.string()),
        ("day", pa.date32()),
        ("currency", pa.string()),
        ("captured_count", pa.int64()),
        ("captured_amount", pa.int64()),
        ("refunded_count", pa.int64()),
        ("refunded_amount", pa.int64()),
    ]
)
SCHEMAS = {ArchiveObject.EVENTS: SCHEMA, ArchiveObject.ANALYTICS: ANALYTICS_SCHEMA}
_RESTORE_COLUMNS = (
    "event_id, aggregate_id, aggregate_type, event_type, event_version, event_data, metadata, version, "
    "occurred_at, created_at, transaction_id, position"
)
_EXPORT_COLUMNS = (
    "event_id::text, aggregate_id::text, aggregate_type, event_type, event_version, event_data::text, "
    "metadata::text, version, occurred_at, created_at, transaction_id::text::bigint, position"
)

RESTORE_BATCH_ROWS = 16_384
LOW_CARDINALITY = ("aggregate_type", "event_type", "currency", "action", "outcome", "channel")


class ArchiveRefused(Exception):
    """The month cannot be archived or restored now; the message says why. Nothing was changed."""


class ArchiveCorrupt(Exception):
    """An archive object is missing, altered or does not open: its manifest no longer vouches for it."""


@dataclass(frozen=True)
class MonthResult:
    month: dt.date
    outcome: str  # archived, already archived, restored
    rows: int


def month_key(first: dt.date, kind: str = ArchiveObject.EVENTS) -> str:
    return f"warm/{kind}/{first:%Y-%m}/{uuid.uuid4().hex}.parquet.enc"


def partition_exists(name: str) -> bool:
    with raw_cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        return cursor.fetchone()[0]


def export_table(name: str) -> pa.Table:
    """A partition's rows in log order, as Arrow."""
    table = select_table(f"SELECT {_EXPORT_COLUMNS} FROM {name}", SCHEMA)
    # Sorted here rather than by the server, and only when the rows are not already in log order (a month
    # written by one writer at a time is).
    if _in_log_order(table):
        return table
    return table.sort_by([("transaction_id", "ascending"), ("position", "ascending")])


def _in_log_order(table: pa.Table) -> bool:
    count = table.num_rows
    if count < 2:
        return True
    tx, pos = table.column("transaction_id"), table.column("position")
    tx_next, tx_prev = tx.slice(1), tx.slice(0, count - 1)
    pos_next, pos_prev = pos.slice(1), pos.slice(0, count - 1)
    ordered = pc.or_(pc.greater(tx_next, tx_prev), pc.and_(pc.equal(tx_next, tx_prev), pc.greater(pos_next, pos_prev)))
    return pc.all(ordered).as_py()


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    # Dictionaries only for the columns of few values: tried on ids and JSON (Parquet's default), they cost three
    # times the write and eight times the read (measured on 100,000 events) and win nothing.
    few = [name for name in LOW_CARDINALITY if name in table.column_names]
    pq.write_table(table, sink, compression="zstd", compression_level=1, use_dictionary=few, row_group_size=128 * 1024)
    return sink.getvalue()


def object_table(obj: ArchiveObject, *, data: bytes | None = None) -> pa.Table:
    """The rows of an archive object, after checking the stored bytes and the plaintext against its manifest."""
    try:
        data = archive_store().get(obj.key) if data is None else data
    except ArchiveStoreError as error:
        raise ArchiveCorrupt(str(error)) from None
    if hashlib.sha256(data).hexdigest() != obj.sha256_object:
        raise ArchiveCorrupt(f"{obj.key}: the stored object is not the one its manifest describes (SHA-256)")
    try:
        plaintext = unseal(data, wrapped_key=bytes(obj.wrapped_key), context=obj.context)
    except SealBroken as error:
        raise ArchiveCorrupt(f"{obj.key}: {error}") from None
    if hashlib.sha256(plaintext).hexdigest() != obj.sha256_plaintext:
        raise ArchiveCorrupt(f"{obj.key}: the plaintext is not the one its manifest describes (SHA-256)")
    table = pq.read_table(io.BytesIO(plaintext))
    if table.num_rows != obj.row_count or table.schema != SCHEMAS[obj.kind]:
        raise ArchiveCorrupt(f"{obj.key}: {table.num_rows} rows of another schema, the manifest says {obj.row_count}")
    return table


def _edges(table: pa.Table) -> tuple[tuple[int | None, int | None], tuple[int | None, int | None]]:
    if not table.num_rows:
        return (None, None), (None, None)
    tx, pos = table.column("transaction_id"), table.column("position")
    last = table.num_rows - 1
    return (tx[0].as_py(), pos[0].as_py()), (tx[last].as_py(), pos[last].as_py())


@contextmanager
def _exclusive(name: str) -> Iterator[None]:
    """One archiver at a time, and no projection replay meanwhile: a replay reads the months being moved."""
    from projections.engine import projections

    keys = [f"archive:{name}"] + [f"projection-replay:{projection}" for projection in projections()]
    taken: list[str] = []
    try:
        with raw_cursor() as cursor:
            for key in keys:
                cursor.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", [key])
                if not cursor.fetchone()[0]:
                    raise ArchiveRefused(f"{key.split(':')[0].replace('-', ' ')} runs now: try again when it ends")
                taken.append(key)
        yield
    finally:
        with raw_cursor() as cursor:
            for key in taken:
                cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [key])


def _projections_past(name: str) -> None:
    """Every projection has applied every event of the month: once archived, only a replay reads them."""
    with raw_cursor() as cursor:
        cursor.execute(
            f"SELECT transaction_id::text::bigint, position FROM {name} "
            f"ORDER BY {name}.transaction_id DESC, {name}.position DESC LIMIT 1"
        )
        row = cursor.fetchone()
    if row is None:
        return
    last = Checkpoint(*row)
    behind = sorted(n for n, checkpoint in projection_checkpoints().items() if checkpoint < last)
    if behind:
        raise ArchiveRefused(f"{name}: projections {', '.join(behind)} have not applied all its events yet")


def _write(
    first: dt.date,
    table: pa.Table,
    actor: str,
    existing: ArchiveObject | None,
    *,
    kind: str = ArchiveObject.EVENTS,
    period_end: dt.date | None = None,
) -> ArchiveObject:
    """Seal a month's rows into a new object of `kind`, record its manifest (a new row, or the existing written
    one, whose old object is then removed) and write the manifest beside it."""
    context_obj = ArchiveObject(kind=kind, period_start=first, schema_version=SCHEMA_VERSION)
    sealed = seal(parquet_bytes(table), context=context_obj.context)
    key = month_key(first, kind)
    archive_store().put(key, sealed.ciphertext)
    (first_tx, first_pos), (last_tx, last_pos) = _edges(table) if kind == ArchiveObject.EVENTS else ((None,) * 2,) * 2
    fields = {
        "period_end": period_end or partitions.next_month(first),
        "tier": ArchiveObject.WARM,
        "key": key,
        "schema_version": SCHEMA_VERSION,
        "row_count": table.num_rows,
        "first_transaction": first_tx,
        "first_position": first_pos,
        "last_transaction": last_tx,
        "last_position": last_pos,
        "sha256_plaintext": sealed.sha256_plaintext,
        "sha256_object": sealed.sha256_object,
        "kek_key_id": sealed.kek_key_id,
        "wrapped_key": sealed.wrapped_key,
        "written_at": timezone.now(),
        "written_by": actor[:150],
    }
    if existing is None:
        obj = ArchiveObject.objects.create(kind=kind, period_start=first, **fields)
    else:
        stale = existing.key
        ArchiveObject.objects.filter(id=existing.id).update(**fields)
        obj = ArchiveObject.objects.get(id=existing.id)
        archive_store().delete(stale)
    archive_store().put(f"{key}.manifest.json", _manifest_json(obj))
    return obj


def _manifest_json(obj: ArchiveObject) -> bytes:
    return json.dumps(obj.manifest(), indent=2, sort_keys=True).encode()


def _matches(obj: ArchiveObject, partition: pa.Table) -> bool:
    """The stored object, read back from the store, holds exactly the partition's rows, row by row."""
    try:
        archived = object_table(obj)
    except ArchiveCorrupt as error:
        logger.warning("archive of %s does not verify: %s", obj.period_start, error)
        return False
    return archived.equals(partition)


def events_month_archive(*, first: dt.date, actor: str) -> MonthResult:
    """Archive the month starting on `first` (see the module's docstring). Raises ArchiveRefused when it cannot
    be now (a projection behind, another archiver or a replay running)."""
    name = partitions.partition_name(first)
    with _exclusive("events"):
        live = ArchiveObject.objects.filter(
            kind=ArchiveObject.EVENTS, period_start=first, state__in=[ArchiveObject.WRITTEN, ArchiveObject.ARCHIVED]
        ).first()
        if live is not None and live.state == ArchiveObject.ARCHIVED:
            return MonthResult(first, "already archived", live.row_count)
        if not partition_exists(name):
            raise ArchiveRefused(f"{name} does not exist and no archive of it is open")
        _projections_past(name)
        partition = export_table(name)
        if live is None or not _matches(live, partition):
            live = _write(first, partition, actor, live)
            if not _matches(live, partition):
                raise ArchiveCorrupt(f"{live.key}: read back, it differs from {name}")
        _detach_and_drop(live, name)
    logger.info("archived %s: %s events into %s", name, live.row_count, live.key)
    return MonthResult(first, "archived", live.row_count)


def _detach_and_drop(obj: ArchiveObject, name: str) -> None:
    with transaction.atomic(), raw_cursor() as cursor:
        # No append into the month from here on; if one came in since the export, the run stops and the next
        # one writes the month again.
        cursor.execute("SET LOCAL lock_timeout = '5s'")
        cursor.execute(f"LOCK TABLE {name} IN SHARE MODE")
        cursor.execute(
            f"SELECT count(*), (SELECT ARRAY[transaction_id::text::bigint, position] FROM {name} "
            f"ORDER BY {name}.transaction_id DESC, {name}.position DESC LIMIT 1) FROM {name}"
        )
        count, last = cursor.fetchone()
        if count != obj.row_count or (last or [None, None]) != [obj.last_transaction, obj.last_position]:
            raise ArchiveRefused(f"{name} changed while it was archived ({count} rows now): run again")
        _projections_past(name)
        cursor.execute(f"ALTER TABLE {partitions.PARENT} DETACH PARTITION {name}")
        cursor.execute(f"DROP TABLE {name}")
        ArchiveObject.objects.filter(id=obj.id).update(state=ArchiveObject.ARCHIVED, archived_at=timezone.now())


def months_before(before: dt.date) -> list[dt.date]:
    """The months with a partition, or an archive left half-done, that start before `before`."""
    firsts = set()
    for name in partitions.existing_partitions():
        if name == partitions.DEFAULT:
            continue
        year, month = int(name[-7:-3]), int(name[-2:])
        firsts.add(dt.date(year, month, 1))
    firsts |= set(
        ArchiveObject.objects.filter(kind=ArchiveObject.EVENTS, state=ArchiveObject.WRITTEN).values_list(
            "period_start", flat=True
        )
    )
    return sorted(first for first in firsts if first < before)


def _utc_as_text(table: pa.Table) -> pa.Table:
    """UTC timestamps as text with their offset ("2026-06-01 12:00:00.000000+00"): Arrow writes a zoned
    timestamp into CSV about thirty times slower than it casts the same instant, unzoned, to text."""
    for index, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type) and field.type.tz == "UTC":
            instants = pc.cast(table.column(index), pa.timestamp(field.type.unit))
            text = pc.binary_join_element_wise(pc.cast(instants, pa.string()), "+00", "")
            table = table.set_column(index, field.name, text)
    return table


def events_month_restore(*, first: dt.date, actor: str) -> MonthResult:
    """Re-attach an archived month, after verifying its object against its manifest (ArchiveCorrupt: refused,
    nothing changed). The object stays in the store until purged."""
    obj = ArchiveObject.objects.filter(
        kind=ArchiveObject.EVENTS, period_start=first, state=ArchiveObject.ARCHIVED
    ).first()
    if obj is None:
        raise ArchiveRefused(f"{first:%Y-%m} has no archived events to restore")
    table = object_table(obj)
    # Quoted only where needed (the server parses less); FORCE_NOT_NULL below keeps an unquoted empty string a
    # string, not NULL.
    options = pa_csv.WriteOptions(include_header=False, quoting_style="needed")

    def fill(wrapper, name: str) -> None:
        texts = ", ".join(field.name for field in SCHEMA if pa.types.is_string(field.type))
        sql = f"COPY {name} ({_RESTORE_COLUMNS}) FROM STDIN (FORMAT csv, FORCE_NOT_NULL ({texts}))"
        cursor = wrapper.cursor  # psycopg's own, under Django's wrapper: the writer sets its result
        # Batch by batch, sent by a thread of its own: the server parses one while the next is encoded.
        with cursor.copy(sql, writer=QueuedLibpqWriter(cursor)) as copy:
            for batch in _utc_as_text(table).to_batches(max_chunksize=RESTORE_BATCH_ROWS):
                chunk = io.BytesIO()
                pa_csv.write_csv(batch, chunk, write_options=options)
                copy.write(chunk.getvalue())
        if cursor.rowcount != obj.row_count:
            raise ArchiveCorrupt(f"{name}: the restored rows are not the {obj.row_count} of the manifest")

    with transaction.atomic(), _exclusive("events"):
        if not partitions.partition_create(first=first, fill=fill):
            raise ArchiveRefused(f"{partitions.partition_name(first)} exists: nothing to restore into")
        ArchiveObject.objects.filter(id=obj.id).update(state=ArchiveObject.RESTORED, restored_at=timezone.now())
    logger.info("restored %s events of %s from %s (by %s)", obj.row_count, f"{first:%Y-%m}", obj.key, actor)
    return MonthResult(first, "restored", obj.row_count)


def archives_verify() -> list[str]:
    """Every live or archived object re-checked against its manifest: the problems found, one line each."""
    problems = []
    for obj in ArchiveObject.objects.filter(state__in=[ArchiveObject.WRITTEN, ArchiveObject.ARCHIVED]).order_by(
        "kind", "period_start"
    ):
        try:
            object_table(obj)
        except ArchiveCorrupt as error:
            problems.append(f"{obj}: {error}")
    return problems
