"""The documents of the search index, built from the records in a few batched reads.

Field names are PASS's (``@type``, ``depositStatus``, ``submission``, ``submittedDate``,
``aggregatedDepositStatus`` ...), as PASS's own indexer writes its entities, so an
operator's queries and dashboards carry over; beside them what operators search by
and PASS never had: the repository's key, the publication's title, DOI and journal,
the attempt log (count, last trigger, outcome and error, every error seen), the last
package (name, size, checksums), the copy's access URL and external ids.

A document holds nothing that changes when it is rebuilt (no "indexed at" time): the
same records always give the same documents, so a rebuild can be compared with what the
relay wrote.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from deposit_services.model.entities import (
    Deposit,
    Journal,
    Publication,
    Repository,
    RepositoryCopy,
    Submission,
    User,
)
from deposit_services.search.base import Document, document_id
from deposit_services.store.base import Attempt
from deposit_services.store.uow import UnitOfWork

# The entity types that have a document of their own.
INDEXED_TYPES = (Submission.TYPE, Deposit.TYPE)


def _value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return getattr(value, "value", value)


def _clean(document: Document) -> Document:
    """Without empty values (a missing field is not indexed as an empty one)."""
    return {k: _value(v) for k, v in document.items() if v not in (None, "", [])}


def _ids(values: Iterable[str | None]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))


class Related:
    """What documents of some submissions and deposits refer to, read in batches."""

    def __init__(self, uow: UnitOfWork, submissions: Sequence[Submission],
                 deposits: Sequence[Deposit]) -> None:
        records = uow.records
        self.publications = {p.id: p for p in records.get_many(
            Publication, _ids(s.publication for s in submissions))}
        self.journals = {j.id: j for j in records.get_many(
            Journal, _ids(p.journal for p in self.publications.values()))}
        self.repositories = {r.id: r for r in records.get_many(Repository, _ids(
            [d.repository for d in deposits] + [r for s in submissions for r in s.repositories]))}
        self.copies = {c.id: c for c in records.get_many(
            RepositoryCopy, _ids(d.repository_copy for d in deposits))}
        self.users = {u.id: u for u in records.get_many(
            User, _ids(s.submitter for s in submissions))}

    def repository_key(self, id: str | None) -> str | None:
        repository = self.repositories.get(id or "")
        if repository is None:
            return id
        return repository.repository_key or repository.name or repository.id

    def publication_fields(self, submission: Submission | None) -> Document:
        if submission is None:
            return {}
        publication = self.publications.get(submission.publication or "")
        journal = self.journals.get(publication.journal or "") if publication else None
        submitter = self.users.get(submission.submitter or "")
        name = submission.submitter_name or (submitter.display_name or " ".join(
            n for n in (submitter.first_name, submitter.last_name) if n) if submitter else None)
        return {
            "publication": submission.publication,  # what finds them when it changes
            "journal": publication.journal if publication else None,
            "title": publication.title if publication else None,
            "doi": publication.doi if publication else None,
            "pmid": publication.pmid if publication else None,
            "journalName": journal.journal_name if journal else None,
            "issns": journal.issns if journal else None,
            "submitter": submission.submitter,
            "submitterName": name,
            "submitterEmail": submission.submitter_email or (submitter.email if submitter
                                                             else None),
            "submittedDate": submission.submitted_date,
        }


def deposit_document(deposit: Deposit, submission: Submission | None, related: Related,
                     attempts: Sequence[Attempt]) -> Document:
    copy = related.copies.get(deposit.repository_copy or "")
    repository = related.repositories.get(deposit.repository or "")
    last = attempts[-1] if attempts else None
    package = next((a.package for a in reversed(attempts) if a.package is not None), None)
    return _clean({
        "_id": document_id(Deposit.TYPE, deposit.id),
        "@id": deposit.id,
        "@type": Deposit.TYPE,
        "depositStatus": deposit.deposit_status,
        "depositStatusRef": deposit.deposit_status_ref,
        "statusMessage": deposit.status_message,
        "nextAttemptAt": deposit.next_attempt_at,
        "submission": deposit.submission,
        "repository": deposit.repository,
        "repositoryKey": related.repository_key(deposit.repository),
        "repositoryName": repository.name if repository else None,
        "repositoryCopy": deposit.repository_copy,
        "copyStatus": copy.copy_status if copy else None,
        "accessUrl": (copy.access_url if copy else None) or next(
            (a.access_url for a in reversed(attempts) if a.access_url), None),
        "externalIds": copy.external_ids if copy else None,
        **related.publication_fields(submission),
        "attempts": len(attempts),
        "firstAttemptAt": attempts[0].started_at if attempts else None,
        "lastAttemptAt": last.started_at if last else None,
        "lastAttemptTrigger": last.trigger if last else None,
        "lastAttemptOutcome": last.outcome if last else None,
        "lastError": last.error if last else None,
        "errors": list(dict.fromkeys(a.error for a in attempts if a.error)),
        "packageName": package.name if package else None,
        "packageSize": package.size if package else None,
        "packageMd5": package.md5 if package else None,
        "packageSha256": package.sha256 if package else None,
    })


def submission_document(submission: Submission, deposits: Sequence[Deposit],
                        related: Related) -> Document:
    return _clean({
        "_id": document_id(Submission.TYPE, submission.id),
        "@id": submission.id,
        "@type": Submission.TYPE,
        "aggregatedDepositStatus": submission.aggregated_deposit_status,
        "submissionStatus": submission.submission_status,
        "submitted": submission.submitted,
        "source": submission.source,
        "statusMessage": submission.status_message,
        **related.publication_fields(submission),
        "repositories": submission.repositories,
        "repositoryKeys": [related.repository_key(r) for r in submission.repositories],
        "deposits": [d.id for d in deposits],
        "depositStatuses": _ids(_value(d.deposit_status) for d in deposits),
    })


def build(uow: UnitOfWork, submission_ids: Sequence[str], deposit_ids: Sequence[str],
          deposits_of: Mapping[str, Sequence[str]] | None = None,
          ) -> tuple[list[Document], list[tuple[str, str]]]:
    """The documents of those submissions and deposits as the records hold them now,
    and the (type, id) of those that are no longer there. ``deposits_of`` (submission
    id -> its deposit ids, as a rebuild has listed them) saves a query per submission."""
    records = uow.records
    deposits = records.get_many(Deposit, deposit_ids)
    submissions = records.get_many(Submission, _ids(
        list(submission_ids) + [d.submission for d in deposits]))
    by_id = {s.id: s for s in submissions}
    wanted = set(submission_ids)
    if deposits_of is None:
        of_submission = {s.id: records.find(Deposit, submission=s.id)
                         for s in submissions if s.id in wanted}
    else:
        listed = {d.id: d for d in records.get_many(Deposit, [
            i for s in wanted for i in deposits_of.get(s, ())])}
        of_submission = {s.id: [listed[i] for i in deposits_of.get(s.id, ()) if i in listed]
                         for s in submissions if s.id in wanted}
    every_deposit = {d.id: d for d in deposits}
    for found in of_submission.values():
        every_deposit.update((d.id, d) for d in found)
    related = Related(uow, submissions, list(every_deposit.values()))
    documents = [deposit_document(d, by_id.get(d.submission or ""), related,
                                  uow.state.attempts(d.id)) for d in deposits]
    documents += [submission_document(s, of_submission[s.id], related)
                  for s in submissions if s.id in wanted]
    present = {(Deposit.TYPE, d.id) for d in deposits} | {(Submission.TYPE, s.id)
                                                        for s in submissions}
    missing = [key for key in [(Deposit.TYPE, i) for i in deposit_ids]
               + [(Submission.TYPE, i) for i in submission_ids] if key not in present]
    return documents, missing
