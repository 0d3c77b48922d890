"""Least privilege in the database: the application connects as a role that can write what its commands write
and nothing more, while migrations (and other DDL: partitions, projection replays) run as the tables' owner.

What the app role may do, table by table (everything in the schema is covered, so tables added by later
migrations are too; run `db_roles_setup` again after every migrate):
- append-only records (the event store, the ledger, transfers, settlements, the detokenisation audit, the staff
  audit trail, the retention policy's history, the archive's purge records): SELECT and INSERT; no UPDATE,
  DELETE or TRUNCATE, whatever the triggers would say.
- fintech_stream: SELECT, INSERT and UPDATE of its version and bounds only: the event store's trigger writes it as the
  inserting role, and its own guard refuses any direct write.
- django_migrations: SELECT (the server checks for unapplied migrations).
- partitions of the event table: nothing; rows are read and written through the parent.
- every other table (state, read models, sessions, users, idempotency records): SELECT, INSERT, UPDATE, DELETE.
Never TRUNCATE, REFERENCES or TRIGGER, and never ownership: only an owner can ALTER a table or DISABLE TRIGGER.
Sequences: USAGE and SELECT (no setval). Tables and sequences the owner creates later (a new month's partition,
a migration's table before the next setup) are readable and insertable by default, nothing more.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re

from django.db import connection, transaction
from psycopg import sql

APPEND_ONLY = frozenset(
    {
        "fintech_event",
        "accounts_journalentry",
        "accounts_posting",
        "accounts_transfer",
        "accounts_settlementbatch",
        "accounts_settlementline",
        "accounts_settledpayment",
        "accounts_bookingalert",
        "vault_detokenizationaudit",
        "fintech_staffaudit",
        "archive_retention_change",
        "archive_purge_record",
    }
)
READ_ONLY = frozenset({"django_migrations"})
STREAM_TABLE = "fintech_stream"
STATE_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class DbRoleError(Exception):
    """A role setup that cannot be done as asked."""


def db_roles_setup(*, app_role: str, password: str | None = None, login: bool = True) -> dict[str, str]:
    """Create or update the application's role and grant it exactly what the app needs (see the module); run by
    the tables' owner, idempotently, after every migrate. Returns the privileges granted, by table."""
    if not _ROLE_NAME.match(app_role):
        raise DbRoleError("a role name is 1-63 lowercase letters, digits and underscores")
    role = sql.Identifier(app_role)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT current_user, current_schema(), current_database()")
        owner, schema_name, database = cursor.fetchone()
        if app_role == owner:
            raise DbRoleError("the app role must not be the owner that runs the migrations")
        schema = sql.Identifier(schema_name)
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [app_role])
        exists = cursor.fetchone() is not None
        attributes = sql.SQL(" ").join(
            sql.SQL(word)
            for word in ("LOGIN" if login else "NOLOGIN", *"NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION".split())
        ) + sql.SQL(" NOBYPASSRLS NOINHERIT")
        _run(cursor, sql.SQL("ALTER ROLE {} WITH {}" if exists else "CREATE ROLE {} WITH {}").format(role, attributes))
        if password:
            _run(cursor, sql.SQL("ALTER ROLE {} PASSWORD {}").format(role, sql.Literal(_scram_sha256(password))))
        _run(cursor, sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), role))
        _run(cursor, sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, role))
        _run(cursor, sql.SQL("REVOKE CREATE ON SCHEMA {} FROM {}").format(schema, role))
        _run(cursor, sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM {}").format(schema, role))
        _run(cursor, sql.SQL("REVOKE ALL ON ALL SEQUENCES IN SCHEMA {} FROM {}").format(schema, role))
        cursor.execute(
            "SELECT c.relname, c.relispartition FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace "
            "AND c.relkind IN ('r', 'p', 'v', 'm') ORDER BY c.relname"
        )
        granted = {}
        for table, is_partition in cursor.fetchall():
            privileges = _privileges_of(table, is_partition=is_partition)
            if privileges:
                statement = sql.SQL("GRANT {} ON TABLE {}.{} TO {}").format(
                    sql.SQL(privileges), schema, sql.Identifier(table), role
                )
                _run(cursor, statement)
            granted[table] = privileges or "-"
        _run(cursor, sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {} TO {}").format(schema, role))
        default = sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} ").format(sql.Identifier(owner), schema)
        _run(cursor, default + sql.SQL("GRANT SELECT, INSERT ON TABLES TO {}").format(role))
        _run(cursor, default + sql.SQL("GRANT USAGE, SELECT ON SEQUENCES TO {}").format(role))
    return granted


def _privileges_of(table: str, *, is_partition: bool) -> str:
    if is_partition:
        return ""
    if table in APPEND_ONLY:
        return "SELECT, INSERT"
    if table in READ_ONLY:
        return "SELECT"
    if table == STREAM_TABLE:
        return "SELECT, INSERT, UPDATE (version, updated_at, first_occurred_at, last_occurred_at)"
    return STATE_PRIVILEGES


def privileges_copy(cursor, *, source: str, target: str) -> None:
    """Grant on `target` what every role but the owner holds on `source`: a table rebuilt beside the live one
    (a projection replay) and swapped in keeps the app role's access."""
    cursor.execute(
        "SELECT a.grantee::regrole::text, string_agg(DISTINCT a.privilege_type, ', ') "
        "FROM pg_class c, aclexplode(c.relacl) a "
        "WHERE c.oid = %s::regclass AND a.grantee <> c.relowner AND a.grantee <> 0 GROUP BY a.grantee",
        [source],
    )
    for grantee, privileges in cursor.fetchall():
        # Both come from the catalog: privilege keywords and a role name regrole already quoted.
        cursor.execute(f"GRANT {privileges} ON TABLE {target} TO {grantee}")


def _run(cursor, statement: sql.Composable) -> None:
    # Utility statements take no bind parameters: composed and quoted by psycopg on the client.
    cursor.execute(statement.as_string(cursor.connection))


def _scram_sha256(password: str) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for a password: the plaintext never reaches the server (nor
    its statement log)."""
    salt, iterations = os.urandom(16), 4096
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    salt_text, stored_text, server_text = (
        base64.b64encode(part).decode("ascii") for part in (salt, hashlib.sha256(client_key).digest(), server_key)
    )
    return f"SCRAM-SHA-256${iterations}:{salt_text}${stored_text}:{server_text}"
