"""DepositTask: one Deposit's package built, transferred and recorded.

The outcome is always recorded on the Deposit: SUBMITTED (+ depositStatusRef) with an
IN_PROGRESS RepositoryCopy, ACCEPTED with a COMPLETE copy when the protocol says the
repository took custody, RETRY (with the next attempt time) for a transient fault while
the retry budget lasts, FAILED with the reason and what to do for any other. Status,
copy and the attempt's outcome are written in one transaction, so they never disagree.

Every transfer is an attempt in the attempt log, its intent recorded before the
transfer. An attempt found open when the deposit is run again is one whose worker died
between sending and recording: it is reconciled with the target (``Transport.reconcile``)
before anything is sent again, so a crash never deposits the same package twice where
the protocol lets us check.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from deposit_services.assemblers.base import Package
from deposit_services.errors import DepositError, StoreError, TransferError
from deposit_services.model.entities import (
    CopyStatus,
    Deposit,
    DepositStatus,
    Repository,
    RepositoryCopy,
    Submission,
)
from deposit_services.model.submission import DepositSubmission
from deposit_services.service.cas import update_with_retry
from deposit_services.service.faults import CRASH_AFTER_TRANSFER, fault_point
from deposit_services.service.heartbeat import Heartbeat
from deposit_services.service.retry import RetryPolicy
from deposit_services.service.targets import Target, Targets
from deposit_services.store.base import Attempt, AttemptOutcome, PackageInfo, Store
from deposit_services.transports.base import Receipt

log = logging.getLogger(__name__)

# Who started an attempt (kept in the attempt log). An operator's retry starts a fresh
# retry budget: attempts are counted from the last one an operator asked for.
TRIGGER_MESSAGE = "message"
TRIGGER_JOB = "job"
TRIGGER_OPERATOR = "operator"


def _no_notification(deposit: Deposit) -> None:
    """Default deposit-change hook: nothing to tell."""


def _no_wake_up(when: datetime) -> None:
    """Default retry-scheduled hook: the periodic retry job will find it."""


@dataclass(frozen=True)
class ServiceContext:
    """What the service layer works with; built once by bootstrap."""

    store: Store
    targets: Targets
    work_dir: Path
    owner: str
    lease_seconds: float = 120.0
    notify: Callable[[Deposit], None] = field(default=_no_notification)
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    retry_scheduled: Callable[[datetime], None] = field(default=_no_wake_up)
    fault_injection: str | None = None


def deposit_lease(deposit_id: str) -> str:
    return f"deposit:{deposit_id}"


def package_timestamp(submission: Submission) -> datetime:
    """Fixed per submission, so a rebuilt package has the same name and bytes."""
    if submission.submitted_date is not None:
        stamp = submission.submitted_date
        return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
    log.warning("submission %s has no submittedDate; package names use the current time",
                submission.id)
    return datetime.now(UTC).replace(microsecond=0)


def retry_hint(deposit_id: str) -> str:
    return f"fix the cause, then run `deposit-services retry --uri {deposit_id}`"


def budget_used(attempts: list[Attempt]) -> int:
    """Attempts counted against the retry budget: since the last operator retry."""
    start = 0
    for index, attempt in enumerate(attempts):
        if attempt.trigger == TRIGGER_OPERATOR:
            start = index
    return len(attempts) - start


class DepositTask:
    """Runs one deposit while holding its lease (renewed by a heartbeat)."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def run(
        self,
        deposit: Deposit,
        submission: Submission,
        content: DepositSubmission,
        repository: Repository,
        trigger: str = TRIGGER_MESSAGE,
    ) -> Deposit:
        """Transfer the deposit's package and record the outcome. The caller holds the
        deposit's lease; it is renewed here for as long as the transfer takes."""
        lease = deposit_lease(deposit.id)
        with Heartbeat(
            max(self.ctx.lease_seconds / 3, 0.2),
            lambda: self.ctx.store.acquire_lease(lease, self.ctx.owner, self.ctx.lease_seconds),
            name=f"lease-{deposit.id}",
        ):
            return self._run(deposit, submission, content, repository, trigger)

    def _run(
        self,
        deposit: Deposit,
        submission: Submission,
        content: DepositSubmission,
        repository: Repository,
        trigger: str,
    ) -> Deposit:
        store = self.ctx.store
        open_attempts = [a for a in store.attempts(deposit.id) if a.is_open]
        try:
            target = self.ctx.targets.for_repository(repository)
            package = target.assembler.assemble(
                content, self.ctx.work_dir, package_timestamp(submission)
            )
        except StoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - config or assembly: recorded, nothing sent
            attempt = store.begin_attempt(deposit.id, trigger=trigger, owner=self.ctx.owner)
            return self._record_failure(deposit, repository, attempt, exc)
        try:
            if open_attempts:
                settled = self._reconcile(deposit, submission, repository, target, package,
                                          open_attempts)
                if settled is not None:
                    return settled
            info = PackageInfo(package.name, package.size, package.md5, package.sha256)
            attempt = store.begin_attempt(deposit.id, trigger=trigger, owner=self.ctx.owner,
                                          package=info)
            try:
                log.info("deposit %s attempt %d: sending %s (%d bytes, md5 %s) to %s over %s",
                         deposit.id, attempt.number, package.name, package.size, package.md5,
                         target.config.key, target.transport.protocol)
                receipt = target.transport.send(package, content)
            except StoreError:
                raise
            except Exception as exc:  # noqa: BLE001 - recorded on the deposit with the reason
                return self._record_failure(deposit, repository, attempt, exc)
            fault_point(self.ctx.fault_injection, CRASH_AFTER_TRANSFER)
            return self._record_receipt(deposit, submission, repository, receipt, attempt,
                                        AttemptOutcome.SENT)
        finally:
            package.discard()

    # -- crash reconciliation ---------------------------------------------------------

    def _reconcile(
        self,
        deposit: Deposit,
        submission: Submission,
        repository: Repository,
        target: Target,
        package: Package,
        open_attempts: list[Attempt],
    ) -> Deposit | None:
        """Settle attempts whose worker died after the intent was recorded. Returns the
        recorded Deposit when that settles it, None when the package must be sent."""
        store = self.ctx.store
        last = open_attempts[-1]
        for stale in open_attempts[:-1]:  # older ones: superseded by the last
            store.end_attempt(deposit.id, stale.number, AttemptOutcome.INTERRUPTED,
                              error="worker stopped; superseded by a later attempt")
        evidence = {
            key: value for key, value in (
                ("attempt", str(last.number)),
                ("started_at", last.started_at.isoformat()),
                ("package_name", last.package.name if last.package else None),
                ("package_md5", last.package.md5 if last.package else None),
                ("edit_iri", last.edit_iri),
                ("access_url", last.access_url),
                ("status_ref", last.status_ref or deposit.deposit_status_ref),
            ) if value
        }
        if last.package is not None and last.package.name != package.name:
            log.warning("deposit %s: attempt %d sent %s, the package is now %s (no "
                        "submittedDate fixes its name); the target is checked for the new one",
                        deposit.id, last.number, last.package.name, package.name)
        log.warning("deposit %s: attempt %d (started %s by %s) has no recorded outcome; "
                    "reconciling with %s", deposit.id, last.number, last.started_at,
                    last.owner, target.config.key)
        try:
            receipt = target.transport.reconcile(package, evidence)
        except StoreError:
            raise
        except TransferError as exc:
            if exc.transient:  # cannot check now: leave the attempt open, look again later
                return self._schedule_retry(
                    deposit, store.attempts(deposit.id),
                    f"checking whether attempt {last.number} reached the target failed: {exc}")
            message = (
                f"the outcome of attempt {last.number} (package {package.name}, md5 "
                f"{package.md5}) is unknown: {exc}. Check whether {target.config.key} holds "
                f"it; if not, run `deposit-services retry --uri {deposit.id}` to send it again"
            )
            return self._record_failure(deposit, repository, last, exc, message=message)
        if receipt is None:
            store.end_attempt(deposit.id, last.number, AttemptOutcome.INTERRUPTED,
                              error="worker stopped before the outcome was recorded; "
                                    "the target does not hold the package: sending again")
            return None
        log.info("deposit %s: attempt %d had reached %s; recording it", deposit.id,
                 last.number, target.config.key)
        return self._record_receipt(deposit, submission, repository, receipt, last,
                                    AttemptOutcome.RECONCILED)

    # -- recording --------------------------------------------------------------------

    def _record_failure(
        self,
        deposit: Deposit,
        repository: Repository,
        attempt: Attempt,
        exc: Exception,
        message: str | None = None,
    ) -> Deposit:
        store = self.ctx.store
        transient = isinstance(exc, DepositError) and exc.transient
        if isinstance(exc, DepositError):
            reason = str(exc)
        else:  # an adapter bug must not take the worker down
            log.error("deposit %s to %s: unexpected error", deposit.id, repository.id,
                      exc_info=exc)
            reason = f"unexpected error ({type(exc).__name__}: {exc}); see the worker log"
        outcome = AttemptOutcome.TRANSIENT_ERROR if transient else AttemptOutcome.PERMANENT_ERROR
        when: datetime | None = None
        with store.atomic():
            store.end_attempt(deposit.id, attempt.number, outcome, error=reason)
            history = store.attempts(deposit.id)
            used = budget_used(history)
            if transient and not self.ctx.retry_policy.exhausted(used):
                when = self.ctx.retry_policy.next_attempt_at(used, datetime.now(UTC))
                message = (f"attempt {used} of {self.ctx.retry_policy.max_attempts} failed: "
                           f"{reason}; next attempt at {when.isoformat(timespec='seconds')}")
                status = DepositStatus.RETRY
            elif transient:
                message = (f"gave up after {used} attempts; last error: {reason}; "
                           f"{retry_hint(deposit.id)}")
                status = DepositStatus.FAILED
            else:
                message = message or f"{reason}; {retry_hint(deposit.id)}"
                status = DepositStatus.FAILED
            saved, changed = self.set_status(deposit.id, status, message, when)
        log.warning("deposit %s to %s %s: %s", deposit.id, repository.id, status.value, message)
        self._announce(saved, changed, when)
        return saved

    def _schedule_retry(self, deposit: Deposit, history: list[Attempt], reason: str) -> Deposit:
        """Deposit RETRY with its next attempt time, no attempt ended (reconciliation)."""
        used = max(budget_used(history), 1)
        when = self.ctx.retry_policy.next_attempt_at(used, datetime.now(UTC))
        message = f"{reason}; next attempt at {when.isoformat(timespec='seconds')}"
        saved, changed = self.set_status(deposit.id, DepositStatus.RETRY, message, when)
        log.warning("deposit %s: %s", deposit.id, message)
        self._announce(saved, changed, when)
        return saved

    def set_status(
        self, deposit_id: str, status: DepositStatus, message: str, when: datetime | None
    ) -> tuple[Deposit, bool]:
        """RETRY or FAILED by compare-and-set, unless the deposit is already terminal."""

        def change(current: Deposit) -> bool:
            if current.deposit_status is not None and current.deposit_status.is_terminal:
                return False
            current.deposit_status = status
            current.status_message = message
            current.next_attempt_at = when
            return True

        return update_with_retry(self.ctx.store, Deposit, deposit_id, change)

    def _announce(self, saved: Deposit, changed: bool, when: datetime | None) -> None:
        """After the commit: tell the broker, and wake the retry job at ``when``."""
        if not changed:
            return
        self.ctx.notify(saved)
        if when is not None:
            self.ctx.retry_scheduled(when)

    def _record_receipt(
        self,
        deposit: Deposit,
        submission: Submission,
        repository: Repository,
        receipt: Receipt,
        attempt: Attempt,
        outcome: AttemptOutcome,
    ) -> Deposit:
        store = self.ctx.store
        accepted = receipt.accepted
        copy_status = CopyStatus.COMPLETE if accepted else CopyStatus.IN_PROGRESS
        new_copy_id = uuid.uuid4().hex
        with store.atomic():
            store.end_attempt(
                deposit.id, attempt.number, outcome, status_ref=receipt.status_ref,
                edit_iri=receipt.details.get("edit_iri"), access_url=receipt.access_url,
            )
            copy_id: str | None = None

            def record(current: Deposit) -> bool:
                nonlocal copy_id
                if current.deposit_status is not None and current.deposit_status.is_terminal:
                    return False
                copy_id = current.repository_copy or new_copy_id
                current.repository_copy = copy_id
                current.deposit_status = (
                    DepositStatus.ACCEPTED if accepted else DepositStatus.SUBMITTED
                )
                current.deposit_status_ref = receipt.status_ref
                current.status_message = receipt.message
                current.next_attempt_at = None
                return True

            saved, changed = update_with_retry(store, Deposit, deposit.id, record)
            if changed and copy_id is not None:
                self._write_copy(copy_id, copy_status, receipt, submission, repository,
                                 new=copy_id == new_copy_id)
        log.info("deposit %s to %s: %s%s", deposit.id, repository.id, saved.deposit_status,
                 f" ({receipt.access_url})" if receipt.access_url else "")
        self._announce(saved, changed, None)
        return saved

    def _write_copy(
        self,
        copy_id: str,
        status: CopyStatus,
        receipt: Receipt,
        submission: Submission,
        repository: Repository,
        new: bool,
    ) -> None:
        if new:
            self.ctx.store.add(RepositoryCopy(
                id=copy_id, copy_status=status, access_url=receipt.access_url,
                external_ids=list(receipt.external_ids), publication=submission.publication,
                repository=repository.id,
            ))
            return

        def refresh(copy: RepositoryCopy) -> bool:
            copy.copy_status = status
            copy.access_url = receipt.access_url
            copy.external_ids = list(receipt.external_ids)
            return True

        update_with_retry(self.ctx.store, RepositoryCopy, copy_id, refresh)
