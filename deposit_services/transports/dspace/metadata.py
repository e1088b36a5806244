"""The JSON Patch that fills a DSpace workspace item's submission sections.

The fields are those PASS's DSpace mapping writes (title, publisher, DOI, abstract,
citation, issued date, the authors, embargo lift and terms, license granted), in the
form-section of the collection's submission definition (``traditionalpageone`` by
default). We add a marker (``dc.identifier.other``: ``deposit-services:<submission>:
<package>``) so a restarted worker finds the item it made before instead of making a
second one, and, when a section for it is configured, the embargo as an access
condition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deposit_services.model.submission import DepositSubmission, Person, PersonType

MARKER_FIELD = "dc.identifier.other"
MARKER_PREFIX = "deposit-services:"


@dataclass(frozen=True)
class Sections:
    """Names of the submission sections and fields the patch writes to."""

    form: str = "traditionalpageone"
    license: str = "license"
    access: str | None = None
    embargo_lift_field: str = "local.embargo.lift"
    embargo_terms_field: str = "local.embargo.terms"


def marker(submission_id: str, package_name: str) -> str:
    """What identifies this deposit in the item's metadata."""
    return f"{MARKER_PREFIX}{submission_id}:{package_name}"


def _values(*values: str) -> list[dict[str, Any]]:
    return [{"value": v} for v in values]


def _reversed_name(person: Person) -> str:
    if person.last_name:
        given = " ".join(n for n in (person.first_name, person.middle_name) if n)
        return f"{person.last_name}, {given}" if given else person.last_name
    return person.full_name or ""


def citation(submission: DepositSubmission) -> str:
    """PASS's citation: up to three authors (then "et al"), date, title, journal,
    volume (issue), DOI."""
    article, journal = submission.article, submission.journal
    authors = [p for p in submission.persons if p.type is PersonType.AUTHOR]
    names = [_reversed_name(p) for p in authors[:3]]
    text = ", ".join(n for n in names if n)
    if len(authors) > 3:
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


def workspace_patch(submission: DepositSubmission, package_name: str,
                    sections: Sections = Sections()) -> list[dict[str, Any]]:
    """The JSON Patch operations (RFC 6902) for the workspace item."""
    article, journal = submission.article, submission.journal
    form = f"/sections/{sections.form}"
    ops: list[dict[str, Any]] = []

    def add(field: str, *values: str | None) -> None:
        present = [v for v in values if v]
        if present:
            ops.append({"op": "add", "path": f"{form}/{field}", "value": _values(*present)})

    add("dc.title", article.title or submission.metadata.get("title"))
    add("dc.publisher", journal.publisher)
    add("dc.identifier.doi", article.doi)
    add("dc.description.abstract", article.abstract)
    add("dc.identifier.citation", citation(submission))
    add("dc.date.issued", article.publication_date)
    add("dc.contributor.author",
        *(p.name for p in submission.persons if p.type is not PersonType.SUBMITTER))
    add(MARKER_FIELD, marker(submission.id, package_name))
    if article.embargo_end_date is not None:
        lift = article.embargo_end_date.isoformat()
        add(sections.embargo_lift_field, lift)
        add(sections.embargo_terms_field, lift)
        if sections.access:
            ops.append({"op": "add", "path": f"/sections/{sections.access}/accessConditions/-",
                        "value": {"name": "embargo", "startDate": lift}})
    ops.append({"op": "add", "path": f"/sections/{sections.license}/granted", "value": "true"})
    return ops
