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
