"""PASS entities (pass-core's data model) and their status vocabularies.

Field names are snake_case in Python and camelCase on the wire (pass-core JSON), so
``model_dump(by_alias=True)`` gives back what pass-core sends. Unknown fields are kept
(``extra="allow"``) so a round trip through our store loses nothing. References to
other entities are held as id strings; ``REFS`` names each reference field and the
entity type it must point at (the graph loader checks them).
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

from deposit_services.safetext import redact


def _enum_name(value: Any) -> Any:
    """Accept pass-core's spellings: ``not-started``, ``not_started``, ``NOT_STARTED``."""
    if isinstance(value, str):
        return value.strip().upper().replace("-", "_")
    return value


class _PassEnum(enum.StrEnum):
    @classmethod
    def _missing_(cls, value: object) -> Any:
        normalized = _enum_name(value)
        for member in cls:
            if member.value == normalized:
                return member
        return None


class DepositStatus(_PassEnum):
    SUBMITTED = "SUBMITTED"
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    FAILED = "FAILED"
    RETRY = "RETRY"

    @property
    def is_terminal(self) -> bool:
        return self in (DepositStatus.ACCEPTED, DepositStatus.REJECTED)


class AggregatedDepositStatus(_PassEnum):
    NOT_STARTED = "NOT_STARTED"
    IN_PROGRESS = "IN_PROGRESS"
    FAILED = "FAILED"
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"

    @property
    def is_terminal(self) -> bool:
        return self in (
            AggregatedDepositStatus.FAILED,
            AggregatedDepositStatus.ACCEPTED,
            AggregatedDepositStatus.REJECTED,
        )


class CopyStatus(_PassEnum):
    ACCEPTED = "ACCEPTED"
    IN_PROGRESS = "IN_PROGRESS"
    STALLED = "STALLED"
    COMPLETE = "COMPLETE"
    REJECTED = "REJECTED"


class SubmissionStatus(_PassEnum):
    DRAFT = "DRAFT"
    MANUSCRIPT_REQUIRED = "MANUSCRIPT_REQUIRED"
    APPROVAL_REQUESTED = "APPROVAL_REQUESTED"
    CHANGES_REQUESTED = "CHANGES_REQUESTED"
    CANCELLED = "CANCELLED"
    SUBMITTED = "SUBMITTED"
    NEEDS_ATTENTION = "NEEDS_ATTENTION"
    COMPLETE = "COMPLETE"


class IntegrationType(_PassEnum):
    FULL = "FULL"
    ONE_WAY = "ONE_WAY"
    WEB_LINK = "WEB_LINK"


class FileRole(_PassEnum):
    MANUSCRIPT = "MANUSCRIPT"
    SUPPLEMENTAL = "SUPPLEMENTAL"
    FIGURE = "FIGURE"
    TABLE = "TABLE"


class Source(_PassEnum):
    PASS = "PASS"  # noqa: S105 - the source name, not a password
    OTHER = "OTHER"


def _ref_id(value: Any) -> Any:
    """A reference is an id string; pass-core also writes ``{"id": "4"}`` or a number."""
    if isinstance(value, dict) and "id" in value:
        value = value["id"]
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


Ref = Annotated[str, BeforeValidator(_ref_id)]


def _utc(value: datetime) -> datetime:
    """pass-core writes times with an offset; one without is taken as UTC."""
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


# A message for people (statusMessage): never holds a URL's credentials, whoever wrote it.
StatusText = Annotated[str, AfterValidator(redact)]

# Every time in the model is timezone-aware UTC, validated once here.
UtcDatetime = Annotated[datetime, AfterValidator(_utc)]


class Entity(BaseModel):
    """Base of every PASS entity: an id, and the store's version for compare-and-set."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="allow",
        use_enum_values=False,
        validate_assignment=True,
    )

    TYPE: ClassVar[str] = "Entity"
    REFS: ClassVar[dict[str, str]] = {}

    id: Ref
    version: int = Field(default=0, exclude=True)

    def to_json(self) -> dict[str, Any]:
        """The pass-core JSON form, with ``@type``."""
        data = self.model_dump(by_alias=True, mode="json", exclude_none=True)
        data["@type"] = self.TYPE
        return data


class User(Entity):
    TYPE: ClassVar[str] = "User"
    username: str | None = None
    first_name: str | None = None
    middle_name: str | None = None
    last_name: str | None = None
    display_name: str | None = None
    email: str | None = None
    affiliation: list[str] = Field(default_factory=list)
    locator_ids: list[str] = Field(default_factory=list)
    orcid_id: str | None = None
    roles: list[str] = Field(default_factory=list)


class Repository(Entity):
    TYPE: ClassVar[str] = "Repository"
    name: str | None = None
    description: str | None = None
    url: str | None = None
    agreement_text: str | None = None
    form_schema: str | None = None
    integration_type: IntegrationType | None = None
    repository_key: str | None = None
    schemas: list[str] = Field(default_factory=list)


class Journal(Entity):
    TYPE: ClassVar[str] = "Journal"
    journal_name: str | None = None
    issns: list[str] = Field(default_factory=list)
    nlmta: str | None = None
    pmc_participation: str | None = None
    publisher: str | None = None


class Publication(Entity):
    TYPE: ClassVar[str] = "Publication"
    REFS: ClassVar[dict[str, str]] = {"journal": "Journal"}
    title: str | None = None
    abstract: str | None = None
    doi: str | None = None
    pmid: str | None = None
    journal: Ref | None = None
    volume: str | None = None
    issue: str | None = None


class Policy(Entity):
    TYPE: ClassVar[str] = "Policy"
    REFS: ClassVar[dict[str, str]] = {"repositories": "Repository"}
    title: str | None = None
    description: str | None = None
    policy_url: str | None = None
    repositories: list[Ref] = Field(default_factory=list)
    institution: str | None = None


class Funder(Entity):
    TYPE: ClassVar[str] = "Funder"
    REFS: ClassVar[dict[str, str]] = {"policy": "Policy"}
    name: str | None = None
    url: str | None = None
    local_key: str | None = None
    policy: Ref | None = None


class Grant(Entity):
    TYPE: ClassVar[str] = "Grant"
    REFS: ClassVar[dict[str, str]] = {
        "primary_funder": "Funder",
        "direct_funder": "Funder",
        "pi": "User",
        "co_pis": "User",
    }
    award_number: str | None = None
    award_status: str | None = None
    local_key: str | None = None
    project_name: str | None = None
    award_date: UtcDatetime | None = None
    start_date: UtcDatetime | None = None
    end_date: UtcDatetime | None = None
    primary_funder: Ref | None = None
    direct_funder: Ref | None = None
    pi: Ref | None = None
    co_pis: list[Ref] = Field(default_factory=list)


class Submission(Entity):
    TYPE: ClassVar[str] = "Submission"
    REFS: ClassVar[dict[str, str]] = {
        "publication": "Publication",
        "repositories": "Repository",
        "submitter": "User",
        "preparers": "User",
        "grants": "Grant",
        "effective_policies": "Policy",
    }
    metadata: str | None = None
    source: Source | None = None
    submitted: bool = False
    submitted_date: UtcDatetime | None = None
    submission_status: SubmissionStatus | None = None
    aggregated_deposit_status: AggregatedDepositStatus | None = None
    publication: Ref | None = None
    repositories: list[Ref] = Field(default_factory=list)
    submitter: Ref | None = None
    submitter_name: str | None = None
    submitter_email: str | None = None
    preparers: list[Ref] = Field(default_factory=list)
    grants: list[Ref] = Field(default_factory=list)
    effective_policies: list[Ref] = Field(default_factory=list)
    # Ours, not pass-core's: why processing the submission failed, for the operator;
    # the directory it was submitted with (its local files may be read from there only).
    status_message: StatusText | None = None
    files_root: str | None = None


class File(Entity):
    TYPE: ClassVar[str] = "File"
    REFS: ClassVar[dict[str, str]] = {"submission": "Submission"}
    name: str | None = None
    uri: str | None = None
    description: str | None = None
    file_role: FileRole | None = None
    mime_type: str | None = None
    submission: Ref | None = None


class Deposit(Entity):
    TYPE: ClassVar[str] = "Deposit"
    REFS: ClassVar[dict[str, str]] = {
        "submission": "Submission",
        "repository": "Repository",
        "repository_copy": "RepositoryCopy",
    }
    deposit_status_ref: str | None = None
    deposit_status: DepositStatus | None = None
    submission: Ref | None = None
    repository: Ref | None = None
    repository_copy: Ref | None = None
    status_message: StatusText | None = None
    # Ours, not pass-core's: when a RETRY deposit is due to be tried again (UTC).
    next_attempt_at: UtcDatetime | None = None


class RepositoryCopy(Entity):
    TYPE: ClassVar[str] = "RepositoryCopy"
    REFS: ClassVar[dict[str, str]] = {"publication": "Publication", "repository": "Repository"}
    external_ids: list[str] = Field(default_factory=list)
    copy_status: CopyStatus | None = None
    access_url: str | None = None
    publication: Ref | None = None
    repository: Ref | None = None


ENTITY_TYPES: dict[str, type[Entity]] = {
    cls.TYPE: cls
    for cls in (
        User,
        Repository,
        Journal,
        Publication,
        Policy,
        Funder,
        Grant,
        Submission,
        File,
        Deposit,
        RepositoryCopy,
    )
}
