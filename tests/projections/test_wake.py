"""The wake-ups a commit sends the worker: one per interval, the interval's trailing one sent by the worker."""

import pytest

from projections import cache, services
from projections.engine import projections
from projections.tasks import projection_run_task, projections_wake_task


@pytest.fixture
def sent(settings, monkeypatch):
    """Wake-ups on, no gate taken yet in Redis or in this process, and every send recorded, not made."""
    settings.PROJECTIONS_WAKE_ON_COMMIT = True
    cache.client().delete(services.WAKE_GATE_KEY)
    monkeypatch.setattr(services, "_quiet_until", 0.0)
    sends: list[tuple] = []
    monkeypatch.setattr(projections_wake_task, "delay", lambda *a, **kw: sends.append(("wake", a, kw)))
    monkeypatch.setattr(projections_wake_task, "apply_async", lambda *a, **kw: sends.append(("wake later", a, kw)))
    monkeypatch.setattr(projection_run_task, "delay", lambda *a, **kw: sends.append(("run", a, kw)))
    yield sends
    cache.client().delete(services.WAKE_GATE_KEY)


def test_the_commit_that_takes_the_gate_sends_one_wake_up_and_the_next_commits_none(sent):
    # when commits follow each other within the wake-up interval
    for _ in range(3):
        services.projections_wake([])
    # then the first sent one wake-up, which asks the worker for the interval's trailing one: a second send
    # would cost that command another millisecond of CPU
    assert sent == [("wake", (), {"trail": True})]


def test_the_worker_sends_the_trailing_wake_up_before_it_runs_the_projections(sent, settings):
    # when the worker runs a wake-up that a commit sent
    projections_wake_task(trail=True)
    # then it first sends itself one more for when the gate has lapsed, one that asks for no further one, then
    # runs every projection
    assert sent[0] == ("wake later", (), {"countdown": settings.PROJECTIONS_WAKE_INTERVAL_SECONDS})
    assert sent[1:] == [("run", (name,), {}) for name in projections()]


def test_a_wake_up_without_trail_only_runs_the_projections(sent):
    projections_wake_task()
    assert sent == [("run", (name,), {}) for name in projections()]
