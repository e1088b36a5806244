"""The scheduler itself: retry wake-ups between long intervals, one refresh per cycle
across replicas."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from deposit_services.entrypoints.jobs import Jobs
from deposit_services.model.entities import DepositStatus
from deposit_services.service.retry import RetryPolicy
from deposit_services.service.submissions import SubmissionProcessor
from deposit_services.settings import load_settings
from tests.integration.lifecycle.conftest import SWORD_REPO, World


def test_a_retry_is_woken_at_its_time_not_at_the_next_interval(
    make_world: Callable[..., World],
) -> None:
    world = make_world(RetryPolicy(base_seconds=0.2, factor=2, cap_seconds=1, jitter="none"),
                       **{"check-collection": False})
    settings = load_settings({"DEPOSIT_DATA_DIR": str(world.root),
                              "PASS_DEPOSIT_JOBS_DEFAULT_INTERVAL_MS": "3600000"})
    jobs = Jobs(world.ctx, settings)
    jobs.start()
    try:
        time.sleep(0.3)  # the first (immediate) runs are over; the next is in an hour
        world.seed("wake", [SWORD_REPO])
        world.server.fail_next(2, status=503)
        SubmissionProcessor(jobs.ctx).process("wake")
        assert world.deposit_of("wake").deposit_status is DepositStatus.RETRY
        deadline = time.monotonic() + 15
        while world.deposit_of("wake").deposit_status is not DepositStatus.SUBMITTED:
            assert time.monotonic() < deadline, world.deposit_of("wake").status_message
            time.sleep(0.05)
    finally:
        jobs.shutdown()
    attempts = world.store.attempts(world.deposit_of("wake").id)
    assert [a.trigger for a in attempts] == ["message", "job", "job"]
    assert len(world.server.deposits) == 1


def test_refresh_runs_on_one_replica_per_cycle(make_world: Callable[..., World]) -> None:
    world = make_world()
    world.seed("cycle", [SWORD_REPO])
    SubmissionProcessor(world.ctx).process("cycle")  # a SUBMITTED deposit: refresh has work
    assert world.deposit_of("cycle").deposit_status is DepositStatus.SUBMITTED
    settings = load_settings({"DEPOSIT_DATA_DIR": str(world.root),
                              "PASS_DEPOSIT_JOBS_DEFAULT_INTERVAL_MS": "5000",
                              "DEPOSIT_REFRESH_WINDOW_DAYS": "36500"})  # the graph's date
    runs: list[str] = []
    replicas = [Jobs(replace(world.ctx, owner=f"r{n}"), settings) for n in range(2)]
    for n, jobs in enumerate(replicas):
        jobs._guarded("refresh", lambda n=n: runs.append(f"r{n}"), True)  # type: ignore[misc]
    assert runs == ["r0"], "the second replica skips this cycle"
    for n, jobs in enumerate(replicas):
        jobs._guarded("retry", lambda n=n: runs.append(f"retry-r{n}"), False)  # type: ignore[misc]
    assert runs[1:] == ["retry-r0", "retry-r1"], "retry runs everywhere (deposits are claimed)"
