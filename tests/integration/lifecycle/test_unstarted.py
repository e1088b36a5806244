"""The unstarted job: a ready submission whose SubmissionReady message was lost."""

from __future__ import annotations

from collections.abc import Callable

from deposit_services.entrypoints.jobs import Jobs
from deposit_services.model.entities import AggregatedDepositStatus, Submission
from deposit_services.settings import load_settings
from tests.integration.lifecycle.conftest import FS_REPO, World


def test_a_submission_nobody_claimed_for_a_cycle_is_processed_once(
    make_world: Callable[..., World],
) -> None:
    world = make_world()
    world.seed("lost-1", [FS_REPO])  # stored, but its message never sent
    jobs = Jobs(world.ctx, load_settings({"DEPOSIT_DATA_DIR": str(world.root)}))

    assert jobs.run_unstarted() == 0, "first sight: its message may still be on its way"
    assert world.store.get(Submission, "lost-1").aggregated_deposit_status \
        is AggregatedDepositStatus.NOT_STARTED

    world.seed("fresh-1", [FS_REPO])
    assert jobs.run_unstarted() == 1, "only the one seen unclaimed a cycle ago"
    assert world.store.get(Submission, "lost-1").aggregated_deposit_status \
        is AggregatedDepositStatus.ACCEPTED
    assert world.store.get(Submission, "fresh-1").aggregated_deposit_status \
        is AggregatedDepositStatus.NOT_STARTED
    assert len(list(world.target_dir.iterdir())) == 1

    assert jobs.run_unstarted() == 1  # fresh-1, now a cycle old
    assert jobs.run_unstarted() == 0, "nothing left to start"
    assert len(list(world.target_dir.iterdir())) == 2


def test_a_submission_claimed_in_between_is_left_to_its_worker(
    make_world: Callable[..., World],
) -> None:
    world = make_world()
    world.seed("claimed-1", [FS_REPO])
    jobs = Jobs(world.ctx, load_settings({"DEPOSIT_DATA_DIR": str(world.root)}))
    assert jobs.run_unstarted() == 0
    submission = world.store.get(Submission, "claimed-1")
    submission.aggregated_deposit_status = AggregatedDepositStatus.IN_PROGRESS
    world.store.update(submission)  # a worker took it meanwhile
    assert jobs.run_unstarted() == 0
    assert not world.target_dir.exists() or not list(world.target_dir.iterdir())
