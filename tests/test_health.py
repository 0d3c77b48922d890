"""/healthz says the process answers; /readyz that PostgreSQL, Redis and the broker answer and the projections
keep up, 503 naming what does not, and never an address or a credential."""

from __future__ import annotations

import pytest
from django.test import Client

from projections.engine import projection_run, projections

pytestmark = pytest.mark.django_db


def _caught_up() -> None:
    for name in projections():
        projection_run(name=name)


def test_healthz_answers_without_touching_anything(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db(transaction=True)
def test_readyz_is_ready_when_everything_answers(settings):
    settings.READYZ_MAX_LAG_SECONDS = 3600
    _caught_up()
    response = Client().get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "redis": "ok", "broker": "ok", "projections": "ok"},
    }


@pytest.mark.django_db(transaction=True)
def test_readyz_names_redis_when_it_does_not_answer(settings):
    settings.READYZ_MAX_LAG_SECONDS = 3600
    _caught_up()
    settings.CACHES = {
        **settings.CACHES,
        "default": {**settings.CACHES["default"], "LOCATION": "redis://:secret@127.0.0.1:1/0"},
    }
    response = Client().get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    assert body["checks"]["redis"].startswith("unavailable (")
    assert body["checks"]["database"] == "ok"
    assert "secret" not in response.content.decode()
    assert "127.0.0.1" not in response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_readyz_names_a_lagging_or_stopped_projection(settings):
    from projections.models import ProjectionState

    settings.READYZ_MAX_LAG_SECONDS = 3600
    _caught_up()
    ProjectionState.objects.filter(name="payments").update(error="Traceback...\nValueError: boom")
    body = Client().get("/readyz").json()
    assert body["checks"]["projections"].startswith("payments stopped")


def test_readyz_only_answers_get(client):
    assert client.post("/readyz").status_code == 405
