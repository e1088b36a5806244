"""SubmissionProcessor: a SubmissionReady message turned into one Deposit per repository.

Preconditions as in PASS (submitted, source PASS, not yet finished). The claim
NOT_STARTED -> IN_PROGRESS is a compare-and-set, so two workers cannot both claim a
submission. Processing is re-entrant: a redelivered message for an IN_PROGRESS
submission (its worker died) resumes it, and each Deposit is created at most once
(unique per submission and repository) and worked on under a lease, so a deposit is
never run twice at the same time.
"""

from __future__ import annotations

import logging
import time
import uuid

from deposit_services.errors import AlreadyExists, ModelError, NotFound
from deposit_services.model.builder import build_deposit_submission
from deposit_services.model.entities import (
    AggregatedDepositStatus,
    Deposit,
    DepositStatus,
    IntegrationType,
    Repository,
    Source,
    Submission,
)
from deposit_services.service.cas import update_with_retry
from deposit_services.service.deposits import DepositTask, ServiceContext, deposit_lease

log = logging.getLogger(__name__)


class SubmissionProcessor:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.task = DepositTask(ctx)

    def process(self, submission_id: str) -> None:
        """Handle SubmissionReady. NotFound propagates (the message is dead-lettered)."""
        store = self.ctx.store
        not_ready: str | None = None

        def claim(sub: Submission) -> bool:
            nonlocal not_ready  # checked on the read the claim is made from: one read
            not_ready = _not_ready_reason(sub)
            if not_ready is None and sub.aggregated_deposit_status in (
                None, AggregatedDepositStatus.NOT_STARTED
            ):
                sub.aggregated_deposit_status = AggregatedDepositStatus.IN_PROGRESS
                return True
            return False

        submission, claimed = update_with_retry(store, Submission, submission_id, claim)
        if not_ready is not None:
            log.info("submission %s ignored: %s", submission_id, not_ready)
            return
        if submission.aggregated_deposit_status is not AggregatedDepositStatus.IN_PROGRESS:
            log.info("submission %s is %s; nothing to do", submission_id,
                     submission.aggregated_deposit_status)
            return
        log.info("submission %s %s", submission_id, "claimed" if claimed else "resumed")

        try:
            content = build_deposit_submission(submission, store)
        except ModelError as exc:
            self._fail_submission(submission_id, f"submission metadata is unusable: {exc}")
            return
        if not content.files:
            self._fail_submission(
                submission_id, "submission has no files; add at least a manuscript and resubmit"
            )
            return

        for repository_id in submission.repositories:
            try:
                repository = store.get(Repository, repository_id)
            except NotFound:
                log.error("submission %s names repository %s, which does not exist; skipped",
                          submission_id, repository_id)
                continue
            if repository.integration_type is IntegrationType.WEB_LINK:
                log.info("submission %s: repository %s is WEB_LINK; no deposit", submission_id,
                         repository.repository_key or repository.id)
                continue
            deposit = self._deposit_for(submission, repository)
            if deposit.deposit_status is not None:
                continue  # already attempted; RETRY/FAILED are for the retry job and operator
            lease = deposit_lease(deposit.id)
            if not self._wait_for_lease(lease):
                log.info("deposit %s is being worked on by another worker", deposit.id)
                continue
            try:
                deposit = store.get(Deposit, deposit.id)
                if deposit.deposit_status is None:
                    self.task.run(deposit, submission, content, repository)
            finally:
                store.release_lease(lease, self.ctx.owner)
        update_aggregate(self.ctx, submission_id)

    def _wait_for_lease(self, lease: str) -> bool:
        """The deposit's lease, waiting up to 1.5 lease periods for it: a live holder
        keeps renewing it (and finishes the deposit and the aggregate itself: False);
        a dead one's runs out, and this (redelivered) message resumes the deposit."""
        store = self.ctx.store
        deadline = time.monotonic() + self.ctx.lease_seconds * 1.5
        while not store.acquire_lease(lease, self.ctx.owner, self.ctx.lease_seconds):
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(self.ctx.lease_seconds / 6, 1.0))
        return True

    def _deposit_for(self, submission: Submission, repository: Repository) -> Deposit:
        store = self.ctx.store
        existing = store.deposit_for(submission.id, repository.id)
        if existing is not None:
            return existing
        try:
            return store.add(Deposit(
                id=uuid.uuid4().hex, submission=submission.id, repository=repository.id
            ))
        except AlreadyExists:
            found = store.deposit_for(submission.id, repository.id)
            if found is None:
                raise
            return found

    def _fail_submission(self, submission_id: str, message: str) -> None:
        log.warning("submission %s FAILED: %s", submission_id, message)

        def fail(sub: Submission) -> bool:
            if sub.aggregated_deposit_status is not AggregatedDepositStatus.IN_PROGRESS:
                return False
            sub.aggregated_deposit_status = AggregatedDepositStatus.FAILED
            sub.status_message = message
            return True

        update_with_retry(self.ctx.store, Submission, submission_id, fail)


def _not_ready_reason(submission: Submission) -> str | None:
    if not submission.submitted:
        return "not submitted (submitted=false)"
    if submission.source not in (None, Source.PASS):
        return f"source is {submission.source}, not PASS"
    status = submission.aggregated_deposit_status
    if status is not None and status.is_terminal:
        return f"aggregatedDepositStatus is already {status.value}"
    return None


def update_aggregate(ctx: ServiceContext, submission_id: str) -> Submission:
    """Once every deposit of the submission is terminal, settle its aggregated status:
    ACCEPTED if all were accepted, else REJECTED. A terminal status is never changed."""
    store = ctx.store

    def settle(sub: Submission) -> bool:
        if sub.aggregated_deposit_status is not AggregatedDepositStatus.IN_PROGRESS:
            return False
        targets = []
        for repository_id in sub.repositories:
            try:
                repository = store.get(Repository, repository_id)
            except NotFound:
                return False
            if repository.integration_type is not IntegrationType.WEB_LINK:
                targets.append(repository_id)
        deposits = {d.repository: d for d in store.find(Deposit, submission=sub.id)}
        statuses = [deposits[r].deposit_status if r in deposits else None for r in targets]
        if any(s is None or not s.is_terminal for s in statuses):
            return False
        accepted = all(s is DepositStatus.ACCEPTED for s in statuses)
        sub.aggregated_deposit_status = (
            AggregatedDepositStatus.ACCEPTED if accepted else AggregatedDepositStatus.REJECTED
        )
        if not targets:
            sub.status_message = "no repository needs a deposit (WEB_LINK only)"
        return True

    submission, changed = update_with_retry(store, Submission, submission_id, settle)
    if changed:
        log.info("submission %s: aggregatedDepositStatus %s", submission_id,
                 submission.aggregated_deposit_status)
    return submission
