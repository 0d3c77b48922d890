"""The month export reads the partition through ADBC's binary COPY (archive.tables.select_table): the rows it
gives are exactly those of the table's own text COPY, awkward JSON included, and it leaves no connection
behind (the test database is dropped after the run; an export per month must not accumulate sessions)."""

import datetime as dt
import json
import uuid

import pyarrow as pa
import pytest
from django.db import connection

from archive.events import SCHEMA, export_table
from archive.tables import EXPORT_CONNECTION_NAME, query_table
from fintech import partitions
from tests.archive.conftest import months_back
from tests.fintech.helpers import AGGREGATE_TYPE

pytestmark = pytest.mark.django_db(transaction=True)

AWKWARD = [
    {"note": 'quote " and backslash \\ and tab \t and newline \n'},
    {"note": "", "empty": {}, "list": []},
    {"note": "¥1,000 — 決済 ✓", "emoji": "💳"},
    {"note": 'comma, "quoted", and a \\N that is not NULL'},
    {"note": "big", "amount": "123456789012345678", "nested": {"a": [1, 2, {"b": None}]}},
]


def _insert(first: dt.date) -> list[str]:
    """The events' ids. Other tests may write into the same month (the log outlives a test), so the checks
    below look at these rows, or at the whole partition on both sides."""
    ids = [str(uuid.uuid4()) for _ in AWKWARD]
    with connection.cursor() as cursor:
        for index, data in enumerate(AWKWARD):
            cursor.execute(
                "INSERT INTO fintech_event (event_id, aggregate_id, aggregate_type, event_type, event_data, metadata, "
                "version, occurred_at) VALUES (%s, %s, %s, 'KernelNoted', %s, %s, 1, %s)",
                [
                    ids[index],
                    uuid.uuid4(),
                    AGGREGATE_TYPE,
                    json.dumps(data),
                    json.dumps({"actor": f"user:{index}", "note": data.get("note", "")}),
                    dt.datetime(first.year, first.month, 1 + index, 23, 59, 59, 999999, tzinfo=dt.UTC),
                ],
            )
    return ids


def test_export_equals_the_text_copy_of_the_partition():
    first = months_back(31)
    partitions.partition_create(first=first)
    name = partitions.partition_name(first)
    ids = _insert(first)
    exported = export_table(name)
    # The same rows through the table's text COPY, parsed as CSV (the path the export took before).
    casts = ", ".join(
        f"{field.name}::text::bigint" if field.name == "transaction_id" else field.name for field in SCHEMA
    )
    copied = query_table(f"SELECT {casts} FROM {name} ORDER BY transaction_id, position", SCHEMA)  # noqa: S608
    assert exported.schema == SCHEMA
    assert exported.num_rows >= len(AWKWARD)
    assert exported.equals(copied)
    data = dict(zip(exported.column("event_id").to_pylist(), exported.column("event_data").to_pylist(), strict=True))
    assert [json.loads(data[event_id]) for event_id in ids] == AWKWARD
    assert exported.column("occurred_at").type == pa.timestamp("us", tz="UTC")


def test_an_empty_partition_exports_an_empty_table_of_the_schema():
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE archive_export_probe (LIKE fintech_event INCLUDING DEFAULTS)")
    try:
        exported = export_table("archive_export_probe")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE archive_export_probe")
    assert exported.num_rows == 0
    assert exported.schema == SCHEMA


def test_the_export_leaves_no_connection_open():
    first = months_back(32)
    partitions.partition_create(first=first)
    _insert(first)
    export_table(partitions.partition_name(first))
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [EXPORT_CONNECTION_NAME])
        assert cursor.fetchone()[0] == 0
