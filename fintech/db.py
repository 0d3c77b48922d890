"""A cursor straight on the psycopg connection Django manages, for the hot paths of every command.

Same session and transactions as the ORM (atomic blocks included), errors still mapped to Django's; what it
saves is the ORM's query building and Django's cursor wrapper, which together cost more client time than the
statement itself on the paths every payment takes (the event store, the vault's card reads and audit rows).
"""

import contextlib
from collections.abc import Iterator
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections


@contextlib.contextmanager
def raw_cursor() -> Iterator[Any]:
    # One lookup of this thread's connection: each attribute read through django.db.connection (a proxy) is
    # another thread-local lookup, and this runs for every statement of every command.
    wrapper = connections[DEFAULT_DB_ALIAS]
    if wrapper.connection is None:
        wrapper.ensure_connection()
    with wrapper.wrap_database_errors, wrapper.connection.cursor() as cursor:
        yield cursor
