"""An exported month is in log order (transaction id, position) whatever order its rows sit in on disk: a
transaction that started first but inserted last comes first."""

import datetime as dt
import uuid

import psycopg
import pyarrow as pa
import pytest
from django.db import connection

from archive.events import SCHEMA, _in_log_order, export_table
from fintech import partitions
from tests.archive.conftest import months_back
from tests.fintech.helpers import AGGREGATE_TYPE


def _table(pairs):
    columns = {name: [] for name in SCHEMA.names}
    for tx, pos in pairs:
        for name in SCHEMA.names:
            columns[name].append({"transaction_id": tx, "position": pos}.get(name))
    return pa.table({name: pa.array(values, type=SCHEMA.field(name).type) for name, values in columns.items()})


def test_log_order_is_by_transaction_then_position():
    assert _in_log_order(_table([(1, 5), (1, 6), (2, 3), (3, 1)]))
    assert _in_log_order(_table([(7, 1)]))
    assert not _in_log_order(_table([(2, 1), (1, 2)]))
    assert not _in_log_order(_table([(1, 6), (1, 5)]))


# An event type the tests register (the log outlives the test: whoever reads it all must decode it).
INSERT = (
    "INSERT INTO fintech_event (event_id, aggregate_id, aggregate_type, event_type, event_data, version, "
    "occurred_at) VALUES (%s, %s, %s, 'KernelNoted', '{\"note\": \"order probe\"}', 1, %s) "
    "RETURNING transaction_id::text::bigint, position"
)


@pytest.mark.django_db(transaction=True)
def test_export_puts_a_late_inserting_older_transaction_first():
    first = months_back(30)
    partitions.partition_create(first=first)
    moment = dt.datetime(first.year, first.month, 3, tzinfo=dt.UTC)
    params = connection.get_connection_params()
    with psycopg.connect(**params) as older, psycopg.connect(**params) as newer:
        older.execute("SELECT pg_current_xact_id()")  # its transaction id is taken first
        early = newer.execute(INSERT, [uuid.uuid4(), uuid.uuid4(), AGGREGATE_TYPE, moment]).fetchone()
        newer.commit()
        late = older.execute(INSERT, [uuid.uuid4(), uuid.uuid4(), AGGREGATE_TYPE, moment]).fetchone()
        older.commit()
    assert late[0] < early[0]
    assert late[1] > early[1]
    table = export_table(partitions.partition_name(first))
    rows = list(zip(table.column("transaction_id").to_pylist(), table.column("position").to_pylist(), strict=True))
    assert rows.index(tuple(late)) < rows.index(tuple(early))
    assert _in_log_order(table)
