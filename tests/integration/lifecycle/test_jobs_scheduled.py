"""Which jobs a worker schedules: none for a feature that is not configured (an idle
worker's jobs commit only what they have to)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from deposit_services.entrypoints.jobs import Jobs
from deposit_services.settings import load_settings
from tests.integration.lifecycle.conftest import World


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_no_notices_job_when_no_repository_asks_for_notices(
    make_world: Callable[..., World], caplog: pytest.LogCaptureFixture,
) -> None:
    world = make_world()
    jobs = Jobs(world.ctx, load_settings({"DEPOSIT_DATA_DIR": str(world.root),
                                          "PASS_DEPOSIT_JOBS_DEFAULT_INTERVAL_MS": "3600000"}))
    with caplog.at_level("INFO", logger="deposit_services.entrypoints.jobs"):
        jobs.start()
        jobs.shutdown()
    (started,) = [r.getMessage() for r in caplog.records
                  if r.getMessage().startswith("jobs started:")]
    assert started == ("jobs started: refresh, retry, submission-status, unstarted, "
                       "outbox every 3600.0 s")
