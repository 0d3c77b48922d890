"""A query's rows as an Arrow table: COPY out as CSV, parsed by Arrow's C++ reader into the given schema (every
archive kind exports this way)."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.csv as pa_csv

from fintech.db import raw_cursor


def query_table(sql: str, schema: pa.Schema) -> pa.Table:
    """The rows of `sql` (a SELECT of the schema's columns, in order), empty strings kept apart from NULL."""
    return _copied(f"COPY ({sql}) TO STDOUT (FORMAT csv)", schema)


def whole_table(table: str, schema: pa.Schema) -> pa.Table:
    """Every row of a table, the schema's columns by name: a COPY of the table itself, which the server writes
    faster than the same rows of a query."""
    return _copied(f"COPY {table} ({', '.join(schema.names)}) TO STDOUT (FORMAT csv)", schema)


def _copied(copy_sql: str, schema: pa.Schema) -> pa.Table:
    buffer = io.BytesIO()
    with raw_cursor() as cursor, cursor.copy(copy_sql) as copy:
        for chunk in copy:
            buffer.write(chunk)
    if not buffer.getbuffer().nbytes:
        return schema.empty_table()
    buffer.seek(0)
    return pa_csv.read_csv(
        buffer,
        read_options=pa_csv.ReadOptions(column_names=schema.names),
        convert_options=pa_csv.ConvertOptions(
            column_types=dict(zip(schema.names, schema.types, strict=True)),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    ).cast(schema)
