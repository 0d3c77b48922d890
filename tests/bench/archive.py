"""Archive and restore throughput beside a raw COPY of the same partition, in one process on the bench database.

A month two years back is filled with `events` payment events by COPY. archive = archive_events' whole path
for the month: COPY out, Parquet (zstd), sealed with a fresh streaming-AEAD key, written to the archive store
(a directory), read back, unsealed and compared row by row with the partition, then detached and dropped.
restore = restore_events' whole path: the object read and checked against its manifest (both SHA-256),
unsealed, Parquet to CSV, COPY into a new partition, attached. The raw figures are `COPY partition TO STDOUT`
into memory and `COPY ... FROM STDIN` of those bytes into a new table, through psycopg. The export reads the
partition through ADBC's binary COPY, which alone beats that text COPY: its rate is printed too, so the ratio
can be read against both.

Call only after django.setup() on the bench database.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from collections.abc import Callable

import psycopg

from tests.bench.projections import CHUNK, COLUMNS, _median, _rows

TARGET_RATIO = 0.5


def _month(months_back: int) -> dt.date:
    from fintech.partitions import month_start

    first = month_start(dt.datetime.now(dt.UTC).date())
    for _ in range(months_back):
        first = month_start(first - dt.timedelta(days=1))
    return first


def _fill(url: str, events: int, first: dt.date) -> None:
    rows = _rows(events, lambda index: dt.datetime(first.year, first.month, 1 + index % 27, 12, 0, tzinfo=dt.UTC))
    with psycopg.connect(url) as conn:
        while True:
            chunk = [row for _, row in zip(range(CHUNK), rows, strict=False)]
            if not chunk:
                return
            with conn.transaction(), conn.cursor() as cursor:
                with cursor.copy(f"COPY fintech_event ({COLUMNS}) FROM STDIN") as copy:
                    for row in chunk:
                        copy.write_row(row)


def _projections_past(url: str) -> None:
    """The bench's shortcut: every projection's checkpoint set to the head (archiving waits for projections to
    have applied a month; applying 100,000 backdated events is another section's measurement)."""
    from fintech import eventstore
    from projections.engine import projections

    head = eventstore.head()
    with psycopg.connect(url) as conn:
        for name in projections():
            conn.execute(
                "INSERT INTO projections_projectionstate (name, checkpoint_transaction, checkpoint_position, "
                "events_applied, updated_at, error) VALUES (%s, %s, %s, 0, now(), '') ON CONFLICT (name) DO UPDATE "
                "SET checkpoint_transaction = EXCLUDED.checkpoint_transaction, "
                "checkpoint_position = EXCLUDED.checkpoint_position",
                [name, head.transaction_id, head.position],
            )


def _raw(url: str, name: str) -> tuple[int, float, float]:
    """(rows, seconds of COPY TO, seconds of COPY FROM) of the partition."""
    with psycopg.connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        data = bytearray()
        with conn.cursor().copy(f"COPY {name} TO STDOUT") as copy:
            for chunk in copy:
                data += chunk
        out_seconds = time.perf_counter() - started
        rows = data.count(b"\n")
        conn.execute(f"CREATE TABLE bench_copy_in (LIKE {name} INCLUDING DEFAULTS)")
        try:
            started = time.perf_counter()
            with conn.cursor().copy("COPY bench_copy_in FROM STDIN") as copy:
                copy.write(bytes(data))
            in_seconds = time.perf_counter() - started
        finally:
            conn.execute("DROP TABLE bench_copy_in")
    return rows, out_seconds, in_seconds


def _adbc_read(name: str) -> float:
    from archive.events import _EXPORT_COLUMNS, SCHEMA
    from archive.tables import select_table

    return _timed(lambda: select_table(f"SELECT {_EXPORT_COLUMNS} FROM {name}", SCHEMA))  # noqa: S608


def _timed(operation: Callable[[], object]) -> float:
    started = time.perf_counter()
    operation()
    return time.perf_counter() - started


def run(*, url: str, events: int, rounds: int, out: Callable[[str], None]) -> dict[str, float]:
    from django.conf import settings

    from archive import events as archive_events
    from archive.reader import _table
    from fintech import partitions

    first = _month(24)
    name = partitions.partition_name(first)
    settings.FINTECH_ARCHIVE_URL = ""
    with tempfile.TemporaryDirectory(prefix="bench-archive-") as directory:
        settings.FINTECH_ARCHIVE_DIR = directory
        if partitions.partition_create(first=first):
            _fill(url, events, first)
        _projections_past(url)
        raws, reads, archives, restores = [], [], [], []
        for _ in range(rounds):
            raws.append(_raw(url, name))
            reads.append(_adbc_read(name))
            archives.append(_timed(lambda: archive_events.events_month_archive(first=first, actor="bench")))
            restores.append(_timed(lambda: archive_events.events_month_restore(first=first, actor="bench")))
            _table.cache_clear()
        rows = raws[0][0]
    copy_out = _median([rows / seconds for _, seconds, _ in raws])
    copy_in = _median([rows / seconds for _, _, seconds in raws])
    archive = _median([rows / seconds for seconds in archives])
    restore = _median([rows / seconds for seconds in restores])
    read = _median([rows / seconds for seconds in reads])
    out("")
    out(f"archive, 1 process: the month {first:%Y-%m} of {rows:,} events, {rounds} rounds (median), local store")
    out(f"{'':<12}{'rows/s':>22}{'raw COPY rows/s':>22}{'ratio':>10}")
    out(f"{'archive':<12}{archive:>22,.0f}{copy_out:>22,.0f}{archive / copy_out:>10.4f}   (raw: COPY TO)")
    out(f"{'':<12}{'':>22}{read:>22,.0f}{archive / read:>10.4f}   (raw: the export's binary COPY read alone)")
    out(f"{'restore':<12}{restore:>22,.0f}{copy_in:>22,.0f}{restore / copy_in:>10.4f}   (raw: COPY FROM)")
    for label, ratio in (("archive", archive / copy_out), ("restore", restore / copy_in)):
        verdict = "MET" if ratio >= TARGET_RATIO else "NOT MET"
        out(f"  {label}: target >= {TARGET_RATIO} of the raw rate: {verdict}")
    return {"archive": archive / copy_out, "restore": restore / copy_in}
