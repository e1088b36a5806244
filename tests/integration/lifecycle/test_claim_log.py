"""The claim of a submission is logged once it is committed: a worker whose
compare-and-set lost to another's (two replicas, or a replica's unstarted job and a
worker taking the same submission) logs that it resumed, never that it claimed."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from deposit_services.model.entities import AggregatedDepositStatus, Submission
from deposit_services.service.submissions import Claim, SubmissionProcessor
from deposit_services.store.uow import UnitOfWork
from tests.integration.lifecycle.conftest import FS_REPO, World


class Overtaken(SubmissionProcessor):
    """A processor whose first claim run is overtaken: another worker claims the
    submission (through its own connection) after this run read it and before it
    commits."""

    def __init__(self, world: World) -> None:
        super().__init__(world.ctx)
        self.world = world
        self.runs = 0

    def claim(self, uow: UnitOfWork, submission_id: str, *, wait: bool = True,
              lost_race: bool = False) -> Claim | None:
        self.runs += 1
        found = super().claim(uow, submission_id, wait=wait, lost_race=lost_race)
        if self.runs == 1:
            other = self.world.store.get(Submission, submission_id)
            other.aggregated_deposit_status = AggregatedDepositStatus.IN_PROGRESS
            self.world.store.update(other)
        return found


# SQLite: a unit holds the database's write lock from its start, so no other worker
# can overtake it; PostgreSQL's units race and the compare-and-set decides.
@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_a_claim_that_lost_its_race_is_not_logged_as_claimed(
    make_world: Callable[..., World], caplog: pytest.LogCaptureFixture,
) -> None:
    world = make_world()
    world.seed("raced-1", [FS_REPO])
    processor = Overtaken(world)
    with caplog.at_level("INFO", logger="deposit_services.service.submissions"):
        processor.process("raced-1")
    said = [r.getMessage() for r in caplog.records
            if r.getMessage().startswith("submission raced-1 ")]
    assert processor.runs == 2, "the first run lost the compare-and-set and ran again"
    assert "submission raced-1 claimed" not in said, said
    assert "submission raced-1 resumed" in said, said


def test_a_committed_claim_is_logged_as_claimed_once(
    make_world: Callable[..., World], caplog: pytest.LogCaptureFixture,
) -> None:
    world = make_world()
    world.seed("plain-1", [FS_REPO])
    with caplog.at_level("INFO", logger="deposit_services.service.submissions"):
        SubmissionProcessor(world.ctx).process("plain-1")
    said = [r.getMessage() for r in caplog.records
            if r.getMessage().startswith("submission plain-1 ")]
    assert said.count("submission plain-1 claimed") == 1, said
    assert world.store.get(Submission, "plain-1").aggregated_deposit_status \
        is AggregatedDepositStatus.ACCEPTED
