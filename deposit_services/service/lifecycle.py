"""DepositProcessor: a deposit followed to its end, and tried again when it failed.

``process`` handles a DepositStatus message as PASS does: an intermediate (SUBMITTED)
deposit has its depositStatusRef resolved through its repository's status resolver;
ACCEPTED -> copy COMPLETE, REJECTED -> copy REJECTED, a ``failed`` state -> Deposit FAILED
and copy STALLED; then the submission's aggregated status is settled. A message about
a change this worker made itself costs one read and no write. ``refresh`` and ``retry``
are the same steps for one deposit, used by the scheduled jobs and the CLI; ``refresh``
of an ACCEPTED deposit asks a resolver that ``Rechecks`` (dtool) whether what was
deposited is still in place: the deposit stays ACCEPTED, and only a changed finding is
written to its statusMessage.

Every change is one unit of work (compare-and-set on the versions, run again on a lost
race); a terminal deposit is never moved back, whatever message comes late or twice.
Work on one deposit (a retry) holds its lease, so replicas and the CLI never run it
twice at the same time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from deposit_services.clock import Clock
from deposit_services.errors import (
    DepositError,
    ModelError,
    NotFound,
    RepositoryConfigError,
    Transient,
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
from deposit_services.model.graph import Graph
from deposit_services.service.aggregate import aggregate_for, settle_aggregate
from deposit_services.service.context import ServiceContext
from deposit_services.service.deposits import DepositTask, Work
from deposit_services.service.outcome import TRIGGER_JOB, announce, retry_hint, set_status
from deposit_services.service.stale import PREFIX as STALLED
from deposit_services.service.stale import stale_message, submitted_since
from deposit_services.service.submissions import missing_repository
from deposit_services.status.base import ResolvedStatus
from deposit_services.store.uow import UnitOfWork, get_or_none, run_unit

log = logging.getLogger(__name__)

COPY_STATUS_FOR = {
    DepositStatus.ACCEPTED: CopyStatus.COMPLETE,
    DepositStatus.REJECTED: CopyStatus.REJECTED,
    DepositStatus.FAILED: CopyStatus.STALLED,
}


@runtime_checkable
class Rechecks(Protocol):
    """A status resolver that also re-checks ACCEPTED deposits (dtool: is the dataset
    still registered?). ``recheck`` returns None when all is well, else the deposit's
    new statusMessage (having repaired what it could); it raises DepositError when the
    remote cannot say."""

    def recheck(self, status_ref: str) -> str | None: ...


@dataclass(frozen=True)
class Watch:
    """When a SUBMITTED deposit was sent and how long it may stay so (stale.py)."""

    since: datetime | None
    limit: timedelta


@dataclass(frozen=True)
class Outcome:
    """What ``refresh`` or ``retry`` did to one deposit, for the jobs' logs and the CLI."""

    deposit_id: str
    ok: bool
    status: str
    message: str = ""
    changed: bool = False
    skipped: bool = False


IN_PROGRESS = "still in progress at the repository"
WHEN_SENT = "; when sent: "  # a refresh's word first, then what the transfer recorded
# How what a refresh writes on a SUBMITTED deposit begins (never its transfer's note).
REFRESH_WORDS = (IN_PROGRESS, STALLED, "no depositStatusRef", "cannot follow the status",
                 "the repository's protocol has no status", "status check failed")


def with_sent_note(heard: str, current: str | None) -> str:
    """``heard`` (a refresh's word on a SUBMITTED deposit) followed by what its transfer
    recorded, kept from the ``current`` message (e.g. which item a corrected
    resubmission updated, what the package left out): a refresh never loses it."""
    current = current or ""
    if WHEN_SENT in current:
        sent = current.partition(WHEN_SENT)[2]
    else:
        sent = "" if current.startswith(REFRESH_WORDS) else current
    return f"{heard}{WHEN_SENT}{sent}" if sent else heard


def status_word(deposit: Deposit) -> str:
    return deposit.deposit_status.value if deposit.deposit_status else "(pending)"


def due_retry(deposit: Deposit, clock: Clock) -> str | None:
    """The retry job's precondition: RETRY and due, or never attempted (stranded: its
    worker died; the lease is ours now)."""
    status = deposit.deposit_status
    if status is None:
        return None
    if status is not DepositStatus.RETRY:
        return f"{status.value}, not RETRY"
    due = deposit.next_attempt_at
    if due is not None and due > clock.now():
        return f"not due before {due.isoformat(timespec='seconds')}"
    return None


def operator_retry(deposit: Deposit, clock: Clock) -> str | None:
    """The operator's precondition: any RETRY or FAILED deposit."""
    if deposit.deposit_status in (DepositStatus.RETRY, DepositStatus.FAILED):
        return None
    return f"{status_word(deposit)}: only FAILED and RETRY deposits are retried"


class DepositProcessor:
    """Status processing, refresh and retry of existing deposits."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.task = DepositTask(ctx)

    # -- DepositStatus messages ---------------------------------------------------------

    def process(self, deposit_id: str) -> None:
        """Handle a DepositStatus message. NotFound propagates (dead-lettered)."""
        known = self.ctx.memory.knows("Deposit", deposit_id)
        if known is not None:
            log.debug("deposit %s: %s; the message changes nothing", deposit_id, known)
            return

        def look(uow: UnitOfWork) -> tuple[Deposit, bool]:
            deposit = uow.records.get(Deposit, deposit_id)
            status = deposit.deposit_status
            if status is None or not status.is_terminal:  # open: nothing to settle yet
                return deposit, False
            submission = get_or_none(uow, Submission, deposit.submission)
            return deposit, (submission is not None
                             and aggregate_for(uow, submission) is not None)

        deposit, unsettled = run_unit(self.ctx.database, look, read_only=True)
        if deposit.deposit_status is DepositStatus.SUBMITTED:
            self.refresh(deposit_id)
        elif unsettled and deposit.submission:
            self.settle(deposit.submission)
        else:
            log.debug("deposit %s is %s; the message changes nothing", deposit_id,
                      status_word(deposit))

    def settle(self, submission_id: str) -> None:
        run_unit(self.ctx.database, lambda uow: settle_aggregate(
            uow, uow.records.get(Submission, submission_id)),
            what=f"submission {submission_id} aggregate")

    # -- refresh ------------------------------------------------------------------------

    def refresh(self, deposit_id: str) -> Outcome:
        """Resolve a SUBMITTED deposit's status ref and record what it says; re-check an
        ACCEPTED one whose resolver ``Rechecks``."""

        def look(uow: UnitOfWork) -> tuple[Deposit, Repository | None, datetime | None]:
            deposit = uow.records.get(Deposit, deposit_id)
            since = submitted_since(uow.state.attempts(deposit_id), None)
            if since is None and deposit.deposit_status is DepositStatus.SUBMITTED:
                # sent by another system (PASS itself): since its submission, then
                submission = get_or_none(uow, Submission, deposit.submission)
                since = submission.submitted_date if submission else None
            return deposit, get_or_none(uow, Repository, deposit.repository), since

        deposit, repository, since = run_unit(self.ctx.database, look, read_only=True)
        if deposit.deposit_status is DepositStatus.ACCEPTED:
            return self._recheck(deposit, repository)
        if deposit.deposit_status is not DepositStatus.SUBMITTED:
            return Outcome(deposit_id, True, status_word(deposit),
                           "not SUBMITTED; nothing to refresh", skipped=True)
        watch = Watch(since, self._stale_after(repository))
        if not deposit.deposit_status_ref:
            return self._note(deposit, "no depositStatusRef to follow; the repository gave none",
                              watch=watch)
        if repository is None:
            return self._note(deposit, "cannot follow the status: repository "
                                       f"{deposit.repository} does not exist", watch=watch)
        try:
            resolver = self.ctx.targets.resolver_for(repository)
        except RepositoryConfigError as exc:
            return self._note(deposit, f"cannot follow the status: {exc}", watch=watch)
        if resolver is None:
            return self._note(deposit, "the repository's protocol has no status to follow",
                              watch=watch)
        try:
            resolved = resolver.resolve(deposit.deposit_status_ref)
        except DepositError as exc:
            # A status fault says nothing about the package: stay SUBMITTED, say why.
            log.warning("deposit %s: status check failed: %s", deposit_id, exc)
            return self._note(deposit, f"status check failed: {exc}",
                              transient=isinstance(exc, Transient), watch=watch)
        outcome = self._apply(deposit, resolved, watch)
        self.ctx.metrics.refreshed(repository, outcome.status, outcome.changed)
        return outcome

    def rechecker(self, repository: Repository | None) -> Rechecks | None:
        """The resolver re-checking ACCEPTED deposits of ``repository``, if it has one."""
        try:
            resolver = (self.ctx.targets.resolver_for(repository)
                        if repository is not None else None)
        except RepositoryConfigError:
            return None
        return resolver if isinstance(resolver, Rechecks) else None

    def _recheck(self, deposit: Deposit, repository: Repository | None) -> Outcome:
        """An ACCEPTED deposit stays ACCEPTED (terminal); its statusMessage says what a
        re-check found wrong or repaired. Nothing is written when all is well."""
        resolver = self.rechecker(repository)
        if resolver is None or not deposit.deposit_status_ref:
            return Outcome(deposit.id, True, status_word(deposit),
                           "ACCEPTED: only SUBMITTED deposits are refreshed, and ACCEPTED "
                           "ones whose repository re-checks them (dtool); this one's does "
                           "not", skipped=True)
        try:
            message = resolver.recheck(deposit.deposit_status_ref)
        except DepositError as exc:
            log.warning("deposit %s: re-check of the accepted deposit failed: %s",
                        deposit.id, exc)
            return Outcome(deposit.id, False, status_word(deposit),
                           f"re-check failed: {exc}")
        if message is None:
            return Outcome(deposit.id, True, status_word(deposit), "still in place")
        log.warning("deposit %s: %s", deposit.id, message)
        if message == deposit.status_message:  # already said: nothing to write
            return Outcome(deposit.id, True, status_word(deposit), message)
        ref = deposit.deposit_status_ref

        def note(uow: UnitOfWork) -> bool:
            current = uow.records.get(Deposit, deposit.id)
            if (current.deposit_status is not DepositStatus.ACCEPTED
                    or current.deposit_status_ref != ref or current.status_message == message):
                return False
            current.status_message = message
            return True

        changed = run_unit(self.ctx.database, note, what=f"deposit {deposit.id} re-check")
        return Outcome(deposit.id, True, status_word(deposit), message, changed=changed)

    def _stale_after(self, repository: Repository | None) -> timedelta:
        try:
            if repository is not None:
                return self.ctx.health.stale_after(self.ctx.targets.config_for(repository))
        except RepositoryConfigError:
            pass
        return timedelta(days=self.ctx.health.stale_after_days)

    def _note(self, deposit: Deposit, message: str, transient: bool = False,
              watch: Watch | None = None) -> Outcome:
        """Keep a SUBMITTED deposit as it is but let the operator see why (on change);
        one SUBMITTED too long has its copy STALLED (service/stale.py). What its transfer
        recorded stays after ``message`` (``with_sent_note``)."""
        message = with_sent_note(message, deposit.status_message)
        stalled = (stale_message(watch.since, watch.limit, self.ctx.clock.now(), message)
                   if watch is not None else None)
        if stalled is not None:
            return self._stall(deposit, stalled)
        if not transient and deposit.status_message != message:
            def note(uow: UnitOfWork) -> None:
                current = uow.records.get(Deposit, deposit.id)
                if current.deposit_status is DepositStatus.SUBMITTED:
                    current.status_message = message

            run_unit(self.ctx.database, note, what=f"deposit {deposit.id} note")
        return Outcome(deposit.id, False, status_word(deposit), message)

    def _stall(self, deposit: Deposit, message: str) -> Outcome:
        """Copy STALLED, the message saying since when and what was last heard."""
        if deposit.status_message != message:  # else already recorded: no write

            def stall(uow: UnitOfWork) -> None:
                current = uow.records.get(Deposit, deposit.id)
                if current.deposit_status is not DepositStatus.SUBMITTED:
                    return
                current.status_message = message
                copy = get_or_none(uow, RepositoryCopy, current.repository_copy)
                if copy is not None:
                    copy.copy_status = CopyStatus.STALLED
                announce(uow, self.ctx, current)

            run_unit(self.ctx.database, stall, what=f"deposit {deposit.id} stalled")
            log.warning("deposit %s: %s", deposit.id, message)
        return Outcome(deposit.id, False, status_word(deposit), message)

    def _apply(self, deposit: Deposit, resolved: ResolvedStatus, watch: Watch | None = None
               ) -> Outcome:
        new = resolved.deposit_status
        words = resolved.description or resolved.state
        if new is None or new is DepositStatus.SUBMITTED or new is DepositStatus.RETRY:
            noted = self._note(deposit, f"{IN_PROGRESS} ({words})", watch=watch)
            return noted if noted.message.startswith(STALLED) else Outcome(
                deposit.id, True, status_word(deposit), noted.message)
        message = f"{resolved.state}: {words}" if words != resolved.state else resolved.state
        if new is DepositStatus.FAILED:
            message = f"the repository reports a failure ({message}); {retry_hint(deposit.id)}"
        ref = deposit.deposit_status_ref

        def move(uow: UnitOfWork) -> tuple[Deposit, bool]:
            current = uow.records.get(Deposit, deposit.id)
            if current.deposit_status is not DepositStatus.SUBMITTED:
                return current, False  # terminal, or moved by someone else: never back
            if current.deposit_status_ref != ref:
                return current, False  # re-sent meanwhile: this answer is about an old one
            current.deposit_status = new
            current.status_message = message
            if current.repository_copy:
                try:
                    uow.records.get(RepositoryCopy, current.repository_copy).copy_status = (
                        COPY_STATUS_FOR[new])
                except NotFound:
                    log.error("deposit %s: its RepositoryCopy %s is missing", deposit.id,
                              current.repository_copy)
            announce(uow, self.ctx, current)
            if current.submission:
                settle_aggregate(uow, uow.records.get(Submission, current.submission))
            return current, True

        saved, changed = run_unit(self.ctx.database, move, what=f"deposit {deposit.id} status")
        if changed:
            log.info("deposit %s: %s (%s)", deposit.id, new.value, resolved.state)
        return Outcome(deposit.id, new is not DepositStatus.FAILED, status_word(saved), message,
                       changed=changed)

    # -- retry --------------------------------------------------------------------------

    def retry(self, deposit_id: str, trigger: str = TRIGGER_JOB, due_only: bool = True
              ) -> Outcome:
        """Transfer a RETRY (or, for an operator, FAILED) deposit again, under its lease.

        ``due_only``: only a RETRY deposit whose next attempt time has come, or one with
        no status whose worker died (the job); otherwise any RETRY or FAILED deposit
        (the operator's ``retry``).
        """
        ready = due_retry if due_only else operator_retry
        loaded = run_unit(self.ctx.database, lambda uow: self._load(uow, deposit_id),
                          read_only=True)
        deposit = loaded.deposit if isinstance(loaded, Work) else loaded
        reason = ready(deposit, self.ctx.clock)
        if reason is not None:  # checked again under the lease by the task
            return Outcome(deposit_id, not due_only, status_word(deposit), reason, skipped=True)
        if not isinstance(loaded, Work):
            return self._unusable(deposit)
        intent = self.task.run(loaded, trigger, ready, wait=False)
        saved = intent.deposit
        if intent.skipped is not None:
            return Outcome(deposit_id, False, status_word(saved), intent.skipped, skipped=True)
        ok = saved.deposit_status in (DepositStatus.SUBMITTED, DepositStatus.ACCEPTED)
        return Outcome(deposit_id, ok, status_word(saved), saved.status_message or "",
                       changed=True)

    def _load(self, uow: UnitOfWork, deposit_id: str) -> Work | Deposit:
        """The deposit and what running it needs; the bare deposit when its submission
        or repository is missing or its metadata unusable (``_unusable`` says why)."""
        deposit = uow.records.get(Deposit, deposit_id)
        try:
            graph = Graph(tuple(uow.records.submission_graph(deposit.submission or "")))
        except NotFound:
            return deposit
        repository = get_or_none(uow, Repository, deposit.repository)
        if repository is None:
            return deposit
        submission = graph.submission
        try:
            content = build_deposit_submission(submission, graph)
        except ModelError:
            return deposit
        return Work(deposit, submission, content, repository)

    def _unusable(self, deposit: Deposit) -> Outcome:
        """FAILED, saying what is missing, when the deposit cannot even be assembled."""

        def fail(uow: UnitOfWork) -> Deposit:
            current = uow.records.get(Deposit, deposit.id)
            submission = get_or_none(uow, Submission, current.submission)
            if submission is None:
                message = (f"submission {current.submission} does not exist; the deposit "
                           "cannot be made")
            elif get_or_none(uow, Repository, current.repository) is None:
                message = missing_repository(current.repository or "", current.id)
            else:
                try:
                    build_deposit_submission(submission, Graph(tuple(
                        uow.records.submission_graph(submission.id))))
                    return current
                except ModelError as exc:
                    message = f"submission metadata is unusable: {exc}; {retry_hint(current.id)}"
            if set_status(current, DepositStatus.FAILED, message, None):
                announce(uow, self.ctx, current)
            return current

        saved = run_unit(self.ctx.database, fail, what=f"deposit {deposit.id} retry")
        return Outcome(deposit.id, False, status_word(saved), saved.status_message or "",
                       changed=True)
