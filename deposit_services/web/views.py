"""What the dashboard's pages show, read from the records and the worker state in one
read-only unit each (no page writes anything)."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from deposit_services.entrypoints.reports import status_report
from deposit_services.messaging.base import Broker
from deposit_services.model.entities import (
    Deposit,
    DepositStatus,
    Publication,
    Repository,
    RepositoryCopy,
    Submission,
)
from deposit_services.service.health import HEALTHY, describe
from deposit_services.store.base import Attempt
from deposit_services.store.uow import Database, UnitOfWork, get_or_none, run_unit

log = logging.getLogger(__name__)

FAILURE_DAYS = 7
DEPOSIT_STATUSES = [s.value for s in DepositStatus] + ["(pending)"]


@dataclass
class Overview:
    counts: dict[str, Counter[str]]  # repository key -> deposit status -> how many
    totals: Counter[str]
    submissions: Counter[str]
    retry_backlog: list[dict[str, Any]]
    failures: list[dict[str, Any]]
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    dead_letters_note: str | None = None
    # repository key -> its state as `status` shows it; only those not healthy
    health: dict[str, str] = field(default_factory=dict)


def overview(database: Database, broker: Broker | None, queues: Sequence[str],
             now: datetime) -> Overview:
    """Counts as ``status --json`` reports them, the RETRY backlog (soonest first), the
    failures of the last FAILURE_DAYS days (newest first) and the dead letters."""
    report = status_report(database)
    counts: dict[str, Counter[str]] = {}
    totals: Counter[str] = Counter()
    submissions: Counter[str] = Counter()
    backlog: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    for submission in report:
        submissions[submission["aggregatedDepositStatus"] or "(none)"] += 1
        for deposit in submission["deposits"]:
            status = deposit["depositStatus"] or "(pending)"
            counts.setdefault(str(deposit["repositoryKey"]), Counter())[status] += 1
            totals[status] += 1
            row = {**deposit, "submission": submission["id"]}
            if status == DepositStatus.RETRY.value:
                backlog.append(row)
            elif status == DepositStatus.FAILED.value:
                failed.append(row)
    backlog.sort(key=lambda d: d["nextAttemptAt"] or "")
    since = now - timedelta(days=FAILURE_DAYS)

    def read_state(uow: UnitOfWork) -> tuple[dict[str, Attempt | None], dict[str, str]]:
        last = {d["id"]: next(iter(reversed(uow.state.attempts(d["id"]))), None)
                for d in failed}
        health = {s.key: describe(s) for s in uow.state.repository_states()
                  if s.health != HEALTHY}
        return last, dict(sorted(health.items()))

    last, health = run_unit(database, read_state, read_only=True)
    failures = []
    for row in failed:
        attempt = last.get(row["id"])
        when = attempt.ended_at or attempt.started_at if attempt else None
        if when is None or when >= since:
            failures.append({**row, "failedAt": when.isoformat() if when else None})
    failures.sort(key=lambda d: d["failedAt"] or "", reverse=True)
    result = Overview(dict(sorted(counts.items())), totals, submissions, backlog, failures,
                      health=health)
    if broker is None:
        result.dead_letters_note = "no broker in this process"
    else:
        try:
            result.dead_letters = [
                {"id": d.id, "queue": d.queue, "attempts": d.attempts, "reason": d.reason,
                 "body": d.body} for d in broker.dead_letters(queues)]
        except NotImplementedError as exc:
            result.dead_letters_note = str(exc)
        except Exception as exc:  # noqa: BLE001 - the page shows the rest, and why not this
            log.warning("dashboard: cannot list dead letters: %s", exc)
            result.dead_letters_note = f"cannot list them now: {exc}"
    return result


def deposit_page(database: Database, deposit_id: str) -> dict[str, Any] | None:
    def read(uow: UnitOfWork) -> dict[str, Any] | None:
        deposit = get_or_none(uow, Deposit, deposit_id)
        if deposit is None:
            return None
        submission = get_or_none(uow, Submission, deposit.submission)
        return {
            "deposit": deposit,
            "submission": submission,
            "publication": get_or_none(uow, Publication, submission.publication
                                       if submission else None),
            "repository": get_or_none(uow, Repository, deposit.repository),
            "copy": get_or_none(uow, RepositoryCopy, deposit.repository_copy),
            "attempts": uow.state.attempts(deposit.id),
        }

    return run_unit(database, read, read_only=True)


def submission_page(database: Database, submission_id: str) -> dict[str, Any] | None:
    def read(uow: UnitOfWork) -> dict[str, Any] | None:
        submission = get_or_none(uow, Submission, submission_id)
        if submission is None:
            return None
        deposits = uow.records.find(Deposit, submission=submission.id)
        repositories = {r.id: r for r in uow.records.get_many(
            Repository, list(submission.repositories) + [d.repository for d in deposits
                                                          if d.repository])}
        copies = {c.id: c for c in uow.records.get_many(
            RepositoryCopy, [d.repository_copy for d in deposits if d.repository_copy])}
        return {
            "submission": submission,
            "publication": get_or_none(uow, Publication, submission.publication),
            "deposits": deposits,
            "repositories": repositories,
            "copies": copies,
            "attempts": uow.state.attempt_counts([d.id for d in deposits]),
        }

    return run_unit(database, read, read_only=True)
