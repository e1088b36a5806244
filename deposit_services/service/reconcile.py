"""Reconciliation: a deposit whose last attempt has an intent and no outcome.

Its worker died between sending and recording, or the transfer went out and no answer
came (``OutcomeUnknown``, recorded as RETRY with the attempt left open). Whichever
replica runs the deposit next asks the target, before anything is sent again, whether
it holds the package (``Transport.reconcile`` with what the attempt log recorded and
the submission's title); the answer settles the attempt: there (record the receipt),
not there (end it INTERRUPTED and send again), or unknown (a transient fault: leave it
open and try later; a permanent one: FAILED, telling the operator what to check).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from deposit_services.assemblers.base import Package
from deposit_services.errors import StoreError, TransferError, Transient
from deposit_services.store.base import Attempt, AttemptOutcome, PackageInfo
from deposit_services.store.uow import UnitOfWork, run_unit
from deposit_services.transports.base import Receipt

if TYPE_CHECKING:
    from deposit_services.service.context import ServiceContext
    from deposit_services.service.deposits import Intent, Work
    from deposit_services.service.targets import Target

log = logging.getLogger(__name__)


@dataclass
class Settled:
    """What reconciling found. ``intent``: send again under this (new) attempt;
    ``receipt``: ``attempt`` had arrived; ``error``: record a failure with ``message``
    (``end_attempt`` False leaves the attempt open to be checked again)."""

    intent: Intent
    receipt: Receipt | None = None
    attempt: Attempt | None = None
    error: Exception | None = None
    message: str | None = None
    end_attempt: bool = True


def reconcile(ctx: ServiceContext, work: Work, intent: Intent, target: Target,
              package: Package, trigger: str) -> Settled:
    deposit = intent.deposit
    open_attempts = [a for a in intent.attempts if a.is_open]
    last = open_attempts[-1]
    stale = open_attempts[:-1]
    if stale:  # older ones: superseded by the last
        def supersede(uow: UnitOfWork) -> None:
            for attempt in stale:
                uow.state.end_attempt(deposit.id, attempt.number, AttemptOutcome.INTERRUPTED,
                                      error="worker stopped; superseded by a later attempt")

        run_unit(ctx.database, supersede, what=f"deposit {deposit.id} reconcile")
    evidence = {
        key: value for key, value in (
            ("attempt", str(last.number)),
            ("started_at", last.started_at.isoformat()),
            ("package_name", last.package.name if last.package else None),
            ("package_md5", last.package.md5 if last.package else None),
            ("edit_iri", last.edit_iri),
            ("access_url", last.access_url),
            ("status_ref", last.status_ref or deposit.deposit_status_ref),
            ("title", work.content.title),  # for targets that list items by title
        ) if value
    }
    if last.package is not None and last.package.name != package.name:
        log.warning("deposit %s: attempt %d sent %s, the package is now %s (no "
                    "submittedDate fixes its name); the target is checked for the new one",
                    deposit.id, last.number, last.package.name, package.name)
    log.warning("deposit %s: attempt %d (started %s by %s) has no recorded outcome (%s); "
                "asking %s whether it holds the package", deposit.id, last.number,
                last.started_at, last.owner, last.error or "its worker stopped",
                target.config.key)
    try:
        receipt = target.transport.reconcile(package, evidence)
    except StoreError:
        raise
    except TransferError as exc:
        if isinstance(exc, Transient):  # cannot check now: leave it open, look again later
            return Settled(intent, error=exc, end_attempt=False, message=(
                f"checking whether attempt {last.number} reached the target failed: {exc}"))
        return Settled(intent, error=exc, message=(
            f"the outcome of attempt {last.number} (package {package.name}, md5 "
            f"{package.md5}) is unknown: {exc}. Check whether {target.config.key} holds it; "
            f"if not, run `deposit-services retry --uri {deposit.id}` to send it again"))
    if receipt is not None:
        log.info("deposit %s: attempt %d had reached %s; recording it", deposit.id,
                 last.number, target.config.key)
        return Settled(intent, receipt=receipt, attempt=last)
    info = PackageInfo(package.name, package.size, package.md5, package.sha256)

    def send_again(uow: UnitOfWork) -> Attempt:
        uow.state.end_attempt(deposit.id, last.number, AttemptOutcome.INTERRUPTED,
                              error="no outcome was recorded (the worker stopped, or no "
                                    "answer came); the target does not hold the package: "
                                    "sending again")
        return uow.state.begin_attempt(deposit.id, trigger=trigger, owner=ctx.owner,
                                       package=info)

    attempt = run_unit(ctx.database, send_again, what=f"deposit {deposit.id} reconcile")
    intent.attempts = [*intent.attempts, attempt]
    intent.attempt = attempt
    return Settled(intent)
