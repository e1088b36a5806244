"""The retry job picks up deposits whose worker died before recording anything."""

from __future__ import annotations

from collections.abc import Callable

from deposit_services.entrypoints.jobs import Jobs
from deposit_services.model.entities import (
    AggregatedDepositStatus,
    Deposit,
    DepositStatus,
    Submission,
)
from deposit_services.service.outcome import deposit_lease
from deposit_services.settings import load_settings
from deposit_services.store.base import AttemptOutcome, PackageInfo
from tests.integration.lifecycle.conftest import FS_REPO, World


def _stranded(world: World, sid: str) -> Deposit:
    """What a worker killed mid-deposit leaves: a claimed submission, a deposit with no
    status and an attempt with an intent but no outcome."""
    world.seed(sid, [FS_REPO])
    submission = world.store.get(Submission, sid)
    submission.aggregated_deposit_status = AggregatedDepositStatus.IN_PROGRESS
    world.store.update(submission)
    deposit = world.store.add(Deposit(id=f"dep-{sid}", submission=sid,
                                      repository=FS_REPO["id"]))
    world.store.begin_attempt(deposit.id, trigger="message", owner="dead-worker",
                              package=PackageInfo("whatever.zip", 1))
    return deposit


def test_a_stranded_deposit_is_run_once_its_lease_is_free(
    make_world: Callable[..., World],
) -> None:
    world = make_world()
    deposit = _stranded(world, "strand-1")
    jobs = Jobs(world.ctx, load_settings({"DEPOSIT_DATA_DIR": str(world.root)}))

    assert world.store.acquire_lease(deposit_lease(deposit.id), "live-worker", 30)
    assert jobs.run_retry() == 0, "a live worker's deposit is left alone"
    assert world.deposit_of("strand-1").deposit_status is None

    world.store.release_lease(deposit_lease(deposit.id), "live-worker")
    assert jobs.run_retry() == 1
    assert world.deposit_of("strand-1").deposit_status is DepositStatus.ACCEPTED
    assert [a.outcome for a in world.store.attempts(deposit.id)] == [
        AttemptOutcome.INTERRUPTED, AttemptOutcome.SENT]
    assert world.store.get(Submission, "strand-1").aggregated_deposit_status \
        is AggregatedDepositStatus.ACCEPTED
    assert len(list(world.target_dir.iterdir())) == 1
    assert jobs.run_retry() == 0, "nothing left to do"
