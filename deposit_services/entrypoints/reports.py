"""Read-only views of submissions, their deposits and copies, for ``status``: one read
transaction and a fixed number of queries, however many submissions there are."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from deposit_services.model.entities import Deposit, Repository, RepositoryCopy, Submission
from deposit_services.store.uow import Database, UnitOfWork, run_unit


def _value(enum_value: Any) -> str | None:
    return None if enum_value is None else str(getattr(enum_value, "value", enum_value))


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _report(uow: UnitOfWork, submission_id: str | None) -> list[dict[str, Any]]:
    records = uow.records
    if submission_id is not None:
        submissions = [records.get(Submission, submission_id)]
        deposits = records.find(Deposit, submission=submission_id)
    else:
        submissions = records.find(Submission)
        deposits = records.find(Deposit)
    repositories = {r.id: r for r in records.get_many(
        Repository, [d.repository for d in deposits if d.repository])}
    copies = {c.id: c for c in records.get_many(
        RepositoryCopy, [d.repository_copy for d in deposits if d.repository_copy])}
    attempts = uow.state.attempt_counts([d.id for d in deposits])
    by_submission: dict[str, list[dict[str, Any]]] = {}
    for deposit in deposits:
        repository = repositories.get(deposit.repository or "")
        copy = copies.get(deposit.repository_copy or "")
        by_submission.setdefault(deposit.submission or "", []).append({
            "id": deposit.id,
            "repository": deposit.repository,
            "repositoryKey": (repository.repository_key or repository.name or repository.id
                              ) if repository else deposit.repository,
            "depositStatus": _value(deposit.deposit_status),
            "depositStatusRef": deposit.deposit_status_ref,
            "statusMessage": deposit.status_message,
            "nextAttemptAt": _time(deposit.next_attempt_at),
            "attempts": attempts.get(deposit.id, 0),
            "repositoryCopy": {
                "id": copy.id,
                "copyStatus": _value(copy.copy_status),
                "accessUrl": copy.access_url,
                "externalIds": copy.external_ids,
            } if copy else None,
        })
    return [{
        "id": s.id,
        "aggregatedDepositStatus": _value(s.aggregated_deposit_status),
        "submissionStatus": _value(s.submission_status),
        "statusMessage": s.status_message,
        "submittedDate": _time(s.submitted_date),
        "deposits": by_submission.get(s.id, []),
    } for s in submissions]


def status_report(database: Database, submission_id: str | None = None
                  ) -> list[dict[str, Any]]:
    """One entry per submission (or just ``submission_id``; NotFound if unknown)."""
    return run_unit(database, lambda uow: _report(uow, submission_id), read_only=True)
