"""pass-core's data model as Elide exposes it: JSON:API types, attributes, relationships.

Taken from pass-core's ``org.eclipse.pass.object.model`` (one JPA entity per type, ids
from one shared ``hibernate_sequence``, ``@Version`` only on Submission and Deposit) and
its Elide serdes (enums on the wire as their lower-case hyphenated values, dates as
``yyyy-MM-dd'T'HH:mm:ss.SSSX``, URIs checked by ``java.net.URI``). ``coerce`` turns a JSON
value from a request into the stored value the way Elide's CoerceUtil and the serdes do,
with their error statuses: a bad enum or number is a 400 ``Invalid value``, a date in
another format escapes Elide as a ``DateTimeParseException`` and Spring answers 500.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from tests.support.passcore.errors import ApiError, ServerFault


class Kind(enum.Enum):
    """How a field is typed in the Java model (and so how Elide coerces and filters it)."""

    STRING = "string"
    BOOLEAN = "boolean"
    LONG = "long"
    DATE = "date"  # ZonedDateTime, ZonedDateTimeSerde
    URI = "uri"  # java.net.URI, URISerde
    ENUM = "enum"  # enum with a Serde: wire value is the lower-case hyphenated value
    ENUM_NAME = "enum-name"  # enum without a Serde (Journal.pmcParticipation): by name
    ELEMENT_LIST = "element-list"  # @ElementCollection List<String>: a join table
    CONVERTED_LIST = "converted-list"  # List/Set held in one column by an AttributeConverter


COLLECTION_KINDS = frozenset({Kind.ELEMENT_LIST, Kind.CONVERTED_LIST})


@dataclass(frozen=True)
class Attr:
    """One attribute; ``element``/``values`` describe list elements and enum values."""

    name: str
    kind: Kind
    values: tuple[str, ...] = ()
    element: Kind = Kind.STRING
    unique_elements: bool = False  # a Set in Java: duplicates collapse


@dataclass(frozen=True)
class Rel:
    name: str
    target: str
    to_many: bool = False


@dataclass(frozen=True)
class EntityType:
    """One Elide type: ``name`` is the JSON:API type, ``java`` the class name."""

    name: str
    java: str
    table: str
    attrs: dict[str, Attr] = field(default_factory=dict)
    rels: dict[str, Rel] = field(default_factory=dict)

    @property
    def versioned(self) -> bool:
        return "version" in self.attrs

    def field_names(self) -> list[str]:
        return [*self.attrs, *self.rels]


AGGREGATED_DEPOSIT_STATUS = ("not-started", "in-progress", "failed", "accepted", "rejected")
AWARD_STATUS = ("active", "pre-award", "terminated")
COPY_STATUS = ("accepted", "in-progress", "stalled", "complete", "rejected")
DEPOSIT_STATUS = ("submitted", "accepted", "rejected", "failed", "retry")
EVENT_TYPE = (
    "approval-requested-newuser", "approval-requested", "changes-requested", "cancelled",
    "submitted",
)
FILE_ROLE = ("manuscript", "supplemental", "figure", "table")
INTEGRATION_TYPE = ("full", "one-way", "web-link")
PERFORMER_ROLE = ("preparer", "submitter")
PMC_PARTICIPATION = ("A", "B", "C", "D")
SOURCE = ("pass", "other")
SUBMISSION_STATUS = (
    "manuscript-required", "approval-requested", "changes-requested", "cancelled", "submitted",
    "needs-attention", "complete", "draft",
)
USER_ROLE = ("admin", "submitter")


def _s(name: str) -> Attr:
    return Attr(name, Kind.STRING)


def _e(name: str, values: tuple[str, ...]) -> Attr:
    return Attr(name, Kind.ENUM, values)


def _d(name: str) -> Attr:
    return Attr(name, Kind.DATE)


def _u(name: str) -> Attr:
    return Attr(name, Kind.URI)


def _type(name: str, java: str, table: str, attrs: list[Attr], rels: list[Rel]) -> EntityType:
    return EntityType(name, java, table, {a.name: a for a in attrs}, {r.name: r for r in rels})


VERSION = Attr("version", Kind.LONG)

TYPES: dict[str, EntityType] = {
    t.name: t
    for t in (
        _type("deposit", "Deposit", "pass_deposit",
              [VERSION, _s("depositStatusRef"), _s("statusMessage"),
               _e("depositStatus", DEPOSIT_STATUS)],
              [Rel("submission", "submission"), Rel("repository", "repository"),
               Rel("repositoryCopy", "repositoryCopy")]),
        _type("file", "File", "pass_file",
              [_s("name"), _u("uri"), _s("description"), _e("fileRole", FILE_ROLE),
               _s("mimeType")],
              [Rel("submission", "submission")]),
        _type("funder", "Funder", "pass_funder",
              [_s("name"), _u("url"), _s("localKey")],
              [Rel("policy", "policy")]),
        _type("grant", "Grant", "pass_grant",
              [_s("awardNumber"), _e("awardStatus", AWARD_STATUS), _s("localKey"),
               _s("projectName"), _d("awardDate"), _d("startDate"), _d("endDate")],
              [Rel("primaryFunder", "funder"), Rel("directFunder", "funder"), Rel("pi", "user"),
               Rel("coPis", "user", to_many=True)]),
        _type("journal", "Journal", "pass_journal",
              [_s("journalName"), Attr("issns", Kind.ELEMENT_LIST), _s("nlmta"),
               Attr("pmcParticipation", Kind.ENUM_NAME, PMC_PARTICIPATION)],
              []),
        _type("policy", "Policy", "pass_policy",
              [_s("title"), _s("description"), _u("policyUrl"), _u("institution")],
              [Rel("repositories", "repository", to_many=True)]),
        _type("publication", "Publication", "pass_publication",
              [_s("title"), _s("publicationAbstract"), _s("doi"), _s("pmid"), _s("volume"),
               _s("issue")],
              [Rel("journal", "journal")]),
        _type("repository", "Repository", "pass_repository",
              [_s("name"), _s("description"), _u("url"), _s("agreementText"), _s("formSchema"),
               _e("integrationType", INTEGRATION_TYPE), _s("repositoryKey"),
               Attr("schemas", Kind.CONVERTED_LIST, element=Kind.URI)],
              []),
        _type("repositoryCopy", "RepositoryCopy", "pass_repository_copy",
              [Attr("externalIds", Kind.ELEMENT_LIST), _e("copyStatus", COPY_STATUS),
               _u("accessUrl")],
              [Rel("publication", "publication"), Rel("repository", "repository")]),
        _type("submission", "Submission", "pass_submission",
              [VERSION, _s("metadata"), _e("source", SOURCE), Attr("submitted", Kind.BOOLEAN),
               _d("submittedDate"), _e("submissionStatus", SUBMISSION_STATUS),
               _e("aggregatedDepositStatus", AGGREGATED_DEPOSIT_STATUS), _s("submitterName"),
               _u("submitterEmail")],
              [Rel("publication", "publication"), Rel("repositories", "repository", to_many=True),
               Rel("submitter", "user"), Rel("preparers", "user", to_many=True),
               Rel("grants", "grant", to_many=True),
               Rel("effectivePolicies", "policy", to_many=True)]),
        _type("submissionEvent", "SubmissionEvent", "pass_submission_event",
              [_e("eventType", EVENT_TYPE), _d("performedDate"),
               _e("performerRole", PERFORMER_ROLE), _s("comment"), _u("link")],
              [Rel("performedBy", "user"), Rel("submission", "submission")]),
        _type("user", "User", "pass_user",
              [_s("username"), _s("firstName"), _s("middleName"), _s("lastName"),
               _s("displayName"), _s("email"),
               Attr("affiliation", Kind.CONVERTED_LIST, unique_elements=True),
               Attr("locatorIds", Kind.ELEMENT_LIST), _s("orcidId"),
               Attr("roles", Kind.CONVERTED_LIST, USER_ROLE, element=Kind.ENUM)],
              []),
    )
}

BY_JAVA_NAME: dict[str, EntityType] = {t.java: t for t in TYPES.values()}


def entity_type(name: str) -> EntityType:
    """The type for a JSON:API name (``repositoryCopy``) or a Java one (``RepositoryCopy``)."""
    found = TYPES.get(name) or BY_JAVA_NAME.get(name)
    if found is None:
        raise KeyError(f"pass-core has no type {name!r}; known: {', '.join(sorted(TYPES))}")
    return found


# -- values --------------------------------------------------------------------------------

_DATE_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{3})(Z|[+-]\d{2}(?:\d{2})?)"
)
_URI_BAD = re.compile(r"[\x00-\x20\"<>\\^`{|}\x7f]|%(?![0-9A-Fa-f]{2})")
_TRUE = frozenset({"true", "yes", "y", "on", "1"})
_FALSE = frozenset({"false", "no", "n", "off", "0"})


def parse_date(text: str) -> datetime:
    """``yyyy-MM-dd'T'HH:mm:ss.SSSX`` as ZonedDateTimeSerde parses it; anything else is a
    DateTimeParseException, which Elide does not map: Spring answers 500."""
    match = _DATE_RE.fullmatch(text)
    if match is None:
        raise ServerFault(f"Text '{text}' could not be parsed at index 0")
    year, month, day, hour, minute, second, millis = (int(g) for g in match.groups()[:7])
    offset = match.group(8)
    if offset == "Z":
        tz: timezone = UTC
    else:
        sign = -1 if offset[0] == "-" else 1
        minutes = int(offset[1:3]) * 60 + (int(offset[3:5]) if len(offset) > 3 else 0)
        tz = timezone(sign * timedelta(minutes=minutes))
    try:
        value = datetime(year, month, day, hour, minute, second, millis * 1000, tzinfo=tz)
    except ValueError as exc:
        raise ServerFault(f"Text '{text}' could not be parsed: {exc}") from exc
    return value.astimezone(UTC)


def format_date(value: datetime) -> str:
    """How pass-core writes a stored date: UTC, milliseconds, ``Z``."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def coerce_scalar(kind: Kind, value: Any, values: tuple[str, ...] = ()) -> Any:
    """A JSON scalar (or a filter argument, always a string) as the stored value."""
    if value is None:
        return None
    if kind is Kind.STRING:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (str, int, float)):
            return value if isinstance(value, str) else str(value)
        raise ApiError.invalid_value(value)
    if kind is Kind.BOOLEAN:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ApiError.invalid_value(value)
    if kind is Kind.LONG:
        if isinstance(value, bool):
            raise ApiError.invalid_value(value)
        if isinstance(value, (int, float)):
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
            return int(value)
        raise ApiError.invalid_value(value)
    if kind is Kind.DATE:
        if isinstance(value, datetime):
            return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        if not isinstance(value, str):
            raise ApiError.invalid_value(value)
        return parse_date(value)
    if kind is Kind.URI:
        if not isinstance(value, str):
            raise ApiError.invalid_value(value)
        if _URI_BAD.search(value) or value.startswith(":"):
            raise ApiError.invalid_value(f"Invalid URI {value}")
        return value
    if kind in (Kind.ENUM, Kind.ENUM_NAME):
        if not isinstance(value, str) or value not in values:
            raise ApiError.invalid_value(value)
        return value
    raise ApiError.invalid_value(value)


def coerce(attr: Attr, value: Any) -> Any:
    """A request's JSON value for ``attr`` as stored; collections element by element."""
    if attr.kind in COLLECTION_KINDS:
        if value is None:
            return []
        if not isinstance(value, list):
            raise ApiError.invalid_value(value)
        items = [coerce_scalar(attr.element, v, attr.values) for v in value]
        if attr.unique_elements:
            items = list(dict.fromkeys(items))
        return items
    if isinstance(value, (list, dict)):
        raise ApiError.invalid_value(value)
    return coerce_scalar(attr.kind, value, attr.values)


def to_wire(attr: Attr, value: Any) -> Any:
    """A stored value as pass-core serialises it."""
    if value is None:
        return [] if attr.kind in COLLECTION_KINDS else None
    if attr.kind is Kind.DATE:
        return format_date(value)
    if attr.kind in COLLECTION_KINDS:
        return list(value)
    return value


def default_value(attr: Attr) -> Any:
    """What a new entity holds before anything is set (Java field initialisers)."""
    if attr.kind in COLLECTION_KINDS:
        return []
    if attr.name == "version":
        return 0
    return None
