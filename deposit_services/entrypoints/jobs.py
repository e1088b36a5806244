"""Scheduled jobs: catch up on what messages did not finish (apscheduler 3, in-process).

Every ``PASS_DEPOSIT_JOBS_DEFAULT_INTERVAL_MS`` (default 10 minutes), unless
``PASS_DEPOSIT_JOBS_DISABLED``:

- refresh: resolve the status of SUBMITTED deposits of submissions submitted within
  the refresh window (``DEPOSIT_REFRESH_WINDOW_DAYS``, default 10, widened to a day past
  the longest stale-after time so every deposit is seen stale once), and of those whose
  copy is STALLED whatever their age (service/stale.py); and re-check ACCEPTED deposits
  whose protocol's resolver re-checks them (dtool: still registered in dserver?), each at
  most once per ``RECHECK_EVERY`` per process (last-checked times kept in memory: a
  restart checks them again once);
- retry: transfer again the RETRY deposits whose next attempt time has come (a deposit
  going to RETRY also wakes this job at its next attempt time, so short backoffs are
  kept without a short interval), and run stranded deposits: created but never
  recorded, because their worker died while another one had already taken the
  submission's message (their lease must be free: a live worker renews it);
- submission status: recompute Submission.submissionStatus (PASS's rule);
- outbox: publish the messages a worker recorded and could not publish before it
  stopped (older than a minute);
- notices (when a repository in repositories.json asks for them): a digest of each
  repository's failed, rejected and stale deposits to its contacts (service/notices.py);
- nihms-mail (when ``PASS_DEPOSIT_NIHMS_EMAIL_HOST`` is set), every
  ``PASS_DEPOSIT_NIHMS_EMAIL_DELAY`` ms: read NIHMS's "Bulk submission" mails and record
  what they say of each package (``entrypoints/nihms_mail.py``);
- unstarted: process submissions that are ready (submitted, NOT_STARTED) and were still
  unclaimed a whole cycle after this replica first saw them: their SubmissionReady
  message was lost (``submit`` stored the graph while the broker was down, or a
  producer wrote the store and never sent it). The claim is a compare-and-set, so a
  message that turns up late finds the submission already taken.

With N replicas on one store, refresh, submission-status, unstarted and outbox run on
one replica per cycle: a job lease (``job:<name>``, held for most of an interval) is
taken before the run and the losers skip the cycle. Each of them first reads whether it
has anything to do (one read unit; the probes of one process run one at a time, so they
share one pooled connection) and takes its lease only then: an idle worker's cycle
writes nothing. The lease is still a compare-and-set taken before the work, and the
work reads again under it. The retry job runs on every replica,
like competing consumers: each due deposit is claimed by its own lease and re-checked
under it (still RETRY, still due), so a deposit is retried once per due time and never
twice at the same time, while several replicas share a backlog.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler

from deposit_services.entrypoints.nihms_mail import build_reader, mail_enabled, run_pass
from deposit_services.errors import DepositServicesError
from deposit_services.model.entities import (
    AggregatedDepositStatus,
    CopyStatus,
    Deposit,
    DepositStatus,
    Repository,
    RepositoryCopy,
    Submission,
)
from deposit_services.service import notices
from deposit_services.service.context import ServiceContext
from deposit_services.service.heartbeat import Heartbeat
from deposit_services.service.lifecycle import DepositProcessor
from deposit_services.service.outcome import TRIGGER_JOB
from deposit_services.service.submission_status import recompute, status_changes
from deposit_services.service.submissions import SubmissionProcessor
from deposit_services.settings import Settings
from deposit_services.store.uow import UnitOfWork, run_unit

log = logging.getLogger(__name__)

REFRESH = "refresh"
RETRY = "retry"
SUBMISSION_STATUS = "submission-status"
UNSTARTED = "unstarted"
OUTBOX = "outbox"
NOTICES = "notices"
NIHMS_MAIL = "nihms-mail"
WAKE = "retry-wake"
# Due times within one slot of this length share one wake-up, at the end of the slot.
WAKE_WINDOW = timedelta(seconds=1)
# An ACCEPTED deposit whose resolver re-checks it is re-checked at most this often.
RECHECK_EVERY = timedelta(days=1)
# An outbox message older than this was left by a worker that stopped between its
# commit and its publish (a live one publishes within milliseconds of the commit).
OUTBOX_RELAY_AGE_S = 60.0


def wake_slot(when: datetime) -> datetime:
    """The end of the ``WAKE_WINDOW`` slot that holds ``when``: the first slot boundary at
    or after it (UTC), so that a wake-up there finds every deposit of the slot due."""
    when = when.astimezone(UTC)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    slots = -((epoch - when) // WAKE_WINDOW)  # ceiling division of timedeltas
    return epoch + slots * WAKE_WINDOW


def due_retries(uow: UnitOfWork, now: datetime) -> list[Deposit]:
    """RETRY deposits whose next attempt time has come, soonest first."""
    due = [(d.next_attempt_at or now, d)
           for d in uow.records.find(Deposit, deposit_status=DepositStatus.RETRY)
           if d.next_attempt_at is None or d.next_attempt_at <= now]
    return [d for _, d in sorted(due, key=lambda pair: pair[0])]


def stranded(uow: UnitOfWork) -> list[Deposit]:
    """Deposits with no status yet whose submission is being processed."""
    deposits = uow.records.find(Deposit, deposit_status=None)
    submissions = {s.id: s for s in uow.records.get_many(
        Submission, [d.submission for d in deposits if d.submission])}
    return [d for d in deposits if d.submission in submissions and
            submissions[d.submission].aggregated_deposit_status
            is AggregatedDepositStatus.IN_PROGRESS]


def refreshable(uow: UnitOfWork, now: datetime, window: timedelta) -> list[Deposit]:
    """SUBMITTED deposits whose submission was submitted within ``window`` of ``now``
    (or has no submittedDate), and those whose copy is STALLED."""
    since = now - window
    deposits = uow.records.find(Deposit, deposit_status=DepositStatus.SUBMITTED)
    dates = {s.id: s.submitted_date for s in uow.records.get_many(
        Submission, [d.submission for d in deposits if d.submission])}
    stalled = {c.id for c in uow.records.find(RepositoryCopy, copy_status=CopyStatus.STALLED)}
    return [d for d in deposits
            if (when := dates.get(d.submission or "")) is None or when >= since
            or d.repository_copy in stalled]


class Jobs:
    """The scheduler and its three jobs. ``ctx`` is the service context to use (its
    retry hook wakes the retry job)."""

    def __init__(self, ctx: ServiceContext, settings: Settings) -> None:
        self.interval = max(settings.jobs_interval_ms / 1000.0, 0.1)
        config = ctx.targets.repositories
        self.window = max([timedelta(days=settings.refresh_window_days), *(
            ctx.health.stale_after(e) + timedelta(days=1) for e in config.entries.values())])
        self.notify = (notices.SmtpSender(settings) if any(
            e.operations.notices for e in config.entries.values()) else None)
        self.sender = settings.smtp_sender
        # An owner of our own: leases are re-entrant per owner, and the jobs must not
        # share a deposit's lease with this process's message-handling threads.
        self.ctx = replace(ctx, owner=f"{ctx.owner}/jobs", retry_scheduled=self.wake_retry)
        self.processor = DepositProcessor(self.ctx)
        self.submissions = SubmissionProcessor(self.ctx)
        self.mail_interval = max(settings.nihms_email_delay_ms / 1000.0, 0.1)
        self.mail_reader = build_reader(self.ctx, settings) if mail_enabled(settings) else None
        self._unstarted_seen: set[str] = set()
        self._rechecked: dict[str, datetime] = {}  # deposit id -> last re-check
        self._retry_lock = threading.Lock()  # one retry run per process at a time
        # The jobs' reads for work (the probes, retry's) run one at a time: all the jobs
        # start at once, and an idle start-up then needs one pooled connection, not one
        # per job (each new connection is a committed transaction on PostgreSQL).
        self._probe_lock = threading.Lock()
        # Per-cycle jobs that read whether they have work before taking their lease.
        self._probes: dict[str, Callable[[], bool]] = {
            REFRESH: self.refresh_due, SUBMISSION_STATUS: self.status_due,
            UNSTARTED: self.unstarted_due, OUTBOX: self.outbox_due}
        self._scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1,
                          "misfire_grace_time": max(int(self.interval), 1)},
        )

    def start(self) -> None:
        first = self.ctx.clock.now()
        jobs = [(REFRESH, self.run_refresh, True), (RETRY, self.run_retry, False),
                (SUBMISSION_STATUS, self.run_submission_status, True),
                (UNSTARTED, self.run_unstarted, True), (OUTBOX, self.run_outbox, True)]
        if self.notify is not None:  # no repository asks for notices: no job, no lease
            jobs.append((NOTICES, self.run_notices, True))
        for name, func, per_cycle in jobs:
            self._scheduler.add_job(self._guarded, "interval",
                                    args=(name, self.ctx.metrics.job(name, func), per_cycle),
                                    seconds=self.interval, id=name, next_run_time=first)
        if self.mail_reader is not None:
            self._scheduler.add_job(
                self._guarded, "interval",
                args=(NIHMS_MAIL, self.ctx.metrics.job(NIHMS_MAIL, self.run_nihms_mail), True,
                      self.mail_interval),
                seconds=self.mail_interval, id=NIHMS_MAIL, next_run_time=first)
            log.info("job nihms-mail started: every %.1f s", self.mail_interval)
        self._scheduler.start()
        log.info("jobs started: %s every %.1f s", ", ".join(name for name, _, _ in jobs),
                 self.interval)

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)
            log.info("jobs stopped")

    def wake_retry(self, when: datetime) -> None:
        """Run the retry job at ``when`` (a RETRY deposit's next attempt time).

        Every due time gets a wake-up of its own: one date job per ``WAKE_WINDOW`` slot,
        run at the end of the slot, so it is never before any due time in it (a run
        before a deposit is due skips it) and a burst of RETRYs costs one run per slot,
        not one per deposit. An earlier wake-up no longer stands in for a later one.
        """
        if not self._scheduler.running:
            return
        slot = wake_slot(when)
        self._scheduler.add_job(self._wake, "date", run_date=slot,
                                id=f"{WAKE}@{slot.isoformat()}", replace_existing=True)

    # -- the jobs ------------------------------------------------------------------------

    def _guarded(self, name: str, func: Callable[[], object], per_cycle: bool,
                 interval: float | None = None) -> None:
        """Run one job (if ``per_cycle``: only if this replica wins the cycle's lease, held
        for most of the job's ``interval``, default the jobs' one); never raise, so a
        failed run does not stop the schedule."""
        lease = f"job:{name}"
        every = interval or self.interval
        seconds = max(every * 0.9, 1.0)
        database = self.ctx.database

        def take(uow: UnitOfWork) -> bool:
            return uow.state.acquire_lease(lease, self.ctx.owner, seconds)

        try:
            if not per_cycle:
                func()
                return
            probe = self._probes.get(name)
            if probe is not None:
                with self._probe_lock:
                    if not probe():
                        log.debug("job %s: nothing to do this cycle", name)
                        return
            if not run_unit(database, take, what=f"job {name} lease"):
                log.debug("job %s: another replica runs this cycle", name)
                return
            with Heartbeat(seconds / 3, lambda: run_unit(database, take), name=lease):
                func()
        except Exception:
            log.exception("job %s failed; it runs again in %.1f s", name, every)

    def _wake(self) -> None:
        try:
            self.run_retry()
        except Exception:
            log.exception("retry wake-up failed; the periodic retry job will catch up")

    # -- probes: does a per-cycle job have work? (one read unit, writes nothing) --------

    def refresh_due(self) -> bool:
        now = self.ctx.clock.now()
        return bool(run_unit(self.ctx.database, lambda uow: refreshable(
            uow, now, self.window) or self._recheck_due(uow, now), read_only=True))

    def status_due(self) -> bool:
        return bool(run_unit(self.ctx.database, lambda uow: status_changes(uow, None),
                             read_only=True))

    def unstarted_due(self) -> bool:
        """Any ready submission (with none, what this replica saw before is forgotten,
        as a run with nothing ready would)."""
        if not self._ready():
            self._unstarted_seen = set()
            return False
        return True

    def outbox_due(self) -> bool:
        return self.ctx.database.publisher is not None and bool(run_unit(
            self.ctx.database, lambda uow: uow.state.messages(OUTBOX_RELAY_AGE_S),
            read_only=True))

    def _ready(self) -> set[str]:
        """Submissions that are submitted and not started (nobody claimed them)."""
        return run_unit(self.ctx.database, lambda uow: {
            s.id
            for status in (AggregatedDepositStatus.NOT_STARTED, None)
            for s in uow.records.find(Submission, aggregated_deposit_status=status)
            if s.submitted
        }, read_only=True)

    # -- runs ----------------------------------------------------------------------------

    def run_refresh(self) -> int:
        """Refresh SUBMITTED deposits in the window; returns how many changed."""
        changed = 0
        now = self.ctx.clock.now()
        work, recheck = run_unit(self.ctx.database, lambda uow: (
            refreshable(uow, now, self.window), self._recheck_due(uow, now)), read_only=True)
        self._rechecked.update((d.id, now) for d in recheck)
        work += recheck
        for deposit in work:
            try:
                if self.processor.refresh(deposit.id).changed:
                    changed += 1
            except DepositServicesError as exc:
                log.warning("refresh of deposit %s failed: %s", deposit.id, exc)
        if changed:
            log.info("refresh job: %d deposit(s) changed", changed)
        return changed

    def _recheck_due(self, uow: UnitOfWork, now: datetime) -> list[Deposit]:
        """ACCEPTED deposits whose resolver re-checks them, not re-checked here within
        ``RECHECK_EVERY`` (``run_refresh`` marks them checked)."""
        repositories = [r.id for r in uow.records.find(Repository)
                        if self.processor.rechecker(r) is not None]
        return [d for r in repositories
                for d in uow.records.find(Deposit, repository=r,
                                          deposit_status=DepositStatus.ACCEPTED)
                if d.deposit_status_ref and ((last := self._rechecked.get(d.id)) is None
                                             or now - last >= RECHECK_EVERY)]

    def run_retry(self) -> int:
        """Retry the due RETRY deposits; returns how many were transferred again."""
        done = 0
        with self._retry_lock:
            now = self.ctx.clock.now()
            with self._probe_lock:
                work = run_unit(self.ctx.database,
                                lambda uow: stranded(uow) + due_retries(uow, now),
                                read_only=True)
            for deposit in work:
                try:
                    outcome = self.processor.retry(deposit.id, TRIGGER_JOB, due_only=True)
                except DepositServicesError as exc:
                    log.warning("retry of deposit %s failed: %s", deposit.id, exc)
                    continue
                if not outcome.skipped:
                    done += 1
                    log.info("retry job: deposit %s is now %s", deposit.id, outcome.status)
        return done

    def run_submission_status(self) -> int:
        return recompute(self.ctx.database)

    def run_nihms_mail(self) -> int:
        """One pass over NIHMS's mails; returns how many deposits changed (a mailbox
        fault is logged with what to do, and the job runs again at its next time)."""
        if self.mail_reader is None:
            return 0
        summary = run_pass(self.mail_reader)
        return len(summary.changed) if summary is not None else 0

    def run_notices(self) -> int:
        """Send the repositories' notices that are due; returns how many went."""
        if self.notify is None:
            return 0
        return len(notices.send_notices(self.ctx.database, self.ctx.targets.repositories,
                                        self.notify, self.sender, self.ctx.clock.now()))

    def run_outbox(self) -> int:
        """Publish what a stopped worker left in the outbox."""
        return self.ctx.database.relay_outbox(OUTBOX_RELAY_AGE_S)

    def run_unstarted(self) -> int:
        """Process ready submissions still unclaimed since this job's previous run here;
        returns how many were started."""
        ready = self._ready()
        late, self._unstarted_seen = ready & self._unstarted_seen, ready
        for submission_id in sorted(late):
            log.warning("submission %s is ready but nobody claimed it for a whole cycle (its "
                        "SubmissionReady message was lost?); processing it now", submission_id)
            try:
                self.submissions.process(submission_id)
            except DepositServicesError as exc:
                log.warning("unstarted submission %s failed: %s", submission_id, exc)
        return len(late)
