"""The rules that look at a submission's deposits as a whole.

One rule decides which repositories of a submission need a deposit: every one it names
except those known to be WEB_LINK (PASS makes no deposit for those). A repository that
does not exist needs one too: its deposit is FAILED with a message that says so, and
the submission cannot be ACCEPTED until that is fixed (it is never silently skipped).
The aggregated deposit status and PASS's submissionStatus are both computed from it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from deposit_services.model.entities import (
    AggregatedDepositStatus,
    Deposit,
    DepositStatus,
    IntegrationType,
    Repository,
    Submission,
)
from deposit_services.store.uow import UnitOfWork

log = logging.getLogger(__name__)


def deposit_repositories(
    submission: Submission, repositories: Mapping[str, Repository]
) -> list[str]:
    """The ids of the repositories that need a deposit (``repositories``: those that
    exist, by id), in the submission's order."""
    return [
        rid for rid in dict.fromkeys(submission.repositories)
        if rid not in repositories
        or repositories[rid].integration_type is not IntegrationType.WEB_LINK
    ]


def load_repositories(uow: UnitOfWork, submission: Submission) -> dict[str, Repository]:
    return {r.id: r for r in uow.records.get_many(Repository, submission.repositories)}


def aggregate_of(
    submission: Submission, repositories: Mapping[str, Repository], deposits: Iterable[Deposit]
) -> AggregatedDepositStatus | None:
    """The aggregated status an IN_PROGRESS submission should now have: ACCEPTED once
    every deposit it needs is ACCEPTED, REJECTED once all are terminal and one is not
    accepted; None while any is still open (or the submission is not IN_PROGRESS)."""
    if submission.aggregated_deposit_status is not AggregatedDepositStatus.IN_PROGRESS:
        return None
    targets = deposit_repositories(submission, repositories)
    by_repository = {d.repository: d for d in deposits}
    statuses = [by_repository[r].deposit_status if r in by_repository else None
                for r in targets]
    if any(s is None or not s.is_terminal for s in statuses):
        return None
    if all(s is DepositStatus.ACCEPTED for s in statuses):
        return AggregatedDepositStatus.ACCEPTED
    return AggregatedDepositStatus.REJECTED


def aggregate_for(uow: UnitOfWork, submission: Submission) -> AggregatedDepositStatus | None:
    """``aggregate_of`` on the submission's deposits as the store holds them."""
    if submission.aggregated_deposit_status is not AggregatedDepositStatus.IN_PROGRESS:
        return None
    return aggregate_of(submission, load_repositories(uow, submission),
                        uow.records.find(Deposit, submission=submission.id))


def settle_aggregate(uow: UnitOfWork, submission: Submission,
                     deposits: Iterable[Deposit] | None = None) -> bool:
    """Settle the aggregated status in this unit when ``aggregate_of`` says so; a
    terminal status is never changed. ``deposits``: the submission's deposits as this
    worker knows them (under its leases, or terminal: they cannot have moved), instead
    of reading them again. Returns whether it changed."""
    if submission.aggregated_deposit_status is not AggregatedDepositStatus.IN_PROGRESS:
        return False
    repositories = load_repositories(uow, submission)
    if deposits is None:
        deposits = uow.records.find(Deposit, submission=submission.id)
    settled = aggregate_of(submission, repositories, deposits)
    if settled is None:
        return False
    submission.aggregated_deposit_status = settled
    if not deposit_repositories(submission, repositories):
        submission.status_message = "no repository needs a deposit (WEB_LINK only)"
    log.info("submission %s: aggregatedDepositStatus %s", submission.id, settled.value)
    return True
