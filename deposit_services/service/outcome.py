"""What a deposit's run records: who started an attempt (kept in the attempt log, and
the retry budget counted from it), the deposit's lease, a status change and its
announcement, and the outcome unit (DepositTask's second): the attempt ended, or left
open when its outcome cannot be known, the Deposit RETRY or FAILED with what to do, or
SUBMITTED / ACCEPTED with its RepositoryCopy and the submission settled, the
DepositStatus message in the outbox, the lease given back.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from deposit_services.config.repositories import RepositoryConfig
from deposit_services.errors import DepositError, OutcomeUnknown, Transient
from deposit_services.model.entities import (
    CopyStatus,
    Deposit,
    DepositStatus,
    RepositoryCopy,
    Submission,
)
from deposit_services.model.messages import DepositStatusChanged
from deposit_services.service.aggregate import settle_aggregate
from deposit_services.service.context import ServiceContext
from deposit_services.service.health import note_outcome
from deposit_services.store.base import Attempt, AttemptOutcome
from deposit_services.store.uow import UnitOfWork, get_or_none, run_unit
from deposit_services.transports.base import Receipt

if TYPE_CHECKING:
    from deposit_services.service.deposits import Intent, Work

log = logging.getLogger(__name__)

# Who started an attempt (kept in the attempt log). An operator's retry starts a fresh
# retry budget: attempts are counted from the last one an operator asked for.
TRIGGER_MESSAGE = "message"
TRIGGER_JOB = "job"
TRIGGER_OPERATOR = "operator"
# The operator's ``retry --force``: as TRIGGER_OPERATOR, and a duplicate is sent anyway.
TRIGGER_FORCE = "operator-force"


def deposit_lease(deposit_id: str) -> str:
    return f"deposit:{deposit_id}"


def retry_hint(deposit_id: str) -> str:
    return f"fix the cause, then run `deposit-services retry --uri {deposit_id}`"


def budget_used(attempts: list[Attempt]) -> int:
    """Attempts counted against the retry budget: since the last operator retry."""
    start = 0
    for index, attempt in enumerate(attempts):
        if attempt.trigger in (TRIGGER_OPERATOR, TRIGGER_FORCE):
            start = index
    return len(attempts) - start


def announce(uow: UnitOfWork, ctx: ServiceContext, deposit: Deposit) -> None:
    """Every change of a Deposit is announced as pass-core does (DepositStatus), from
    the outbox of the unit that made it; behind pass-core, pass-core announces it
    itself (``deposit_queue`` None)."""
    if ctx.deposit_queue is not None:
        uow.publish(ctx.deposit_queue, DepositStatusChanged(deposit.id).to_json(),
                    {"type": "DepositStatus"})


def set_status(deposit: Deposit, status: DepositStatus, message: str,
               when: datetime | None) -> bool:
    """RETRY or FAILED, unless the deposit is already terminal; True if it changed."""
    if deposit.deposit_status is not None and deposit.deposit_status.is_terminal:
        return False
    deposit.deposit_status = status
    deposit.status_message = message
    deposit.next_attempt_at = when
    return True


def record_failure(
    ctx: ServiceContext,
    work: Work,
    intent: Intent,
    exc: Exception,
    message: str | None = None,
    end_attempt: bool = True,
    config: RepositoryConfig | None = None,
) -> Deposit:
    """RETRY or FAILED, with the attempt ended (unless it stays open to be checked
    again: ``end_attempt`` False, or an ``OutcomeUnknown``), the message in the outbox,
    the lease given back."""
    deposit_id = work.deposit.id
    transient = isinstance(exc, Transient)
    unknown = isinstance(exc, OutcomeUnknown)
    if unknown:  # the attempt log keeps it open: the next attempt asks the target
        end_attempt = False
    if isinstance(exc, DepositError):
        reason = str(exc)
    else:  # an adapter bug must not take the worker down
        log.error("deposit %s to %s: unexpected error", deposit_id, work.repository.id,
                  exc_info=exc)
        reason = f"unexpected error ({type(exc).__name__}: {exc}); see the worker log"
    used = max(budget_used(intent.attempts), 1)
    when: datetime | None = None
    if transient and not ctx.retry_policy.exhausted(used):
        when = ctx.retry_policy.next_attempt_at(used, ctx.clock.now())
        status = DepositStatus.RETRY
        text = (message or f"attempt {used} of {ctx.retry_policy.max_attempts} failed: "
                f"{reason}") + f"; next attempt at {when.isoformat(timespec='seconds')}"
    elif transient:
        status = DepositStatus.FAILED
        text = (f"gave up after {used} attempts; last error: {reason}; "
                f"{retry_hint(deposit_id)}")
    else:
        status = DepositStatus.FAILED
        text = message or f"{reason}; {retry_hint(deposit_id)}"
    if unknown:
        text += ("; its outcome is unknown: the next attempt first asks the repository "
                 "whether it holds the package")
    outcome = AttemptOutcome.TRANSIENT_ERROR if transient else AttemptOutcome.PERMANENT_ERROR
    attempt = intent.attempt or (intent.attempts[-1] if intent.attempts else None)

    def record(uow: UnitOfWork) -> tuple[Deposit, bool]:
        if end_attempt and attempt is not None:
            uow.state.end_attempt(deposit_id, attempt.number, outcome, error=reason)
        elif unknown and attempt is not None:  # open, and the log says why
            uow.state.note_attempt(deposit_id, attempt.number,
                                   f"outcome unknown: {reason}")
        deposit = uow.records.get(Deposit, deposit_id)
        changed = set_status(deposit, status, text, when)
        if changed:
            announce(uow, ctx, deposit)
        uow.state.release_lease(deposit_lease(deposit_id), ctx.owner)
        if transient and config is not None:  # a transfer's fault: the repository's
            note_outcome(uow, config, ctx.health, ctx.clock.now(), reason)
        return deposit, changed

    saved, changed = run_unit(ctx.database, record, what=f"deposit {deposit_id} outcome")
    log.warning("deposit %s to %s %s: %s", deposit_id, work.repository.id, status.value, text)
    ctx.metrics.deposit(work.repository, status, counted=changed)
    if changed and when is not None:
        ctx.retry_scheduled(when)
    return saved

def record_receipt(ctx: ServiceContext, work: Work, intent_deposit: Deposit,
                   receipt: Receipt, attempt: Attempt, outcome: AttemptOutcome,
                   config: RepositoryConfig) -> Deposit:
    """SUBMITTED or ACCEPTED per the receipt, with its copy, the attempt ended, the
    submission settled, the message in the outbox, the lease given back."""
    deposit_id = work.deposit.id
    new_copy_id = uuid.uuid4().hex
    first = True

    def record(uow: UnitOfWork) -> tuple[Deposit, bool]:
        nonlocal first
        if first:  # known from the claim and the intent: no re-read (a stale one
            # fails its compare-and-set, and the unit runs again on fresh reads)
            uow.records.attach(intent_deposit)
            uow.records.attach(work.submission)
            for repository in work.repositories or [work.repository]:
                uow.records.attach(repository)
            first = False
        uow.state.end_attempt(deposit_id, attempt.number, outcome,
                              status_ref=receipt.status_ref,
                              edit_iri=receipt.details.get("edit_iri"),
                              access_url=receipt.access_url)
        uow.state.release_lease(deposit_lease(deposit_id), ctx.owner)
        note_outcome(uow, config, ctx.health, ctx.clock.now(), None)
        deposit = uow.records.get(Deposit, deposit_id)
        if deposit.deposit_status is None or not deposit.deposit_status.is_terminal:
            _apply_receipt(uow, ctx, work, deposit, receipt, new_copy_id)
        # (already terminal: a duplicate, or a run again after pass-core took the
        # deposit's write and refused the submission's: the submission still settles)
        submission = get_or_none(uow, Submission, deposit.submission)
        if submission is None:
            return deposit, False
        # the siblings as the claim knew them (with this one as it is now): a stale
        # one can only keep the submission open, and a later message settles it
        known = ([deposit if d.id == deposit.id else d for d in work.siblings]
                 if work.siblings else None)
        settle_aggregate(uow, submission, known)
        status = submission.aggregated_deposit_status
        return deposit, bool(deposit.deposit_status is DepositStatus.ACCEPTED
                             and status is not None and status.is_terminal)

    saved, settled = run_unit(ctx.database, record, what=f"deposit {deposit_id} outcome")
    work.siblings[:] = [saved if d.id == saved.id else d for d in work.siblings]
    if settled:  # every deposit of it is terminal now: messages about them are old news
        for sibling in work.siblings or [saved]:
            ctx.memory.finished("Deposit", sibling.id)
        ctx.memory.finished("Submission", work.submission.id)
    ctx.metrics.deposit(work.repository, saved.deposit_status)
    log.info("deposit %s to %s: %s%s", deposit_id, work.repository.id, saved.deposit_status,
             f" ({receipt.access_url})" if receipt.access_url else "")
    return saved


def _apply_receipt(uow: UnitOfWork, ctx: ServiceContext, work: Work, deposit: Deposit,
                   receipt: Receipt, new_copy_id: str) -> None:
    """SUBMITTED (+ ref) with an IN_PROGRESS copy, or ACCEPTED with a COMPLETE one."""
    copy = (uow.records.get(RepositoryCopy, deposit.repository_copy)
            if deposit.repository_copy else None)
    if copy is None:
        copy = uow.records.add(RepositoryCopy(
            id=new_copy_id, publication=work.submission.publication,
            repository=work.repository.id))
    copy.copy_status = CopyStatus.COMPLETE if receipt.accepted else CopyStatus.IN_PROGRESS
    copy.access_url = receipt.access_url
    copy.external_ids = list(receipt.external_ids)
    deposit.repository_copy = copy.id
    deposit.deposit_status = (DepositStatus.ACCEPTED if receipt.accepted
                              else DepositStatus.SUBMITTED)
    deposit.deposit_status_ref = receipt.status_ref
    deposit.status_message = receipt.message
    deposit.next_attempt_at = None
    announce(uow, ctx, deposit)
