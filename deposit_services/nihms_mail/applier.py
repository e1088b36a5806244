"""What one NIHMS mail says, recorded in one unit of work.

For each package the mail names, the deposit whose status ref is
``nihms-package:<package id>`` (found among the deposits of the submission the package
id names, else among all SUBMITTED deposits) is moved as PASS does:

- taken ("submitted successfully"): the deposit stays SUBMITTED with
  ``nihms-id:<manuscript id>``, the manuscript id joins its copy's externalIds (the copy
  stays IN_PROGRESS: NIHMS has the manuscript, PubMed Central does not have it yet);
- refused: REJECTED with NIHMS's words as statusMessage, the copy REJECTED, the
  submission's aggregated status settled.

A deposit already moved by this mail (a second reading, or a worker that died before
the mail was flagged seen) is left as it is: the unit changes nothing and announces
nothing. A terminal deposit is never moved back. A package no deposit has is reported
(``MailOutcome.unknown``), never guessed at.
"""

from __future__ import annotations

import logging
import posixpath
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from deposit_services.model.entities import (
    CopyStatus,
    Deposit,
    DepositStatus,
    Repository,
    RepositoryCopy,
    Submission,
)
from deposit_services.nihms_mail.parser import MailReport, Notice, Outcome
from deposit_services.nihms_mail.refs import (
    MANUSCRIPT_REF_PREFIX,
    manuscript_ref,
    package_id,
    package_ref,
    submission_of,
)
from deposit_services.service.aggregate import settle_aggregate
from deposit_services.service.context import ServiceContext
from deposit_services.service.outcome import announce
from deposit_services.store.uow import UnitOfWork, get_or_none, run_unit

log = logging.getLogger(__name__)


@dataclass
class MailOutcome:
    """What recording one mail did: ``changed`` (deposit id, what it is now),
    ``unchanged`` (deposit ids already as the mail says), ``unknown`` (package ids no
    deposit has) and ``unread`` (texts that say nothing we know)."""

    message_id: str
    changed: list[tuple[str, str]] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    unread: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Everything the mail says is recorded: it may be flagged seen."""
        return not self.unknown and not self.unread


def _copy_package(uow: UnitOfWork, deposit: Deposit) -> str | None:
    """The package id of the file the deposit's copy points at (its access URL)."""
    copy = get_or_none(uow, RepositoryCopy, deposit.repository_copy)
    if copy is None or not copy.access_url:
        return None
    return package_id(posixpath.basename(unquote(urlsplit(copy.access_url).path)))


def find_deposits(uow: UnitOfWork, package: str) -> list[Deposit]:
    """The deposits of ``package``: status ref ``nihms-package:<package>``, or already
    moved on to ``nihms-id:`` by an earlier mail about the same package."""
    ref = package_ref(package)
    submission = submission_of(package)
    candidates = uow.records.find(Deposit, submission=submission) if submission else []
    found = [d for d in candidates if d.deposit_status_ref == ref
             or ((d.deposit_status_ref or "").startswith(MANUSCRIPT_REF_PREFIX)
                 and _copy_package(uow, d) == package)]
    if not found:  # a submission id the package name could not carry as it is
        found = [d for d in uow.records.find(Deposit, deposit_status=DepositStatus.SUBMITTED)
                 if d.deposit_status_ref == ref]
    return found


def _taken(uow: UnitOfWork, deposit: Deposit, notice: Notice, message_id: str) -> bool:
    manuscript = notice.manuscript or ""
    if deposit.deposit_status is not DepositStatus.SUBMITTED:
        return False  # terminal: never moved back
    if deposit.deposit_status_ref == manuscript_ref(manuscript):
        return False  # this mail, read before
    if deposit.deposit_status_ref != package_ref(notice.package):
        log.warning("deposit %s already has %s; NIHMS's mail %s names manuscript %s for "
                    "package %s: left as it is, check it in NIHMS", deposit.id,
                    deposit.deposit_status_ref, message_id, manuscript, notice.package)
        return False
    deposit.deposit_status_ref = manuscript_ref(manuscript)
    deposit.status_message = (f"NIHMS took package {notice.package} as manuscript "
                              f"{manuscript}: {notice.text}")
    copy = get_or_none(uow, RepositoryCopy, deposit.repository_copy)
    if copy is not None and manuscript not in copy.external_ids:
        copy.external_ids = [*copy.external_ids, manuscript]
    return True


def _refused(uow: UnitOfWork, deposit: Deposit, notice: Notice) -> bool:
    if deposit.deposit_status is not DepositStatus.SUBMITTED:
        return False  # terminal (this mail read before, or another outcome): never back
    deposit.deposit_status = DepositStatus.REJECTED
    deposit.status_message = notice.text
    copy = get_or_none(uow, RepositoryCopy, deposit.repository_copy)
    if copy is not None:
        copy.copy_status = CopyStatus.REJECTED
    submission = get_or_none(uow, Submission, deposit.submission)
    if submission is not None:
        settle_aggregate(uow, submission)
    return True


def record_mail(ctx: ServiceContext, report: MailReport, message_id: str) -> MailOutcome:
    """Record every notice of one mail in one unit of work (run again from fresh reads
    if it loses a race); returns what it did."""

    counted: list[tuple[Repository, str]] = []  # what the committed run moved

    def record(uow: UnitOfWork) -> MailOutcome:
        counted.clear()  # a run that lost a race counts nothing
        outcome = MailOutcome(message_id, unread=list(report.unknown))
        for notice in report.notices:
            deposits = find_deposits(uow, notice.package)
            if not deposits:
                outcome.unknown.append(notice.package)
                continue
            for deposit in deposits:
                moved = (_taken(uow, deposit, notice, message_id)
                         if notice.outcome is Outcome.SUBMITTED
                         else _refused(uow, deposit, notice))
                if moved:
                    announce(uow, ctx, deposit)
                    repository = get_or_none(uow, Repository, deposit.repository)
                    if repository is not None and deposit.deposit_status is not None:
                        counted.append((repository, deposit.deposit_status.value))
                    outcome.changed.append((deposit.id, _word(deposit)))
                else:
                    outcome.unchanged.append(deposit.id)
        return outcome

    outcome = run_unit(ctx.database, record, what=f"NIHMS mail {message_id}")
    for repository, status in counted:  # a settled one (REJECTED) in deposits_total
        ctx.metrics.refreshed(repository, status, changed=True)
    return outcome


def _word(deposit: Deposit) -> str:
    status = deposit.deposit_status.value if deposit.deposit_status else "(pending)"
    return f"{status} {deposit.deposit_status_ref or ''}".strip()
