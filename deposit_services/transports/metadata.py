"""What a record says about a submission, written once from the DepositSubmission and
shared by the REST repositories (DSpace, InvenioRDM, Zenodo): title, description,
dates, creators, identifiers, funding, PASS's citation, and the marker that lets a
restarted worker find the item or record it made before instead of making a second.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import quote

from deposit_services.model.submission import DepositSubmission, Person, PersonType

MARKER_PREFIX = "deposit-services:"


def marker(submission_id: str, package_name: str) -> str:
    """What identifies this deposit (submission and package) in the item's metadata."""
    return f"{MARKER_PREFIX}{submission_id}:{package_name}"


def marker_urn(submission_id: str, package_name: str) -> str:
    """The marker as a URN (for repositories that validate identifier schemes)."""
    return "urn:" + quote(marker(submission_id, package_name), safe=":-._")


def urn_suffix(package_name: str) -> str:
    """How every marker URN of ``package_name`` ends (whatever the submission)."""
    return ":" + quote(package_name, safe="-._")


def marked_urn(record: Mapping[str, Any], field: str, suffix: str) -> str | None:
    """The marker URN among the ``identifier`` values of ``record["metadata"][field]``
    that ends in ``suffix``, if there is one (any other shape: None)."""
    metadata = record.get("metadata")
    entries = metadata.get(field) if isinstance(metadata, Mapping) else None
    for entry in entries if isinstance(entries, list) else []:
        value = str(entry.get("identifier", "")) if isinstance(entry, Mapping) else ""
        if value.startswith("urn:" + MARKER_PREFIX) and value.endswith(suffix):
            return value
    return None


@dataclass(frozen=True)
class Creator:
    """A person as repositories name them: ``name`` is "Family, Given"."""

    name: str
    given: str | None
    family: str | None
    orcid: str | None = None
    affiliations: tuple[str, ...] = ()


@dataclass(frozen=True)
class Funding:
    funder: str
    award: str | None = None


@dataclass(frozen=True)
class RecordMetadata:
    """The fields every REST repository's mapping draws from."""

    title: str | None
    description: str | None
    publication_date: str | None
    doi: str | None
    publisher: str | None
    journal_title: str | None
    volume: str | None
    issue: str | None
    creators: tuple[Creator, ...]
    funding: tuple[Funding, ...]
    citation: str
    embargo_end_date: date | None


def reversed_name(person: Person) -> str:
    """"Family, Given Middle" (PASS's reversed name); the full name when there is no
    family name."""
    if person.last_name:
        given = " ".join(n for n in (person.first_name, person.middle_name) if n)
        return f"{person.last_name}, {given}" if given else person.last_name
    return person.full_name or ""


def creator(person: Person) -> Creator:
    given = " ".join(n for n in (person.first_name, person.middle_name) if n) or None
    return Creator(reversed_name(person) or person.name, given, person.last_name,
                   person.orcid, person.affiliation)


def authors(submission: DepositSubmission) -> list[Person]:
    """Everyone named on the work but the submitter, in the graph's order."""
    return [p for p in submission.persons if p.type is not PersonType.SUBMITTER]


def citation(submission: DepositSubmission) -> str:
    """PASS's citation: up to three authors (then "et al"), date, title, journal,
    volume (issue), DOI."""
    article, journal = submission.article, submission.journal
    named = [p for p in submission.persons if p.type is PersonType.AUTHOR]
    names = [reversed_name(p) for p in named[:3]]
    text = ", ".join(n for n in names if n)
    if len(named) > 3:
        text += ", et al"
    if text:
        text += "."
    if article.publication_date:
        text += f" ({article.publication_date})."
    if article.title:
        text += f' "{article.title}."'
    if journal.title:
        text += f" {journal.title}."
    if article.volume:
        text += f" {article.volume}"
    if article.issue:
        text += f" ({article.issue})."
    if article.doi:
        text += f" {article.doi}."
    return text.strip()


def record_metadata(submission: DepositSubmission) -> RecordMetadata:
    article, journal = submission.article, submission.journal
    title = article.title or submission.metadata.get("title")
    funding = tuple(
        Funding(g.funder_name or g.funder_local_key or "", g.award_number)
        for g in submission.grants if g.funder_name or g.funder_local_key)
    return RecordMetadata(
        title=str(title) if title else None,
        description=article.abstract,
        publication_date=article.publication_date,
        doi=article.doi,
        publisher=journal.publisher,
        journal_title=journal.title,
        volume=article.volume,
        issue=article.issue,
        creators=tuple(creator(p) for p in authors(submission)),
        funding=funding,
        citation=citation(submission),
        embargo_end_date=article.embargo_end_date,
    )
