"""DepositProcessor: a deposit followed to its end, and tried again when it failed.

``process`` handles a DepositStatus message as PASS does: an intermediate (SUBMITTED)
deposit has its depositStatusRef resolved through its repository's status resolver;
ACCEPTED -> copy COMPLETE, REJECTED -> copy REJECTED, a ``failed`` state -> Deposit FAILED
and copy STALLED; then the submission's aggregated status is settled. ``refresh`` and
``retry`` are the same steps for one deposit, used by the scheduled jobs and the CLI.

Every change is a compare-and-set on the version, re-checked on conflict, with the
Deposit and its RepositoryCopy written in one transaction; a terminal deposit is never
moved back, whatever message comes late or twice. Work on one deposit (a retry) holds
its lease, so replicas and the CLI never run it twice at the same time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from deposit_services.errors import (
    DepositError,
    ModelError,
    NotFound,
    RepositoryConfigError,
)
from deposit_services.model.builder import build_deposit_submission
from deposit_services.model.entities import (
    CopyStatus,
    Deposit,
    DepositStatus,
    Repository,
    RepositoryCopy,
    Submission,
)
from deposit_services.service.cas import update_with_retry
from deposit_services.service.deposits import (
    TRIGGER_JOB,
    DepositTask,
    ServiceContext,
    deposit_lease,
    retry_hint,
)
from deposit_services.service.submissions import update_aggregate
from deposit_services.status.base import ResolvedStatus

log = logging.getLogger(__name__)

COPY_STATUS_FOR = {
    DepositStatus.ACCEPTED: CopyStatus.COMPLETE,
    DepositStatus.REJECTED: CopyStatus.REJECTED,
    DepositStatus.FAILED: CopyStatus.STALLED,
}


@dataclass(frozen=True)
class Outcome:
    """What ``refresh`` or ``retry`` did to one deposit, for the jobs' logs and the CLI."""

    deposit_id: str
    ok: bool
    status: str
    message: str = ""
    changed: bool = False
    skipped: bool = False


def _status(deposit: Deposit) -> str:
    return deposit.deposit_status.value if deposit.deposit_status else "(pending)"


class DepositProcessor:
    """Status processing, refresh and retry of existing deposits."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.task = DepositTask(ctx)

    # -- DepositStatus messages ---------------------------------------------------------

    def process(self, deposit_id: str) -> None:
        """Handle a DepositStatus message. NotFound propagates (dead-lettered)."""
        deposit = self.ctx.store.get(Deposit, deposit_id)
        if deposit.deposit_status is DepositStatus.SUBMITTED:
            self.refresh(deposit_id)
        else:
            log.debug("deposit %s is %s; the message changes nothing", deposit_id,
                      _status(deposit))
        if deposit.submission:
            update_aggregate(self.ctx, deposit.submission)

    # -- refresh ------------------------------------------------------------------------

    def refresh(self, deposit_id: str) -> Outcome:
        """Resolve a SUBMITTED deposit's status ref and record what it says."""
        store = self.ctx.store
        deposit = store.get(Deposit, deposit_id)
        if deposit.deposit_status is not DepositStatus.SUBMITTED:
            return Outcome(deposit_id, True, _status(deposit), "not SUBMITTED; nothing to refresh",
                           skipped=True)
        if not deposit.deposit_status_ref:
            return self._note(deposit, "no depositStatusRef to follow; the repository gave none")
        try:
            repository = store.get(Repository, deposit.repository or "")
            resolver = self.ctx.targets.resolver_for(repository)
        except (NotFound, RepositoryConfigError) as exc:
            return self._note(deposit, f"cannot follow the status: {exc}")
        if resolver is None:
            return self._note(deposit, "the repository's protocol has no status to follow")
        try:
            resolved = resolver.resolve(deposit.deposit_status_ref)
        except DepositError as exc:
            # A status fault says nothing about the package: stay SUBMITTED, say why.
            log.warning("deposit %s: status check failed: %s", deposit_id, exc)
            return self._note(deposit, f"status check failed: {exc}", transient=exc.transient)
        return self._apply(deposit, resolved)

    def _note(self, deposit: Deposit, message: str, transient: bool = False) -> Outcome:
        """Keep a SUBMITTED deposit as it is but let the operator see why (on change)."""
        if not transient:
            def note(current: Deposit) -> bool:
                if current.deposit_status is not DepositStatus.SUBMITTED:
                    return False
                if current.status_message == message:
                    return False
                current.status_message = message
                return True

            update_with_retry(self.ctx.store, Deposit, deposit.id, note)
        return Outcome(deposit.id, False, _status(deposit), message)

    def _apply(self, deposit: Deposit, resolved: ResolvedStatus) -> Outcome:
        new = resolved.deposit_status
        words = resolved.description or resolved.state
        if new is None or new is DepositStatus.SUBMITTED or new is DepositStatus.RETRY:
            return Outcome(deposit.id, True, _status(deposit), f"still in progress ({words})")
        message = f"{resolved.state}: {words}" if words != resolved.state else resolved.state
        if new is DepositStatus.FAILED:
            message = f"the repository reports a failure ({message}); {retry_hint(deposit.id)}"
        store = self.ctx.store
        ref = deposit.deposit_status_ref

        def move(current: Deposit) -> bool:
            if current.deposit_status is not DepositStatus.SUBMITTED:
                return False  # terminal, or moved by someone else: never moved back
            if current.deposit_status_ref != ref:
                return False  # re-sent meanwhile: this answer is about an old deposit
            current.deposit_status = new
            current.status_message = message
            return True

        with store.atomic():
            saved, changed = update_with_retry(store, Deposit, deposit.id, move)
            if changed and saved.repository_copy:
                copy_status = COPY_STATUS_FOR[new]

                def follow(copy: RepositoryCopy) -> bool:
                    if copy.copy_status is copy_status:
                        return False
                    copy.copy_status = copy_status
                    return True

                try:
                    update_with_retry(store, RepositoryCopy, saved.repository_copy, follow)
                except NotFound:
                    log.error("deposit %s: its RepositoryCopy %s is missing", deposit.id,
                              saved.repository_copy)
        if changed:
            log.info("deposit %s: %s (%s)", deposit.id, new.value, resolved.state)
            self.ctx.notify(saved)
            if saved.submission:
                update_aggregate(self.ctx, saved.submission)
        return Outcome(deposit.id, new is not DepositStatus.FAILED, _status(saved), message,
                       changed=changed)

    # -- retry --------------------------------------------------------------------------

    def retry(self, deposit_id: str, trigger: str = TRIGGER_JOB, due_only: bool = True
              ) -> Outcome:
        """Transfer a RETRY (or, for an operator, FAILED) deposit again, under its lease.

        ``due_only``: only a RETRY deposit whose next attempt time has come, or one with
        no status whose worker died (the job); otherwise any RETRY or FAILED deposit
        (the operator's ``retry``).
        """
        store = self.ctx.store
        lease = deposit_lease(deposit_id)
        if not store.acquire_lease(lease, self.ctx.owner, self.ctx.lease_seconds):
            deposit = store.get(Deposit, deposit_id)
            return Outcome(deposit_id, False, _status(deposit),
                           "being worked on by another worker; try again later", skipped=True)
        try:
            deposit = store.get(Deposit, deposit_id)  # again, under the lease
            reason = self._not_retryable(deposit, due_only)
            if reason:
                return Outcome(deposit_id, not due_only, _status(deposit), reason, skipped=True)
            saved = self._run_again(deposit, trigger)
        finally:
            store.release_lease(lease, self.ctx.owner)
        if saved.submission:
            update_aggregate(self.ctx, saved.submission)
        ok = saved.deposit_status in (DepositStatus.SUBMITTED, DepositStatus.ACCEPTED)
        return Outcome(deposit_id, ok, _status(saved), saved.status_message or "", changed=True)

    @staticmethod
    def _not_retryable(deposit: Deposit, due_only: bool) -> str | None:
        status = deposit.deposit_status
        if due_only:
            if status is None:
                return None  # stranded: its worker died (the lease is ours now)
            if status is not DepositStatus.RETRY:
                return f"{_status(deposit)}, not RETRY"
            due = deposit.next_attempt_at
            if due is not None:
                due = due if due.tzinfo else due.replace(tzinfo=UTC)
                if due > datetime.now(UTC):
                    return f"not due before {due.isoformat(timespec='seconds')}"
            return None
        if status not in (DepositStatus.RETRY, DepositStatus.FAILED):
            return f"{_status(deposit)}: only FAILED and RETRY deposits are retried"
        return None

    def _run_again(self, deposit: Deposit, trigger: str) -> Deposit:
        store = self.ctx.store
        submission = store.get(Submission, deposit.submission or "")
        repository = store.get(Repository, deposit.repository or "")
        try:
            content = build_deposit_submission(submission, store)
        except ModelError as exc:
            message = f"submission metadata is unusable: {exc}; {retry_hint(deposit.id)}"
            saved, _ = self.task.set_status(deposit.id, DepositStatus.FAILED, message, None)
            return saved
        return self.task.run(deposit, submission, content, repository, trigger)
