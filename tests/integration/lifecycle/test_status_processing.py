"""Deposits followed through the SWORD test server's states, by messages and by the job."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from deposit_services.entrypoints.jobs import Jobs
from deposit_services.model.entities import (
    AggregatedDepositStatus,
    CopyStatus,
    DepositStatus,
    RepositoryCopy,
    Submission,
    SubmissionStatus,
)
from deposit_services.service.lifecycle import DepositProcessor
from deposit_services.service.submissions import SubmissionProcessor
from deposit_services.settings import load_settings
from tests.integration.lifecycle.conftest import SWORD_REPO, World


def _submitted(world: World, sid: str) -> str:
    """Submit ``sid`` to the SWORD repository; returns the server's id of the deposit."""
    before = set(world.server.deposits)
    world.seed(sid, [SWORD_REPO])
    SubmissionProcessor(world.ctx).process(sid)
    deposit = world.deposit_of(sid)
    assert deposit.deposit_status is DepositStatus.SUBMITTED, deposit.status_message
    assert deposit.deposit_status_ref and "/statement/" in deposit.deposit_status_ref
    copy = world.store.get(RepositoryCopy, deposit.repository_copy or "")
    assert copy.copy_status is CopyStatus.IN_PROGRESS
    (remote,) = [k for k in world.server.deposits if k not in before]
    return remote


def _copy(world: World, sid: str) -> RepositoryCopy:
    return world.store.get(RepositoryCopy, world.deposit_of(sid).repository_copy or "")


def test_archived_by_message_accepts_deposit_copy_and_submission(
    make_world: Callable[..., World],
) -> None:
    world = make_world()
    remote = _submitted(world, "life-arch")
    processor = DepositProcessor(world.ctx)
    deposit_id = world.deposit_of("life-arch").id

    processor.process(deposit_id)  # still inprogress: nothing moves
    assert world.deposit_of("life-arch").deposit_status is DepositStatus.SUBMITTED
    assert world.store.get(Submission, "life-arch").aggregated_deposit_status \
        is AggregatedDepositStatus.IN_PROGRESS

    world.server.set_state(remote, "archived")
    processor.process(deposit_id)
    deposit = world.deposit_of("life-arch")
    assert deposit.deposit_status is DepositStatus.ACCEPTED
    assert "archived" in (deposit.status_message or "")
    assert _copy(world, "life-arch").copy_status is CopyStatus.COMPLETE
    assert world.store.get(Submission, "life-arch").aggregated_deposit_status \
        is AggregatedDepositStatus.ACCEPTED

    # a late message after the server changes its mind moves nothing back
    version = deposit.version
    world.server.set_state(remote, "withdrawn")
    processor.process(deposit_id)
    processor.process(deposit_id)
    again = world.deposit_of("life-arch")
    assert again.deposit_status is DepositStatus.ACCEPTED and again.version == version
    assert _copy(world, "life-arch").copy_status is CopyStatus.COMPLETE


def test_withdrawn_by_message_rejects_deposit_copy_and_submission(
    make_world: Callable[..., World],
) -> None:
    world = make_world()
    remote = _submitted(world, "life-wd")
    world.server.set_state(remote, "withdrawn")
    DepositProcessor(world.ctx).process(world.deposit_of("life-wd").id)
    deposit = world.deposit_of("life-wd")
    assert deposit.deposit_status is DepositStatus.REJECTED
    assert _copy(world, "life-wd").copy_status is CopyStatus.REJECTED
    assert world.store.get(Submission, "life-wd").aggregated_deposit_status \
        is AggregatedDepositStatus.REJECTED


def test_refresh_job_follows_both_and_recomputes_submission_status(
    make_world: Callable[..., World],
) -> None:
    world = make_world()
    arch = _submitted(world, "job-arch")
    wd = _submitted(world, "job-wd")
    settings = load_settings({"DEPOSIT_DATA_DIR": str(world.root),
                              "DEPOSIT_REFRESH_WINDOW_DAYS": "36500"})
    jobs = Jobs(world.ctx, settings)
    assert jobs.run_refresh() == 0, "nothing changed at the server yet"

    world.server.set_state(wd, "withdrawn")
    assert jobs.run_refresh() == 1
    assert world.deposit_of("job-wd").deposit_status is DepositStatus.REJECTED
    assert _copy(world, "job-wd").copy_status is CopyStatus.REJECTED
    assert world.store.get(Submission, "job-wd").aggregated_deposit_status \
        is AggregatedDepositStatus.REJECTED
    assert world.deposit_of("job-arch").deposit_status is DepositStatus.SUBMITTED

    world.server.set_state(arch, "archived")
    assert jobs.run_refresh() == 1
    assert world.deposit_of("job-arch").deposit_status is DepositStatus.ACCEPTED
    assert _copy(world, "job-arch").copy_status is CopyStatus.COMPLETE
    assert world.store.get(Submission, "job-arch").aggregated_deposit_status \
        is AggregatedDepositStatus.ACCEPTED

    assert jobs.run_submission_status() == 2
    assert world.store.get(Submission, "job-wd").submission_status \
        is SubmissionStatus.NEEDS_ATTENTION
    assert world.store.get(Submission, "job-arch").submission_status \
        is SubmissionStatus.COMPLETE
    assert jobs.run_submission_status() == 0, "written only on change"


def test_refresh_job_leaves_deposits_outside_its_window(
    make_world: Callable[..., World],
) -> None:
    world = make_world()
    remote = _submitted(world, "old-sub")  # submittedDate 2026-11-01 in the test graph
    world.server.set_state(remote, "archived")
    sub = world.store.get(Submission, "old-sub")
    age = datetime.now(UTC) - (sub.submitted_date or datetime.now(UTC))
    narrow = max(age.days - 1, 0) + 0.5  # a window that ends after the submission date
    settings = load_settings({"DEPOSIT_DATA_DIR": str(world.root),
                              "DEPOSIT_REFRESH_WINDOW_DAYS": str(narrow)})
    assert Jobs(world.ctx, settings).run_refresh() == 0
    assert world.deposit_of("old-sub").deposit_status is DepositStatus.SUBMITTED
    wide = load_settings({"DEPOSIT_DATA_DIR": str(world.root),
                          "DEPOSIT_REFRESH_WINDOW_DAYS": str(age.days + 2)})
    assert Jobs(world.ctx, wide).run_refresh() == 1
    assert world.deposit_of("old-sub").deposit_status is DepositStatus.ACCEPTED


def test_status_document_faults_leave_the_deposit_submitted_with_a_reason(
    make_world: Callable[..., World],
) -> None:
    world = make_world()
    _submitted(world, "fault-sub")
    processor = DepositProcessor(world.ctx)
    deposit_id = world.deposit_of("fault-sub").id
    world.server.fail_next(1, status=503)
    outcome = processor.refresh(deposit_id)
    assert not outcome.ok and "503" in outcome.message
    assert world.deposit_of("fault-sub").deposit_status is DepositStatus.SUBMITTED
    world.server.fail_next(1, status=404)
    outcome = processor.refresh(deposit_id)
    deposit = world.deposit_of("fault-sub")
    assert deposit.deposit_status is DepositStatus.SUBMITTED
    assert "404" in (deposit.status_message or ""), "a permanent fault is shown to the operator"
    outcome = processor.refresh(deposit_id)  # the repository answers again
    assert outcome.ok
    message = world.deposit_of("fault-sub").status_message or ""
    assert "404" not in message and "in progress" in message, "the old failure is replaced"


def test_duplicate_messages_at_once_move_the_deposit_once(
    make_world: Callable[..., World],
) -> None:
    world = make_world()
    remote = _submitted(world, "dup-msg")
    deposit = world.deposit_of("dup-msg")
    world.server.set_state(remote, "archived")
    world.notified.clear()
    contexts = [replace(world.ctx, owner=f"replica-{n}") for n in range(4)]
    start = threading.Barrier(len(contexts))

    def handle(n: int) -> None:
        start.wait()
        DepositProcessor(contexts[n]).process(deposit.id)

    threads = [threading.Thread(target=handle, args=(n,)) for n in range(len(contexts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    after = world.deposit_of("dup-msg")
    assert after.deposit_status is DepositStatus.ACCEPTED
    assert after.version == deposit.version + 1, "written once"
    assert world.notified == [deposit.id], "announced once"
    copy = _copy(world, "dup-msg")
    assert copy.copy_status is CopyStatus.COMPLETE and copy.version == 2
