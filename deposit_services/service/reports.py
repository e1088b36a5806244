"""Read-only views of submissions, their deposits and copies, for ``status``."""

from __future__ import annotations

from typing import Any

from deposit_services.errors import NotFound
from deposit_services.model.entities import Deposit, Repository, RepositoryCopy, Submission
from deposit_services.store.base import Store


def _value(enum_value: Any) -> str | None:
    return None if enum_value is None else str(getattr(enum_value, "value", enum_value))


def submission_report(store: Store, submission: Submission) -> dict[str, Any]:
    deposits = []
    for deposit in store.find(Deposit, submission=submission.id):
        repository_key = deposit.repository
        try:
            repo = store.get(Repository, deposit.repository or "")
            repository_key = repo.repository_key or repo.name or repo.id
        except NotFound:
            pass
        copy: dict[str, Any] | None = None
        if deposit.repository_copy:
            try:
                rc = store.get(RepositoryCopy, deposit.repository_copy)
                copy = {
                    "id": rc.id,
                    "copyStatus": _value(rc.copy_status),
                    "accessUrl": rc.access_url,
                    "externalIds": rc.external_ids,
                }
            except NotFound:
                copy = None
        deposits.append({
            "id": deposit.id,
            "repository": deposit.repository,
            "repositoryKey": repository_key,
            "depositStatus": _value(deposit.deposit_status),
            "depositStatusRef": deposit.deposit_status_ref,
            "statusMessage": deposit.status_message,
            "nextAttemptAt": deposit.next_attempt_at.isoformat() if deposit.next_attempt_at
            else None,
            "attempts": len(store.attempts(deposit.id)),
            "repositoryCopy": copy,
        })
    return {
        "id": submission.id,
        "aggregatedDepositStatus": _value(submission.aggregated_deposit_status),
        "submissionStatus": _value(submission.submission_status),
        "statusMessage": submission.status_message,
        "submittedDate": submission.submitted_date.isoformat() if submission.submitted_date
        else None,
        "deposits": deposits,
    }


def status_report(store: Store, submission_id: str | None = None) -> list[dict[str, Any]]:
    """One entry per submission (or just ``submission_id``; NotFound if unknown)."""
    if submission_id is not None:
        return [submission_report(store, store.get(Submission, submission_id))]
    return [submission_report(store, s) for s in store.find(Submission)]
