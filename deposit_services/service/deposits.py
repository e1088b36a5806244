"""DepositTask: one Deposit's package built, transferred and recorded.

The outcome is always recorded on the Deposit: SUBMITTED (+ depositStatusRef) with an
IN_PROGRESS RepositoryCopy, ACCEPTED with a COMPLETE copy when the protocol says the
repository took custody, RETRY for a transient fault, FAILED with the reason for any
other. Status and copy are written in one transaction, so they never disagree.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from deposit_services.errors import DepositError, StoreError
from deposit_services.model.entities import (
    CopyStatus,
    Deposit,
    DepositStatus,
    Repository,
    RepositoryCopy,
    Submission,
)
from deposit_services.model.submission import DepositSubmission
from deposit_services.service.heartbeat import Heartbeat
from deposit_services.service.targets import Targets
from deposit_services.store.base import Store
from deposit_services.transports.base import Receipt

log = logging.getLogger(__name__)


def _no_notification(deposit: Deposit) -> None:
    """Default deposit-change hook: nothing to tell."""


@dataclass(frozen=True)
class ServiceContext:
    """What the service layer works with; built once by bootstrap."""

    store: Store
    targets: Targets
    work_dir: Path
    owner: str
    lease_seconds: float = 120.0
    notify: Callable[[Deposit], None] = field(default=_no_notification)


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
    ) -> Deposit:
        lease = deposit_lease(deposit.id)
        with Heartbeat(
            max(self.ctx.lease_seconds / 3, 0.2),
            lambda: self.ctx.store.acquire_lease(lease, self.ctx.owner, self.ctx.lease_seconds),
            name=f"lease-{deposit.id}",
        ):
            try:
                receipt = self._transfer(submission, content, repository)
            except StoreError:
                raise
            except DepositError as exc:
                status = DepositStatus.RETRY if exc.transient else DepositStatus.FAILED
                log.warning("deposit %s to %s: %s (%s)", deposit.id, repository.id, exc,
                            status.value)
                return self._record_failure(deposit, status, str(exc))
            except Exception as exc:  # an adapter bug must not take the worker down
                log.exception("deposit %s to %s: unexpected error", deposit.id, repository.id)
                return self._record_failure(
                    deposit, DepositStatus.FAILED,
                    f"unexpected error ({type(exc).__name__}: {exc}); see the worker log, "
                    "then retry the deposit",
                )
            return self._record_receipt(deposit, submission, repository, receipt)

    def _transfer(
        self, submission: Submission, content: DepositSubmission, repository: Repository
    ) -> Receipt:
        target = self.ctx.targets.for_repository(repository)
        package = target.assembler.assemble(
            content, self.ctx.work_dir, package_timestamp(submission)
        )
        try:
            log.info("sending %s (%d bytes, md5 %s) to %s over %s", package.name, package.size,
                     package.md5, target.config.key, target.transport.protocol)
            return target.transport.send(package, content)
        finally:
            package.discard()

    def _record_failure(self, deposit: Deposit, status: DepositStatus, message: str) -> Deposit:
        store = self.ctx.store
        with store.atomic():
            current = store.get(Deposit, deposit.id)
            if current.deposit_status is not None and current.deposit_status.is_terminal:
                return current
            current.deposit_status = status
            current.status_message = message
            saved = store.update(current)
        self.ctx.notify(saved)
        return saved

    def _record_receipt(
        self, deposit: Deposit, submission: Submission, repository: Repository, receipt: Receipt
    ) -> Deposit:
        store = self.ctx.store
        with store.atomic():
            current = store.get(Deposit, deposit.id)
            if current.deposit_status is not None and current.deposit_status.is_terminal:
                return current
            copy = store.add(RepositoryCopy(
                id=uuid.uuid4().hex,
                copy_status=CopyStatus.COMPLETE if receipt.accepted else CopyStatus.IN_PROGRESS,
                access_url=receipt.access_url,
                external_ids=list(receipt.external_ids),
                publication=submission.publication,
                repository=repository.id,
            ))
            current.repository_copy = copy.id
            current.deposit_status = (
                DepositStatus.ACCEPTED if receipt.accepted else DepositStatus.SUBMITTED
            )
            current.deposit_status_ref = receipt.status_ref
            current.status_message = receipt.message
            saved = store.update(current)
        log.info("deposit %s to %s: %s%s", deposit.id, repository.id, saved.deposit_status,
                 f" ({receipt.access_url})" if receipt.access_url else "")
        self.ctx.notify(saved)
        return saved
