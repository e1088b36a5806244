"""DepositTask: one Deposit's package built, transferred and recorded, in two units.

The intent (one unit: the deposit's lease, its precondition re-checked under it, the
attempt begun in the attempt log) comes before the transfer, the outcome (one unit: the
attempt ended, the Deposit, its RepositoryCopy, the submission's aggregated status,
the DepositStatus message in the outbox, the lease given back) after it, so status,
copy and attempt never disagree and a message never announces what was rolled back.

The outcome is SUBMITTED (+ depositStatusRef) with an IN_PROGRESS RepositoryCopy,
ACCEPTED with a COMPLETE copy when the protocol says the repository took custody,
RETRY (with the next attempt time) for a transient fault while the retry budget lasts,
FAILED with the reason and what to do for any other. A transfer whose outcome cannot
be known (``OutcomeUnknown``: sent whole, no answer) is RETRY with its attempt left
open. An attempt found open when the deposit is run again, on any replica, is one whose
outcome was never recorded (its worker died, or no answer came): it is reconciled with
the target (``Transport.reconcile``) before anything is sent again. The outcome unit,
and the vocabulary of a run (triggers, lease, status change), are in service/outcome.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from deposit_services.assemblers.base import Package
from deposit_services.clock import Clock
from deposit_services.errors import StoreError
from deposit_services.model.entities import (
    Deposit,
    DepositStatus,
    Repository,
    Submission,
)
from deposit_services.model.submission import DepositSubmission
from deposit_services.observability.logs import bind
from deposit_services.observability.metrics import repository_label
from deposit_services.service.context import ServiceContext
from deposit_services.service.duplicates import (
    Kind,
    Resubmission,
    find_resubmission,
    fingerprint,
    sent_work,
)
from deposit_services.service.faults import CRASH_AFTER_TRANSFER, fault_point
from deposit_services.service.health import (
    Gate,
    admit,
    after_probe,
    preflight_probe,
)
from deposit_services.service.heartbeat import Heartbeat
from deposit_services.service.outcome import (
    TRIGGER_FORCE,
    announce,
    deposit_lease,
    record_failure,
    record_receipt,
    set_status,
)
from deposit_services.service.reconcile import reconcile
from deposit_services.service.targets import Target
from deposit_services.store.base import Attempt, AttemptOutcome, PackageInfo
from deposit_services.store.uow import UnitOfWork, run_unit
from deposit_services.transports.base import Receipt

log = logging.getLogger(__name__)

# Why a deposit is not to be run now (None: run it), checked under its lease.
Precondition = Callable[[Deposit, Clock], str | None]


def package_timestamp(submission: Submission, clock: Clock) -> datetime:
    """Fixed per submission, so a rebuilt package has the same name and bytes."""
    if submission.submitted_date is not None:
        return submission.submitted_date
    log.warning("submission %s has no submittedDate; package names use the current time",
                submission.id)
    return clock.now().replace(microsecond=0)


@dataclass
class Intent:
    """What the intent unit found: the deposit under our lease, its attempts (the new
    one last, when one was begun), or why it is not run (``skipped``)."""

    deposit: Deposit
    attempts: list[Attempt] = field(default_factory=list)
    attempt: Attempt | None = None
    skipped: str | None = None
    probe: bool = False  # its repository's pause ran out: this worker probes it first
    held: datetime | None = None  # its repository is paused: RETRY at this time
    resubmission: Resubmission | None = None  # an update or a replacement of another


@dataclass
class Work:
    """One deposit to run, with what its submission's claim already read: its sibling
    deposits (to settle the submission without reading them again), whether the claim
    leased it (then nobody else can have changed it) or it must wait for the lease."""

    deposit: Deposit
    submission: Submission
    content: DepositSubmission
    repository: Repository
    siblings: list[Deposit] = field(default_factory=list)
    repositories: list[Repository] = field(default_factory=list)
    leased: bool = False
    wait: bool = False
    leased_at: float | None = None
    fingerprint: str | None = None  # its content with its package's files, once built


class DepositTask:
    """Runs one deposit: assemble, intent, transfer (lease renewed), outcome."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def run(self, work: Work, trigger: str, ready: Precondition, *, wait: bool) -> Intent:
        """Run ``work.deposit`` if ``ready`` says so under its lease. ``wait``: wait up
        to 1.5 lease periods for a lease held by another worker (a dead one's runs
        out); else give up at once. Returns the intent, with the deposit as recorded."""
        ctx = self.ctx
        bind(submission=work.submission.id, deposit=work.deposit.id,
             repository=repository_label(work.repository), attempt=None)
        try:
            target = ctx.targets.for_repository(work.repository)
            if ctx.memory.held(target.config.key, ctx.clock.now()) is not None:
                # paused when this worker last looked: ask the gate before building a
                # package that would not be sent
                early = self._intent(work, trigger, ready, None, wait, target)
                if early.probe:
                    self._probe(target)
                elif early.skipped is not None:
                    if early.held is not None:
                        ctx.memory.hold(target.config.key, early.held)
                        ctx.retry_scheduled(early.held)
                    return early
            package = target.assembler.assemble(
                work.content, ctx.work_dir, package_timestamp(work.submission, ctx.clock))
            work.fingerprint = fingerprint(work.content, package.contents)
        except StoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - config or assembly: recorded, nothing sent
            intent = self._intent(work, trigger, ready, None, wait)
            if intent.attempt is not None:
                intent.deposit = record_failure(self.ctx, work, intent, exc)
            return intent
        try:
            info = PackageInfo(package.name, package.size, package.md5, package.sha256)
            intent = self._intent(work, trigger, ready, info, wait, target)
            if intent.probe:  # its answer resumes the repository or pauses it again
                self._probe(target)
                intent = self._intent(work, trigger, ready, info, wait, target)
            if intent.held is not None:
                ctx.memory.hold(target.config.key, intent.held)
                ctx.retry_scheduled(intent.held)
            if intent.skipped is None:
                intent.deposit = self._transfer(work, intent, target, package, trigger)
            return intent
        finally:
            package.discard()

    def _transfer(self, work: Work, intent: Intent, target: Target, package: Package,
                  trigger: str) -> Deposit:
        ctx = self.ctx
        lease = deposit_lease(work.deposit.id)
        renew: Callable[[], object] = lambda: run_unit(  # noqa: E731
            ctx.database, lambda uow: uow.state.acquire_lease(lease, ctx.owner,
                                                              ctx.lease_seconds),
            what=f"renewing {lease}")
        with Heartbeat(max(ctx.lease_seconds / 3, 0.2), renew, name=f"lease-{work.deposit.id}"):
            if intent.attempt is None:  # open attempts: a worker died after sending
                settled = reconcile(ctx, work, intent, target, package, trigger)
                if settled.receipt is not None:
                    receipt_attempt, outcome = settled.attempt, AttemptOutcome.RECONCILED
                    result: Receipt | Exception = settled.receipt
                elif settled.error is not None:
                    return record_failure(self.ctx, work, intent, settled.error,
                                                message=settled.message,
                                                end_attempt=settled.end_attempt,
                                                config=target.config)
                else:
                    intent = settled.intent
                    result, receipt_attempt, outcome = self._send(work, intent, target,
                                                                  package)
            else:
                result, receipt_attempt, outcome = self._send(work, intent, target, package)
        if isinstance(result, Exception):
            return record_failure(self.ctx, work, intent, result, config=target.config)
        assert receipt_attempt is not None
        # what it replaces or updates, what the package left out or wrote as given
        notes = [intent.resubmission.message(work.deposit.id, target.transport.protocol)
                 ] if intent.resubmission is not None else []
        if notes or package.warnings:
            result = replace(result, message="; ".join(
                m for m in (result.message, *notes, *package.warnings) if m))
        return record_receipt(self.ctx, work, intent.deposit, result, receipt_attempt, outcome,
                                    target.config)

    def _send(self, work: Work, intent: Intent, target: Target, package: Package
              ) -> tuple[Receipt | Exception, Attempt | None, AttemptOutcome]:
        assert intent.attempt is not None
        log.info("deposit %s attempt %d: sending %s (%d bytes, md5 %s) to %s over %s",
                 work.deposit.id, intent.attempt.number, package.name, package.size,
                 package.md5, target.config.key, target.transport.protocol)
        bind(attempt=intent.attempt.number)
        transfer = self.ctx.metrics.transfer(target.transport.protocol, package.size)
        resubmission = intent.resubmission
        if resubmission is not None:
            log.info("deposit %s: %s", work.deposit.id,
                     resubmission.message(work.deposit.id, target.transport.protocol))
        try:
            if resubmission is not None and resubmission.prior is not None:
                receipt = target.transport.update(package, work.content, resubmission.prior)
            else:
                receipt = target.transport.send(package, work.content)
        except StoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - recorded on the deposit with the reason
            transfer.done(ok=False)
            return exc, intent.attempt, AttemptOutcome.SENT
        transfer.done(ok=True)
        fault_point(self.ctx.fault_injection, CRASH_AFTER_TRANSFER)
        return receipt, intent.attempt, AttemptOutcome.SENT

    # -- intent ---------------------------------------------------------------------------

    def _probe(self, target: Target) -> None:
        """Probe a paused repository (its pause ran out and this worker claimed it)."""
        ctx = self.ctx
        probe = ctx.probe or preflight_probe(ctx.targets.repositories, ctx.clock)
        try:
            failure = probe(target.config)
        except Exception as exc:  # noqa: BLE001 - a probe that breaks is a failed probe
            failure = f"the probe broke ({type(exc).__name__}: {exc})"
        after_probe(ctx.database, target.config, ctx.health, ctx.clock.now(), failure)

    def _gate(self, uow: UnitOfWork, work: Work, deposit: Deposit, trigger: str,
              attempts: list[Attempt], target: Target, built: bool) -> Intent | None:
        """In the intent unit: the deposit held (its repository is paused), refused (a
        duplicate, once its package is ``built``), probing first, or None to go on
        (``Intent.resubmission`` set later)."""
        ctx = self.ctx
        gate = admit(uow, target.config, ctx.health, ctx.clock.now())
        if gate.probe:
            return Intent(deposit, attempts, probe=True)
        if gate.until is not None:
            return self._hold(uow, deposit, gate, attempts)
        if (not built or work.fingerprint is None or target.config.operations.allow_duplicates
                or any(a.is_open for a in attempts)
                or any(a.trigger == TRIGGER_FORCE for a in attempts)
                or trigger == TRIGGER_FORCE):
            return None
        found = find_resubmission(uow, deposit, work.content, work.fingerprint,
                                  target.transport.supports_update)
        if found is None:
            return None
        if found.kind is not Kind.DUPLICATE:
            return Intent(deposit, attempts, resubmission=found)
        message = found.message(deposit.id, target.transport.protocol)
        if set_status(deposit, DepositStatus.FAILED, message, None):
            announce(uow, ctx, deposit)
        uow.state.release_lease(deposit_lease(deposit.id), ctx.owner)
        log.warning("deposit %s to %s: %s", deposit.id, target.config.key, message)
        return Intent(deposit, attempts, skipped=message)

    def _hold(self, uow: UnitOfWork, deposit: Deposit, gate: Gate,
              attempts: list[Attempt]) -> Intent:
        """RETRY at the pause's end, no attempt begun: the repository is paused. Held
        already (same message): only its next time moves, with nothing to announce."""
        assert gate.until is not None
        if (deposit.deposit_status, deposit.status_message) == (DepositStatus.RETRY,
                                                                 gate.why):
            deposit.next_attempt_at = gate.until
        elif set_status(deposit, DepositStatus.RETRY, gate.why, gate.until):
            announce(uow, self.ctx, deposit)
        uow.state.release_lease(deposit_lease(deposit.id), self.ctx.owner)
        return Intent(deposit, attempts, skipped=gate.why, held=gate.until)

    def _intent(self, work: Work, trigger: str, ready: Precondition,
                package: PackageInfo | None, wait: bool, target: Target | None = None
                ) -> Intent:
        ctx = self.ctx
        deposit_id = work.deposit.id
        lease = deposit_lease(deposit_id)
        # Leased by the claim and still well inside the lease: nobody else can have
        # written it since the claim read it, so it is not read again.
        known = work.deposit if (
            work.leased and work.leased_at is not None
            and ctx.clock.monotonic() < work.leased_at + ctx.lease_seconds * 2 / 3) else None

        def intent(uow: UnitOfWork) -> Intent | None:
            if not uow.state.acquire_lease(lease, ctx.owner, ctx.lease_seconds):
                return None
            deposit = (uow.records.attach(known) if known is not None
                       else uow.records.get(Deposit, deposit_id))
            reason = ready(deposit, ctx.clock)
            if reason is not None:
                uow.state.release_lease(lease, ctx.owner)
                return Intent(deposit, skipped=reason)
            attempts = uow.state.attempts(deposit_id)
            gated = (self._gate(uow, work, deposit, trigger, attempts, target,
                                built=package is not None) if target is not None else None)
            if gated is not None and gated.resubmission is None:
                return gated
            if target is not None and package is None:  # the gate only: go and build it
                return Intent(deposit, attempts)
            sent = (sent_work(deposit, work.content, work.fingerprint)
                    if work.fingerprint is not None else None)
            if sent is not None:  # indexed with its intent: committed or rolled back with it
                uow.state.record_sent_work(sent)
            if any(a.is_open for a in attempts) and package is not None:
                return Intent(deposit, attempts)  # reconciled before anything is sent
            attempt = uow.state.begin_attempt(deposit_id, trigger=trigger, owner=ctx.owner,
                                              package=package)
            return Intent(deposit, [*attempts, attempt], attempt,
                          resubmission=gated.resubmission if gated else None)

        deadline = ctx.clock.monotonic() + ctx.lease_seconds * 1.5
        while True:
            found = run_unit(ctx.database, intent, what=f"deposit {deposit_id} intent")
            if found is not None:
                return found
            if not wait or ctx.clock.monotonic() >= deadline:
                with ctx.database.unit_of_work(read_only=True) as uow:
                    deposit = uow.records.get(Deposit, deposit_id)
                return Intent(deposit, skipped="being worked on by another worker; "
                                               "try again later")
            ctx.clock.sleep(min(ctx.lease_seconds / 6, 1.0))

