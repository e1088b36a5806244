"""Submission.submissionStatus recomputed from its deposits and copies, as PASS does.

PASS's rule (SubmissionStatusCalculator, post-submission): any REJECTED deposit or a
REJECTED / STALLED RepositoryCopy -> NEEDS_ATTENTION; every repository that needs a
deposit (``aggregate.deposit_repositories``) has a COMPLETE copy -> COMPLETE; else
SUBMITTED. Only submissions already past submission (SUBMITTED, NEEDS_ATTENTION) are
recomputed, and written only when the value changes: one read unit finds them, one
write unit (only if any changed) writes them.
"""

from __future__ import annotations

import logging

from deposit_services.model.entities import (
    CopyStatus,
    Deposit,
    DepositStatus,
    RepositoryCopy,
    Submission,
    SubmissionStatus,
)
from deposit_services.service.aggregate import deposit_repositories, load_repositories
from deposit_services.store.uow import Database, UnitOfWork, run_unit

log = logging.getLogger(__name__)

RECOMPUTED = (SubmissionStatus.SUBMITTED, SubmissionStatus.NEEDS_ATTENTION)
_TROUBLE = (CopyStatus.REJECTED, CopyStatus.STALLED)


def calculate(
    repositories: list[str], deposits: list[Deposit], copies: list[RepositoryCopy]
) -> SubmissionStatus:
    """The post-submission status of a submission (pure: PASS's calculation)."""
    if any(d.deposit_status is DepositStatus.REJECTED for d in deposits):
        return SubmissionStatus.NEEDS_ATTENTION
    if any(c.copy_status in _TROUBLE for c in copies):
        return SubmissionStatus.NEEDS_ATTENTION
    complete = {c.repository for c in copies if c.copy_status is CopyStatus.COMPLETE}
    if repositories and all(r in complete for r in repositories):
        return SubmissionStatus.COMPLETE
    return SubmissionStatus.SUBMITTED


def wanted_status(uow: UnitOfWork, submission: Submission) -> SubmissionStatus | None:
    """The status ``submission`` should have, or None when it is not recomputed."""
    if submission.submission_status not in RECOMPUTED:
        return None
    deposits = uow.records.find(Deposit, submission=submission.id)
    copies = {c.id: c for c in uow.records.get_many(
        RepositoryCopy, [d.repository_copy for d in deposits if d.repository_copy])}
    if submission.publication:  # copies of the publication made by others count too
        for copy in uow.records.find(RepositoryCopy, publication=submission.publication):
            copies.setdefault(copy.id, copy)
    targets = deposit_repositories(submission, load_repositories(uow, submission))
    return calculate(targets, deposits, list(copies.values()))


def status_changes(uow: UnitOfWork, ids: list[str] | None) -> list[str]:
    """The ids (of ``ids``, or of every post-submission submission) whose status moves;
    in a write unit the new status is set on them."""
    if ids is None:
        submissions = [s for status in RECOMPUTED
                       for s in uow.records.find(Submission, submission_status=status)]
    else:
        submissions = uow.records.get_many(Submission, ids)
    moved = []
    for submission in submissions:
        wanted = wanted_status(uow, submission)
        if wanted is not None and wanted is not submission.submission_status:
            moved.append(submission.id)
            if not uow.read_only:
                submission.submission_status = wanted
                log.info("submission %s: submissionStatus %s", submission.id, wanted.value)
    return moved


def recompute(database: Database, ids: list[str] | None = None) -> int:
    """Recompute ``ids`` (default: every post-submission submission); returns how many
    changed."""
    moved = run_unit(database, lambda uow: status_changes(uow, ids), read_only=True)
    if not moved:
        return 0
    return len(run_unit(database, lambda uow: status_changes(uow, moved),
                        what="submission status"))
