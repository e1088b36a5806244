"""A deposit's work is indexed for the duplicate check (issue 21) in its intent unit
also when that unit finds an open attempt (a worker died after sending) and the
deposit is reconciled rather than sent."""

from __future__ import annotations

from collections.abc import Callable

from deposit_services.entrypoints.jobs import Jobs
from deposit_services.model.entities import DepositStatus
from deposit_services.settings import load_settings
from deposit_services.store.uow import run_unit
from tests.integration.lifecycle.conftest import FS_REPO, World
from tests.integration.lifecycle.test_stranded import _stranded


def test_a_deposit_reconciled_after_its_worker_died_is_indexed(
        make_world: Callable[..., World]) -> None:
    world = make_world()
    deposit = _stranded(world, "strand-2")
    jobs = Jobs(world.ctx, load_settings({"DEPOSIT_DATA_DIR": str(world.root)}))
    assert jobs.run_retry() == 1
    assert world.deposit_of("strand-2").deposit_status is DepositStatus.ACCEPTED
    rows = run_unit(world.ctx.database, lambda uow: uow.state.sent_works(
        FS_REPO["id"], "10.1234/test.strand-2"), read_only=True)
    assert [(r.deposit_id, r.submission_id) for r in rows] == [(deposit.id, "strand-2")]
    assert rows[0].fingerprint is not None
