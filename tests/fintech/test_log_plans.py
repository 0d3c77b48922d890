"""The log's reads use its index, whatever its size: the next batch after a checkpoint and the head come in
order from fintech_event_log_idx, never from sorting the remaining log (issue 14: each batch of a catch-up sorted
every event after its checkpoint, because ORDER BY named the select list's cast of transaction_id)."""

from __future__ import annotations

import pytest
from django.db import connection

from fintech.eventstore import _HEAD, _KEYS_AFTER, _OLDEST_PENDING, _READ_AFTER

pytestmark = pytest.mark.django_db


def _nodes(plan: dict) -> list[dict]:
    found = [plan]
    for child in plan.get("Plans", []):
        found += _nodes(child)
    return found


def _plan(sql: str, params: list) -> list[dict]:
    with connection.cursor() as cursor:
        # A sort made costly: a plan still sorting is one that cannot get the order from an index.
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        (plan,) = cursor.fetchone()[0]
    return _nodes(plan["Plan"])


@pytest.mark.parametrize(
    ("name", "sql", "params"),
    [
        ("read_batch", _READ_AFTER, [0, 0, 2**62, 2000]),
        ("read_keys", _KEYS_AFTER, [0, 0, 2**62, 2000]),
        ("head", _HEAD, [2**62]),
        # /readyz's lag: the first pending event, however far behind the checkpoint is
        ("oldest_pending", _OLDEST_PENDING, [0, 0, 2**62, ["PaymentCaptured"], ["PaymentCaptured"]]),
    ],
)
def test_log_reads_come_from_the_log_index_without_a_sort(name, sql, params):
    nodes = _plan(sql, params)
    assert not [node for node in nodes if node["Node Type"] in ("Sort", "Incremental Sort")], name
    indexes = {node.get("Index Name", "") for node in nodes}
    assert any("log_idx" in index or "transaction_id_position" in index for index in indexes), (name, indexes)
