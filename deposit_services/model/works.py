"""The works each repository was sent: one row per deposit of a submission with a DOI
(issue 21), kept in the worker state so the duplicate check (service/duplicates.py)
looks a DOI up with one indexed statement instead of reading a repository's deposits.

A row is written in the deposit's intent unit (committed and rolled back with it), by
the schema migration that introduced the index (a SQL-records deployment's earlier
deposits), or by ``deposit-services index-works`` (pass-core's). The DOI key rule is
here, so the store's migration and the service compare DOIs the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from deposit_services.errors import ModelError
from deposit_services.model.builder import normalise_doi, parse_metadata
from deposit_services.model.entities import Deposit, Publication, Submission

# The longest DOI key indexed (the column's width). DOIs are far shorter; a longer
# value is not a DOI anyone can resolve, and is compared by no one.
DOI_LIMIT = 512


@dataclass(frozen=True)
class SentWork:
    """A deposit of a work (its DOI key) to a repository (the Repository's id), with
    the content fingerprint it was sent with (None: made before the index, computed
    from its submission when it is needed)."""

    repository: str
    doi: str
    deposit_id: str
    submission_id: str
    fingerprint: str | None = None


def doi_key(raw: str | None) -> str | None:
    """The DOI as deposits are compared by: normalised, case folded (DOIs ignore case)."""
    doi = normalise_doi(raw)
    return doi.casefold() if doi else None


def submission_doi(submission: Submission, publication: Publication | None) -> str | None:
    """The DOI key of a submission as the builder takes it: its metadata blob's ``doi``,
    else its publication's."""
    try:
        given = parse_metadata(submission).get("doi")
    except ModelError:
        given = None
    return doi_key(str(given) if given else publication.doi if publication else None)


def works_of(deposits: Iterable[Deposit], submissions: Iterable[Submission],
               publications: Iterable[Publication]) -> list[SentWork]:
    """The rows of deposits made before the index (no fingerprint), from the records
    read for them; a deposit whose submission has no DOI has none."""
    by_id = {s.id: s for s in submissions}
    pubs = {p.id: p for p in publications}
    rows = []
    for deposit in deposits:
        submission = by_id.get(deposit.submission or "")
        if submission is None or not deposit.repository:
            continue
        doi = submission_doi(submission, pubs.get(submission.publication or ""))
        if doi is not None and len(doi) <= DOI_LIMIT:
            rows.append(SentWork(deposit.repository, doi, deposit.id, submission.id))
    return rows
