import uuid
from dataclasses import dataclass

import pytest

from fintech import eventstore
from fintech.events import DomainEvent
from projections import engine
from projections.models import ProjectionState

pytestmark = pytest.mark.django_db(transaction=True)


@dataclass(frozen=True, kw_only=True)
class EngineTested(DomainEvent):
    aggregate_type = "engine_test"
    label: str


@pytest.fixture
def failing_projection():
    """A projection whose handler fails on the event labelled 'bad' until `broken` is cleared."""
    seen: list[str] = []
    broken = {"on": True}

    def handler(cursor, tables, recorded):
        if recorded.event.label == "bad" and broken["on"]:
            raise RuntimeError("cannot apply 'bad'")
        seen.append(recorded.event.label)

    name = f"test_failing_{uuid.uuid4().hex[:6]}"
    engine.projection_register(engine.Projection(name=name, tables=(), handlers={"EngineTested": handler}))
    yield name, seen, broken
    engine._REGISTRY.pop(name)


def _append(*labels: str) -> None:
    from django.utils import timezone

    stream = uuid.uuid4()
    eventstore.append(stream, [EngineTested(occurred_at=timezone.now(), label=label) for label in labels], 0)


def test_failing_handler_stops_at_event_then_resumes_after_fix(failing_projection, admin_client):
    name, seen, broken = failing_projection
    _append("one", "bad", "three")
    # when it runs, the events before the failing one are applied and it stops there, the error recorded
    engine.projection_run(name=name)
    state = ProjectionState.objects.get(name=name)
    assert seen[-1] == "one"
    assert "three" not in seen
    assert "cannot apply 'bad'" in state.error
    bad = [r for r in eventstore.read_all(limit=100_000) if getattr(r.event, "label", None) == "bad"][-1]
    assert state.error_event_id == bad.event_id
    # and it stays stopped there, without skipping the event
    engine.projection_run(name=name)
    assert "three" not in seen
    # and the admin shows it
    assert "cannot apply" in admin_client.get(f"/admin/projections/projectionstate/{name}/change/").content.decode()
    # when the handler is fixed, it goes on from the failing event and the error is cleared
    broken["on"] = False
    engine.projection_run(name=name)
    assert seen[-2:] == ["bad", "three"]
    assert ProjectionState.objects.get(name=name).error == ""


def test_projection_run_skips_when_another_holds_the_lock(failing_projection):
    from django.db import connections

    name, seen, broken = failing_projection
    broken["on"] = False
    _append("x")
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"projection:{name}"])
            # then a run while another session holds the projection does nothing
            assert engine.projection_run(name=name) == 0
            cursor.execute("COMMIT")
    finally:
        other.close()
    assert engine.projection_run(name=name) > 0


@dataclass(frozen=True, kw_only=True)
class EngineFuture(DomainEvent):
    """Stored at v2; a test lowers the class to v1 to play code older than the event."""

    event_version = 2
    aggregate_type = "engine_test"
    label: str


@pytest.fixture
def future_projection(monkeypatch):
    seen: list[str] = []

    def handler(cursor, tables, recorded):
        seen.append(recorded.event.label)

    name = f"test_future_{uuid.uuid4().hex[:6]}"
    engine.projection_register(engine.Projection(name=name, tables=(), handlers={"EngineFuture": handler}))
    yield name, seen
    engine._REGISTRY.pop(name)


def test_undecodable_event_stops_the_projection_with_the_error_recorded_and_status_still_reports(
    future_projection, monkeypatch
):
    from io import StringIO

    from django.core.management import call_command
    from django.utils import timezone

    name, seen = future_projection
    engine.projection_run(name=name)  # past anything earlier tests left in the log
    seen.clear()
    stream = uuid.uuid4()
    eventstore.append(
        stream, [EngineFuture(occurred_at=timezone.now(), label=label) for label in ("one", "new", "three")], 0
    )
    first = eventstore.load(stream)[0]
    # when the code is older than the events (it knows v1 only), the projection stops at the first of them
    monkeypatch.setattr(EngineFuture, "event_version", 1)
    engine.projection_run(name=name)
    state = ProjectionState.objects.get(name=name)
    assert seen == []
    assert state.error_event_id == first.event_id
    assert "newer than this code" in state.error
    # and projection_status reports the lag and the error instead of failing on the event
    out = StringIO()
    call_command("projection_status", stdout=out)
    line = next(line for line in out.getvalue().splitlines() if line.startswith(f"{name}:"))
    assert "lag 3 events" in line
    assert f"stopped at event {first.event_id}" in out.getvalue()
    # when the code learns v2, it goes on from that event, nothing skipped
    monkeypatch.setattr(EngineFuture, "event_version", 2)
    engine.projection_run(name=name)
    assert seen == ["one", "new", "three"]
    assert ProjectionState.objects.get(name=name).error == ""


def test_events_a_projection_does_not_handle_are_passed_without_decoding(failing_projection, monkeypatch):
    from django.utils import timezone

    name, seen, broken = failing_projection
    broken["on"] = False
    # an event of another type that this code cannot decode sits between two handled ones
    eventstore.append(uuid.uuid4(), [EngineFuture(occurred_at=timezone.now(), label="other")], 0)
    monkeypatch.setattr(EngineFuture, "event_version", 1)
    _append("after")
    # then the projection, which does not handle that type, goes past it
    engine.projection_run(name=name)
    assert seen[-1] == "after"
    state = ProjectionState.objects.get(name=name)
    assert state.error == ""
    assert (state.checkpoint_transaction, state.checkpoint_position) >= tuple(eventstore.head())


def test_database_error_in_a_pipelined_batch_stops_at_its_own_event():
    from django.db import connection
    from django.utils import timezone

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS engine_test_rows (label text)")
    run = uuid.uuid4().hex[:8]

    def handler(cursor, tables, recorded):
        label = recorded.event.label
        if not label.startswith(run):
            return
        # The failing statement is only known to fail when the pipeline syncs, after the later events were sent.
        sql = "SELECT 1 / 0" if label.endswith("bad") else "INSERT INTO engine_test_rows VALUES (%s)"
        cursor.execute(sql, [] if label.endswith("bad") else [label])
        if label.endswith("-4"):
            # psycopg may raise a pipelined error in any later statement: make it surface in this event's.
            with cursor.connection.pipeline() as pipeline:
                pipeline.sync()

    name = f"test_pipelined_{run}"
    engine.projection_register(
        engine.Projection(name=name, tables=(), handlers={"EngineTested": handler}, pipelined=True)
    )
    try:
        labels = [f"{run}-1", f"{run}-2", f"{run}-bad", f"{run}-4"]
        eventstore.append(uuid.uuid4(), [EngineTested(occurred_at=timezone.now(), label=lb) for lb in labels], 0)
        bad = eventstore.load(eventstore.read_all(limit=100_000)[-1].stream_id)[2]
        # when the batch runs in pipeline mode and the third event's statement fails at the server
        engine.projection_run(name=name)
        # then it stops at that event, with what came before applied once and the error recorded
        with connection.cursor() as cursor:
            cursor.execute("SELECT label FROM engine_test_rows WHERE label LIKE %s ORDER BY 1", [f"{run}%"])
            assert [row[0] for row in cursor.fetchall()] == [f"{run}-1", f"{run}-2"]
        state = ProjectionState.objects.get(name=name)
        assert state.error_event_id == bad.event_id
        assert "division by zero" in state.error
    finally:
        engine._REGISTRY.pop(name)
