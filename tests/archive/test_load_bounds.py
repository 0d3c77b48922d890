"""eventstore.load reads only the partitions a stream can live in: those between its first and last
occurred_at (kept on fintech_stream by the append trigger); it used to probe every monthly partition."""

from __future__ import annotations

import pytest
from django.db import connection

from fintech import partitions
from fintech.eventstore import _LOAD

pytestmark = pytest.mark.django_db(transaction=True)


def _scanned(plan: dict) -> list[str]:
    """The event partitions a plan actually read (a partition pruned at run time shows 0 loops)."""
    found = []

    def walk(node: dict) -> None:
        relation = node.get("Relation Name", "")
        if relation.startswith("fintech_event") and node.get("Actual Loops", 0) > 0:
            found.append(relation)
        for child in node.get("Plans", []):
            walk(child)

    walk(plan["Plan"])
    return found


def test_load_reads_only_the_streams_own_months(old_month, pay_in):
    first = old_month(34)
    payment = pay_in(first)
    assert len(partitions.existing_partitions()) > 2
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {_LOAD}", [payment.id] * 2 + [0] + [payment.id] * 2)
        (plan,) = cursor.fetchone()[0]
    assert _scanned(plan) == [partitions.partition_name(first)]
