"""SubmissionProcessor: a SubmissionReady message turned into one Deposit per repository.

The claim is one unit of work: the submission and everything a deposit of it needs
read in one batch, the preconditions checked as PASS does (submitted, source PASS, not
yet finished), NOT_STARTED -> IN_PROGRESS by compare-and-set (two workers cannot both
claim it), and the Deposits it lacks created. Then each deposit runs in two more units
(intent, outcome: ``DepositTask``): 1 + 2R transactions for R repositories.

Processing is re-entrant: a redelivered message for an IN_PROGRESS submission (its
worker died) resumes it; each Deposit is created at most once (unique per submission
and repository) and run under its lease, so it never runs twice at the same time.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field

from deposit_services.clock import Clock
from deposit_services.errors import ModelError
from deposit_services.model.builder import build_deposit_submission
from deposit_services.model.entities import (
    AggregatedDepositStatus,
    Deposit,
    DepositStatus,
    Repository,
    Source,
    Submission,
)
from deposit_services.model.graph import Graph
from deposit_services.model.messages import SubmissionReady
from deposit_services.model.submission import DepositSubmission
from deposit_services.service.aggregate import deposit_repositories, settle_aggregate
from deposit_services.service.context import ServiceContext
from deposit_services.service.deposits import DepositTask, Work
from deposit_services.service.outcome import TRIGGER_MESSAGE, announce, deposit_lease
from deposit_services.store.uow import UnitOfWork, run_unit

log = logging.getLogger(__name__)


@dataclass
class Claim:
    """What the claim unit read and created: every deposit the submission needs, and
    those still to run. ``fresh``: this unit made the claim (NOT_STARTED -> IN_PROGRESS);
    otherwise it resumes one made before."""

    submission: Submission
    content: DepositSubmission | None = None
    fresh: bool = False
    deposits: list[Deposit] = field(default_factory=list)
    work: list[Work] = field(default_factory=list)


def not_attempted(deposit: Deposit, clock: Clock) -> str | None:
    """A SubmissionReady runs only deposits never attempted: RETRY and FAILED ones are
    the retry job's and the operator's."""
    if deposit.deposit_status is None:
        return None
    return f"already {deposit.deposit_status.value}"


def missing_repository(repository_id: str, deposit_id: str) -> str:
    return (f"repository {repository_id} does not exist in the system of record; add it "
            f"(with a repositories.json entry) or correct the submission, then run "
            f"`deposit-services retry --uri {deposit_id}`")


class SubmissionProcessor:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.task = DepositTask(ctx)

    def process(self, submission_id: str, *, redelivered: bool = True) -> None:
        """Handle SubmissionReady. NotFound propagates (the message is dead-lettered).

        ``redelivered``: the broker delivers it again (its worker died): deposits whose
        lease another worker holds are waited for, since a dead worker's lease runs
        out. A first delivery for a submission already in progress (pass-core echoes the
        claim; a producer announced it twice) leaves them to the worker holding them."""
        memory = self.ctx.memory
        known = memory.knows("Submission", submission_id)
        if known is not None:
            log.debug("submission %s: %s; the message changes nothing", submission_id, known)
            return
        runs = 0

        def claim(uow: UnitOfWork) -> Claim | None:
            nonlocal runs
            runs += 1
            return self.claim(uow, submission_id, wait=redelivered, lost_race=runs > 1)

        memory.busy("Submission", submission_id, True)
        try:
            found = run_unit(self.ctx.database, claim, what=f"submission {submission_id} claim")
            if found is not None:
                # logged once committed: a run that lost the compare-and-set (another
                # worker claimed it first) or died before its commit claimed nothing
                log.info("submission %s %s", submission_id,
                         "claimed" if found.fresh else "resumed")
                self._run(found)
        finally:
            memory.busy("Submission", submission_id, False)

    def _run(self, claim: Claim) -> None:
        memory = self.ctx.memory
        for work in claim.work:
            memory.busy("Deposit", work.deposit.id, True)
        try:
            for work in claim.work:
                intent = self.task.run(work, TRIGGER_MESSAGE, not_attempted, wait=work.wait)
                if intent.skipped is not None:
                    log.info("deposit %s not run: %s", work.deposit.id, intent.skipped)
        finally:
            for work in claim.work:
                memory.busy("Deposit", work.deposit.id, False)

    def claim(self, uow: UnitOfWork, submission_id: str, *, wait: bool = True,
              lost_race: bool = False) -> Claim | None:
        """The claim unit (see the module doc); None when there is nothing to do. The
        deposits to run are leased here, in the claim's own transaction, so no other
        worker can take one between the claim and its transfer."""
        graph = Graph(tuple(uow.records.submission_graph(submission_id)))
        submission = uow.records.get(Submission, submission_id)
        reason = not_ready_reason(submission)
        if reason is not None:
            log.info("submission %s ignored: %s", submission_id, reason)
            return None
        status = submission.aggregated_deposit_status
        fresh = status in (None, AggregatedDepositStatus.NOT_STARTED)
        if fresh:
            submission.aggregated_deposit_status = AggregatedDepositStatus.IN_PROGRESS
            uow.records.write_first(submission)  # the claim, before any deposit exists
            # its announcement is taken up: out of the outbox with the claim (so submit
            # needs no transaction of its own to clean up after publishing it)
            uow.state.discard_messages(SubmissionReady(submission_id).to_json())
        try:
            content = build_deposit_submission(submission, graph)
        except ModelError as exc:
            fail_submission(submission, f"submission metadata is unusable: {exc}")
            return None
        if not content.files:
            fail_submission(
                submission, "submission has no files; add at least a manuscript and resubmit")
            return None
        repositories = {r.id: r for r in uow.records.get_many(Repository,
                                                                submission.repositories)}
        # A fresh claim has no deposits yet (unless another worker won the claim: then
        # this unit lost its race and runs again, and looks)
        existing = ({} if fresh and not lost_race else
                    {d.repository: d for d in uow.records.find(Deposit,
                                                               submission=submission_id)})
        claim = Claim(submission, content, fresh=fresh)
        for repository_id in deposit_repositories(submission, repositories):
            deposit = existing.get(repository_id)
            if deposit is None:
                deposit = uow.records.add(Deposit(id=uuid.uuid4().hex, submission=submission_id,
                                                  repository=repository_id))
            claim.deposits.append(deposit)
            repository = repositories.get(repository_id)
            if repository is None:
                if deposit.deposit_status is None:
                    log.error("submission %s names repository %s, which does not exist",
                              submission_id, repository_id)
                    deposit.deposit_status = DepositStatus.FAILED
                    deposit.status_message = missing_repository(repository_id, deposit.id)
                    announce(uow, self.ctx, deposit)
                continue
            if deposit.deposit_status is not None:
                continue
            if uow.state.acquire_lease(deposit_lease(deposit.id), self.ctx.owner,
                                       self.ctx.lease_seconds):
                claim.work.append(Work(deposit, submission, content, repository,
                                       siblings=claim.deposits, leased=True,
                                       repositories=list(repositories.values()),
                                       leased_at=self.ctx.clock.monotonic()))
            elif wait:
                claim.work.append(Work(deposit, submission, content, repository,
                                       siblings=claim.deposits, wait=True,
                                       repositories=list(repositories.values())))
            else:
                log.info("deposit %s is being worked on by another worker; left to it",
                         deposit.id)
        settle_aggregate(uow, submission, claim.deposits if fresh else None)
        return claim


def not_ready_reason(submission: Submission) -> str | None:
    if not submission.submitted:
        return "not submitted (submitted=false)"
    if submission.source not in (None, Source.PASS):
        return f"source is {submission.source}, not PASS"
    status = submission.aggregated_deposit_status
    if status is not None and status.is_terminal:
        return f"aggregatedDepositStatus is already {status.value}"
    return None


def fail_submission(submission: Submission, message: str) -> None:
    """The submission cannot be deposited at all: FAILED, with the reason."""
    log.warning("submission %s FAILED: %s", submission.id, message)
    submission.aggregated_deposit_status = AggregatedDepositStatus.FAILED
    submission.status_message = message

