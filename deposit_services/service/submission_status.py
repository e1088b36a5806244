"""Submission.submissionStatus recomputed from its deposits and copies, as PASS does.

PASS's rule (SubmissionStatusCalculator, post-submission): any REJECTED deposit or a
REJECTED / STALLED RepositoryCopy -> NEEDS_ATTENTION; every repository has a COMPLETE
copy -> COMPLETE; else SUBMITTED. WEB_LINK repositories get no deposit or copy from us,
so they are left out of "every repository". Only submissions already past submission
(SUBMITTED, NEEDS_ATTENTION) are recomputed, and written only when the value changes.
"""

from __future__ import annotations

import logging

from deposit_services.errors import NotFound
from deposit_services.model.entities import (
    CopyStatus,
    Deposit,
    DepositStatus,
    IntegrationType,
    Repository,
    RepositoryCopy,
    Submission,
    SubmissionStatus,
)
from deposit_services.service.cas import update_with_retry
from deposit_services.store.base import Store

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


def _copies(store: Store, submission: Submission, deposits: list[Deposit]) -> list[RepositoryCopy]:
    """The submission's copies: those its deposits made and those of its publication."""
    found: dict[str, RepositoryCopy] = {}
    for deposit in deposits:
        if deposit.repository_copy:
            try:
                found[deposit.repository_copy] = store.get(RepositoryCopy, deposit.repository_copy)
            except NotFound:
                log.warning("deposit %s names a missing RepositoryCopy %s", deposit.id,
                            deposit.repository_copy)
    if submission.publication:
        for copy in store.find(RepositoryCopy, publication=submission.publication):
            found.setdefault(copy.id, copy)
    return list(found.values())


def _deposit_targets(store: Store, submission: Submission) -> list[str]:
    targets = []
    for repository_id in submission.repositories:
        try:
            repository = store.get(Repository, repository_id)
        except NotFound:
            targets.append(repository_id)  # counts as never complete
            continue
        if repository.integration_type is not IntegrationType.WEB_LINK:
            targets.append(repository_id)
    return targets


def recompute(store: Store, submission_id: str) -> tuple[Submission, bool]:
    """Recompute and store one submission's submissionStatus; returns it and whether it
    changed. Submissions not in a post-submission status are left alone."""
    submission = store.get(Submission, submission_id)
    if submission.submission_status not in RECOMPUTED:
        return submission, False
    deposits = store.find(Deposit, submission=submission_id)
    wanted = calculate(_deposit_targets(store, submission), deposits,
                       _copies(store, submission, deposits))

    def change(sub: Submission) -> bool:
        if sub.submission_status not in RECOMPUTED or sub.submission_status is wanted:
            return False
        sub.submission_status = wanted
        return True

    saved, changed = update_with_retry(store, Submission, submission_id, change)
    if changed:
        log.info("submission %s: submissionStatus %s", submission_id, wanted.value)
    return saved, changed


def recompute_all(store: Store) -> int:
    """Recompute every post-submission submission; returns how many changed."""
    changed = 0
    for status in RECOMPUTED:
        for submission in store.find(Submission, submission_status=status):
            if recompute(store, submission.id)[1]:
                changed += 1
    return changed
