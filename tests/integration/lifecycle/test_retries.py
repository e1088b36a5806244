"""Transient faults retried with backoff, permanent ones failed at once, all logged."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime

from deposit_services.entrypoints.jobs import Jobs
from deposit_services.model.entities import (
    AggregatedDepositStatus,
    CopyStatus,
    DepositStatus,
    RepositoryCopy,
    Submission,
)
from deposit_services.service.lifecycle import DepositProcessor
from deposit_services.service.outcome import TRIGGER_OPERATOR
from deposit_services.service.retry import RetryPolicy
from deposit_services.service.submissions import SubmissionProcessor
from deposit_services.settings import load_settings
from deposit_services.store.base import AttemptOutcome
from tests.integration.lifecycle.conftest import SWORD_REPO, World


def _jobs(world: World) -> Jobs:
    return Jobs(world.ctx, load_settings({"DEPOSIT_DATA_DIR": str(world.root)}))


def _retry_until_settled(world: World, sid: str, jobs: Jobs, limit: float = 20) -> None:
    deadline = time.monotonic() + limit
    while world.deposit_of(sid).deposit_status is DepositStatus.RETRY:
        assert time.monotonic() < deadline, "still RETRY"
        jobs.run_retry()
        time.sleep(0.02)


def test_503_three_times_then_accepted_four_attempts_one_package(
    make_world: Callable[..., World],
) -> None:
    world = make_world(**{"check-collection": False})
    world.seed("r503", [SWORD_REPO])
    world.server.fail_next(3, status=503)
    SubmissionProcessor(world.ctx).process("r503")
    deposit = world.deposit_of("r503")
    assert deposit.deposit_status is DepositStatus.RETRY
    message = deposit.status_message or ""
    assert "503" in message and "attempt 1 of 8" in message
    assert deposit.next_attempt_at is not None and deposit.repository_copy is None

    _retry_until_settled(world, "r503", _jobs(world))
    deposit = world.deposit_of("r503")
    assert deposit.deposit_status is DepositStatus.SUBMITTED, deposit.status_message
    assert deposit.next_attempt_at is None
    attempts = world.store.attempts(deposit.id)
    assert [a.number for a in attempts] == [1, 2, 3, 4]
    assert [a.outcome for a in attempts] == [AttemptOutcome.TRANSIENT_ERROR] * 3 + [
        AttemptOutcome.SENT]
    assert all("503" in (a.error or "") for a in attempts[:3])
    assert attempts[3].edit_iri and attempts[3].status_ref == deposit.deposit_status_ref
    assert len({a.package.name for a in attempts if a.package}) == 1, "same package each time"
    for before, after in itertools.pairwise(attempts):
        assert before.ended_at is not None and before.ended_at <= after.started_at
    assert len(world.server.deposits) == 1, "no duplicate at the target"
    posts = [r for r in world.server.requests if r.method == "POST"]
    assert [r.status for r in posts] == [503, 503, 503, 201]

    (remote,) = world.server.deposits
    world.server.set_state(remote, "archived")
    DepositProcessor(world.ctx).process(deposit.id)
    assert world.deposit_of("r503").deposit_status is DepositStatus.ACCEPTED
    copy = world.store.get(RepositoryCopy, world.deposit_of("r503").repository_copy or "")
    assert copy.copy_status is CopyStatus.COMPLETE
    assert world.store.get(Submission, "r503").aggregated_deposit_status \
        is AggregatedDepositStatus.ACCEPTED


def test_backoff_is_respected_and_attempts_run_out_into_failed(
    make_world: Callable[..., World],
) -> None:
    policy = RetryPolicy(base_seconds=0.3, factor=1, cap_seconds=0.3, max_attempts=3,
                         jitter="none")
    world = make_world(policy, **{"check-collection": False})
    world.seed("rgive", [SWORD_REPO])
    world.server.fail_next(10, status=503)
    SubmissionProcessor(world.ctx).process("rgive")
    jobs = _jobs(world)
    assert jobs.run_retry() == 0, "not due yet"
    _retry_until_settled(world, "rgive", jobs)
    deposit = world.deposit_of("rgive")
    assert deposit.deposit_status is DepositStatus.FAILED
    message = deposit.status_message or ""
    assert "gave up after 3 attempts" in message and "503" in message
    assert f"retry --uri {deposit.id}" in message, "says what to do"
    attempts = world.store.attempts(deposit.id)
    assert len(attempts) == 3
    for before, after in itertools.pairwise(attempts):
        gap = (after.started_at - (before.ended_at or after.started_at)).total_seconds()
        assert gap >= 0.25, f"retried after {gap:.3f}s, backoff is 0.3s"
    assert world.server.deposits == {}

    # the operator's retry starts a fresh budget and succeeds once the server is back
    world.server.app._faults.clear()
    outcome = DepositProcessor(world.ctx).retry(deposit.id, TRIGGER_OPERATOR, due_only=False)
    assert outcome.ok and outcome.status == "SUBMITTED"
    attempts = world.store.attempts(deposit.id)
    assert attempts[-1].trigger == TRIGGER_OPERATOR and attempts[-1].outcome \
        is AttemptOutcome.SENT


def test_permanent_fault_fails_at_once_with_the_reason(
    make_world: Callable[..., World],
) -> None:
    world = make_world(**{"check-collection": False, "password": "wrong"})
    world.seed("rperm", [SWORD_REPO])
    SubmissionProcessor(world.ctx).process("rperm")
    deposit = world.deposit_of("rperm")
    assert deposit.deposit_status is DepositStatus.FAILED
    assert "401" in (deposit.status_message or "")
    assert f"retry --uri {deposit.id}" in (deposit.status_message or "")
    (attempt,) = world.store.attempts(deposit.id)
    assert attempt.outcome is AttemptOutcome.PERMANENT_ERROR and attempt.ended_at is not None
    assert _jobs(world).run_retry() == 0, "FAILED deposits are not retried by the job"


def test_retry_job_skips_deposits_not_yet_due(make_world: Callable[..., World]) -> None:
    world = make_world(RetryPolicy(base_seconds=3600, jitter="none"),
                       **{"check-collection": False})
    world.seed("rlater", [SWORD_REPO])
    world.server.fail_next(1, status=503)
    SubmissionProcessor(world.ctx).process("rlater")
    deposit = world.deposit_of("rlater")
    assert deposit.next_attempt_at is not None
    assert (deposit.next_attempt_at - datetime.now(UTC)).total_seconds() > 3500
    assert _jobs(world).run_retry() == 0
    assert len(world.store.attempts(deposit.id)) == 1
