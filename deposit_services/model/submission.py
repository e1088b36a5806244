"""DepositSubmission: everything an assembler needs, flattened from the PASS graph.

Built by ``model.builder.build_deposit_submission`` from a Submission, the entities it
references and its ``metadata`` JSON blob. Immutable value objects: assemblers read
them, nobody changes them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from deposit_services.model.entities import FileRole


class PersonType(enum.StrEnum):
    SUBMITTER = "submitter"
    PI = "pi"
    COPI = "copi"
    AUTHOR = "author"


class IssnPubType(enum.StrEnum):
    PRINT = "Print"
    ELECTRONIC = "Electronic"
    ONLINE = "Online"


@dataclass(frozen=True)
class Person:
    type: PersonType
    full_name: str | None = None
    first_name: str | None = None
    middle_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    orcid: str | None = None
    affiliation: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The best display name we have."""
        if self.full_name:
            return self.full_name
        parts = [p for p in (self.first_name, self.middle_name, self.last_name) if p]
        return " ".join(parts)


@dataclass(frozen=True)
class Issn:
    issn: str
    pub_type: IssnPubType | None = None


@dataclass(frozen=True)
class JournalMetadata:
    title: str | None = None
    short_title: str | None = None
    nlmta: str | None = None
    publisher: str | None = None
    issns: tuple[Issn, ...] = ()


@dataclass(frozen=True)
class ArticleMetadata:
    title: str | None = None
    abstract: str | None = None
    doi: str | None = None
    pmid: str | None = None
    volume: str | None = None
    issue: str | None = None
    publication_date: str | None = None
    embargo_end_date: date | None = None


@dataclass(frozen=True)
class GrantInfo:
    award_number: str | None = None
    funder_name: str | None = None
    funder_local_key: str | None = None
    pi: Person | None = None


@dataclass(frozen=True)
class DepositFile:
    """One file of the submission. ``location`` is a URI (file:, http(s):) or a path;
    ``root`` the directory its submission was submitted with (``submit --files-dir``):
    a local file is read only from there or from a root the settings name."""

    id: str
    name: str
    location: str
    role: FileRole | None = None
    label: str | None = None
    mime_type: str | None = None
    root: str | None = None


@dataclass(frozen=True)
class DepositSubmission:
    id: str
    submitted_date: datetime | None = None
    article: ArticleMetadata = field(default_factory=ArticleMetadata)
    journal: JournalMetadata = field(default_factory=JournalMetadata)
    persons: tuple[Person, ...] = ()
    grants: tuple[GrantInfo, ...] = ()
    files: tuple[DepositFile, ...] = ()
    agreements: dict[str, str] = field(default_factory=dict)
    collection_tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str | None:
        return self.article.title

    @property
    def submitter(self) -> Person | None:
        return next((p for p in self.persons if p.type is PersonType.SUBMITTER), None)

    @property
    def authors(self) -> tuple[Person, ...]:
        return tuple(p for p in self.persons if p.type is PersonType.AUTHOR)

    @property
    def manuscript(self) -> DepositFile | None:
        return next((f for f in self.files if f.role is FileRole.MANUSCRIPT), None)
