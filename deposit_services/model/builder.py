"""Builds the DepositSubmission (what assemblers consume) from a Submission.

The entities come from anything that answers ``get`` and ``find`` like the store (the
store itself, or a ``Graph`` for the dry-run ``package`` command). The Submission's
``metadata`` JSON blob wins over the entities where both say something (it is what the
submitter confirmed in the PASS UI); the entities fill the gaps.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import date
from typing import Any, Protocol, TypeVar

from deposit_services.errors import ModelError, NotFound
from deposit_services.model.entities import (
    Entity,
    File,
    Funder,
    Grant,
    Journal,
    Publication,
    Submission,
    User,
)
from deposit_services.model.submission import (
    ArticleMetadata,
    DepositFile,
    DepositSubmission,
    GrantInfo,
    Issn,
    IssnPubType,
    JournalMetadata,
    Person,
    PersonType,
)

log = logging.getLogger(__name__)
E = TypeVar("E", bound=Entity)

DOI_PATTERN = re.compile(r"^10\.\d{4,9}/\S+$")
_DOI_PREFIXES = ("https://doi.org/", "http://doi.org/", "https://dx.doi.org/",
                 "http://dx.doi.org/", "doi:")


class EntityLookup(Protocol):
    def get(self, cls: type[E], id: str) -> E: ...

    def find(self, cls: type[E], **criteria: Any) -> list[E]: ...


def parse_metadata(submission: Submission) -> dict[str, Any]:
    """The ``metadata`` blob as a dict ({} when absent)."""
    if not submission.metadata or not submission.metadata.strip():
        return {}
    try:
        blob = json.loads(submission.metadata)
    except ValueError as exc:
        raise ModelError(f"Submission {submission.id} metadata is not JSON: {exc}") from exc
    if not isinstance(blob, dict):
        raise ModelError(f"Submission {submission.id} metadata is not a JSON object")
    return blob


def normalise_doi(raw: str | None) -> str | None:
    """A DOI trimmed of white space and resolver prefixes. One that does not parse is
    kept as it was given, as PASS keeps it: each package format writes it where it
    takes free text and leaves it out where it would make the package invalid, and the
    deposit's statusMessage says so (``Package.warnings``)."""
    if raw is None or not str(raw).strip():
        return None
    doi = str(raw).strip()
    for prefix in _DOI_PREFIXES:
        if doi.lower().startswith(prefix):
            doi = doi[len(prefix):].strip()
            break
    if not DOI_PATTERN.match(doi):
        log.warning("doi %r is not a DOI (10.<registrant>/<suffix>); kept as given", raw)
        return str(raw).strip()
    return doi


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _first(*values: Any) -> str | None:
    for value in values:
        text = _text(value)
        if text is not None:
            return text
    return None


def _mapping(blob: dict[str, Any], key: str) -> dict[str, Any]:
    value = blob.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ModelError(f"metadata {key} is not a JSON object")
    return value


def _embargo(blob: dict[str, Any]) -> date | None:
    raw = _text(blob.get("Embargo-end-date") or blob.get("embargo-end-date"))
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw[:10])
    except ValueError as exc:
        raise ModelError(f"metadata Embargo-end-date {raw!r} is not a date (yyyy-MM-dd)") from exc


def _optional(lookup: EntityLookup, cls: type[E], id: str | None) -> E | None:
    if id is None:
        return None
    try:
        return lookup.get(cls, id)
    except NotFound:
        log.warning("%s %s is referenced but missing; its metadata is left out", cls.TYPE, id)
        return None


def _issns(blob: dict[str, Any], journal: Journal | None) -> tuple[Issn, ...]:
    found: list[Issn] = []
    for item in blob.get("issns") or []:
        if isinstance(item, dict) and _text(item.get("issn")):
            kind = _text(item.get("pubType") or item.get("pub-type"))
            pub_type = None
            if kind is not None:
                try:
                    pub_type = IssnPubType(kind.capitalize())
                except ValueError as exc:
                    raise ModelError(
                        f"metadata issns: pubType {kind!r} is not Print, Electronic or Online"
                    ) from exc
            found.append(Issn(str(item["issn"]).strip(), pub_type))
    if found or journal is None:
        return tuple(found)
    for raw in journal.issns:  # pass-core writes "Print:1234-5678" or a bare ISSN
        kind, sep, number = raw.partition(":")
        if sep and kind.capitalize() in IssnPubType.__members__.values():
            found.append(Issn(number.strip(), IssnPubType(kind.capitalize())))
        else:
            found.append(Issn(raw.strip()))
    return tuple(found)


def _person(user: User, kind: PersonType) -> Person:
    return Person(
        type=kind,
        full_name=user.display_name,
        first_name=user.first_name,
        middle_name=user.middle_name,
        last_name=user.last_name,
        email=user.email,
        orcid=user.orcid_id,
        affiliation=tuple(user.affiliation),
    )


def _persons(
    submission: Submission, grants: list[Grant], blob: dict[str, Any], lookup: EntityLookup
) -> tuple[Person, ...]:
    persons: list[Person] = []
    submitter = _optional(lookup, User, submission.submitter)
    if submitter is not None:
        persons.append(_person(submitter, PersonType.SUBMITTER))
    elif submission.submitter_name or submission.submitter_email:
        persons.append(Person(PersonType.SUBMITTER, full_name=submission.submitter_name,
                              email=submission.submitter_email))
    seen: set[tuple[PersonType, str]] = set()
    for grant in grants:
        for kind, ids in ((PersonType.PI, [grant.pi]), (PersonType.COPI, grant.co_pis)):
            for user_id in ids:
                user = _optional(lookup, User, user_id)
                if user is not None and (kind, user.id) not in seen:
                    seen.add((kind, user.id))
                    persons.append(_person(user, kind))
    for n, author in enumerate(blob.get("authors") or []):
        name = _text(author.get("author")) if isinstance(author, dict) else _text(author)
        if name is None:
            raise ModelError(f"metadata authors[{n}] has no name")
        orcid = _text(author.get("orcid")) if isinstance(author, dict) else None
        persons.append(Person(PersonType.AUTHOR, full_name=name, orcid=orcid))
    return tuple(persons)


def _grant_info(grant: Grant, lookup: EntityLookup) -> GrantInfo:
    funder = _optional(lookup, Funder, grant.primary_funder or grant.direct_funder)
    pi = _optional(lookup, User, grant.pi)
    return GrantInfo(
        award_number=grant.award_number,
        funder_name=funder.name if funder else None,
        funder_local_key=funder.local_key if funder else None,
        pi=_person(pi, PersonType.PI) if pi else None,
    )


def _files(submission: Submission, lookup: EntityLookup) -> tuple[DepositFile, ...]:
    files = []
    for f in lookup.find(File, submission=submission.id):
        if not f.uri:
            raise ModelError(f"File {f.id} ({f.name}) has no uri")
        name = f.name or f.uri.rstrip("/").rsplit("/", 1)[-1]
        files.append(DepositFile(id=f.id, name=name, location=f.uri, role=f.file_role,
                                 root=submission.files_root,
                                 label=f.description, mime_type=f.mime_type))
    return tuple(files)


def build_deposit_submission(submission: Submission, lookup: EntityLookup) -> DepositSubmission:
    """Everything an assembler needs about ``submission``; ModelError if it is unusable."""
    blob = parse_metadata(submission)
    publication = _optional(lookup, Publication, submission.publication)
    journal = _optional(lookup, Journal, publication.journal if publication else None)
    grants = [g for g in (_optional(lookup, Grant, gid) for gid in submission.grants) if g]
    article = ArticleMetadata(
        title=_first(blob.get("title"), publication and publication.title),
        abstract=_first(blob.get("abstract"), publication and publication.abstract),
        doi=normalise_doi(_first(blob.get("doi"), publication and publication.doi)),
        pmid=_first(blob.get("pmid"), publication and publication.pmid),
        volume=_first(blob.get("volume"), publication and publication.volume),
        issue=_first(blob.get("issue"), publication and publication.issue),
        publication_date=_first(blob.get("publicationDate"), blob.get("publication-date")),
        embargo_end_date=_embargo(blob),
    )
    journal_meta = JournalMetadata(
        title=_first(blob.get("journal-title"), journal and journal.journal_name),
        short_title=_first(blob.get("journal-title-short")),
        nlmta=_first(blob.get("journal-NLMTA-ID"), journal and journal.nlmta),
        publisher=_first(blob.get("publisher"), journal and journal.publisher),
        issns=_issns(blob, journal),
    )
    hints = _mapping(blob, "hints")
    tags = hints.get("collection-tags") or []
    agreements = _mapping(blob, "agreements")
    return DepositSubmission(
        id=submission.id,
        submitted_date=submission.submitted_date,
        article=article,
        journal=journal_meta,
        persons=_persons(submission, grants, blob, lookup),
        grants=tuple(_grant_info(g, lookup) for g in grants),
        files=_files(submission, lookup),
        agreements={str(k): str(v) for k, v in agreements.items()},
        collection_tags=tuple(str(t) for t in tags if _text(t)),
        metadata=blob,
    )
