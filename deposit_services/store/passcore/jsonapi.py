"""Our entities as pass-core's JSON:API resources, and back.

pass-core's type names are the entity names in lower camel case (``repositoryCopy``);
references are relationships (``{"data": {"type": ..., "id": ...}}``, a list for
to-many); enum values are lower case with hyphens (``in-progress``); ``submission`` and
``deposit`` carry ``version`` for optimistic locking. A File's ``uri`` points into
pass-core's file service: it is rewritten onto the configured base URL, so files are
fetched from the pass-core we talk to with its credentials. Fields that are ours and
not pass-core's are not sent (pass-core refuses unknown attributes); dates go in
pass-core's one format; Publication's ``abstract`` is ``publicationAbstract`` there.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from deposit_services.model.entities import ENTITY_TYPES, Entity, File

# The attributes pass-core's model has (org.eclipse.pass.object.model), as we name
# them: only these are sent (pass-core answers 404 to an attribute it does not know).
# Ours alone (Submission.statusMessage, Deposit.nextAttemptAt, Journal.publisher) stay
# here; attributes pass-core has and we do not model are kept on read and left alone.
PASS_ATTRIBUTES: dict[str, frozenset[str]] = {
    "Deposit": frozenset({"depositStatusRef", "statusMessage", "depositStatus"}),
    "File": frozenset({"name", "uri", "description", "fileRole", "mimeType"}),
    "Funder": frozenset({"name", "url", "localKey"}),
    "Grant": frozenset({"awardNumber", "awardStatus", "localKey", "projectName", "awardDate",
                        "startDate", "endDate"}),
    "Journal": frozenset({"journalName", "issns", "nlmta", "pmcParticipation"}),
    "Policy": frozenset({"title", "description", "policyUrl", "institution"}),
    "Publication": frozenset({"title", "abstract", "doi", "pmid", "volume", "issue"}),
    "Repository": frozenset({"name", "description", "url", "agreementText", "formSchema",
                             "integrationType", "repositoryKey", "schemas"}),
    "RepositoryCopy": frozenset({"externalIds", "copyStatus", "accessUrl"}),
    "Submission": frozenset({"metadata", "source", "submitted", "submittedDate",
                             "submissionStatus", "aggregatedDepositStatus", "submitterName",
                             "submitterEmail"}),
    "User": frozenset({"username", "firstName", "middleName", "lastName", "displayName",
                       "email", "affiliation", "locatorIds", "orcidId", "roles"}),
}
# Our name -> pass-core's, where they differ.
RENAMED: dict[str, dict[str, str]] = {"Publication": {"abstract": "publicationAbstract"}}
# Types whose resources carry ``version`` (pass-core's @Version entities).
VERSIONED = frozenset({"Submission", "Deposit"})
TYPE_NAMES: dict[str, type[Entity]] = {
    cls.TYPE[0].lower() + cls.TYPE[1:]: cls for cls in ENTITY_TYPES.values()
}


def type_name(cls: type[Entity]) -> str:
    return cls.TYPE[0].lower() + cls.TYPE[1:]


def _alias(cls: type[Entity], field: str) -> str:
    return cls.model_fields[field].alias or field


def relationship_names(cls: type[Entity]) -> dict[str, str]:
    """JSON relationship name -> our field name."""
    return {_alias(cls, field): field for field in cls.REFS}


def wire_enum(value: enum.Enum) -> str:
    return str(value.value).lower().replace("_", "-")


def wire_date(value: datetime) -> str:
    """pass-core's date format, ``yyyy-MM-dd'T'HH:mm:ss.SSSX`` (UTC: ``Z``)."""
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def to_entity(resource: dict[str, Any], base_url: str) -> Entity:
    """A JSON:API resource object as our entity (its ``version`` kept as ours)."""
    cls = TYPE_NAMES.get(str(resource.get("type")))
    if cls is None:
        raise ValueError(f"pass-core resource of unknown type {resource.get('type')!r}")
    data: dict[str, Any] = dict(resource.get("attributes") or {})
    for name, related in (resource.get("relationships") or {}).items():
        linkage = related.get("data") if isinstance(related, dict) else None
        if isinstance(linkage, list):
            data[name] = [str(item["id"]) for item in linkage]
        elif isinstance(linkage, dict):
            data[name] = str(linkage["id"])
        elif name in relationship_names(cls) or "data" in (related or {}):
            data[name] = None
    for ours, theirs in RENAMED.get(cls.TYPE, {}).items():
        if theirs in data:
            data[ours] = data.pop(theirs)
    data["id"] = str(resource["id"])
    version = data.pop("version", None)
    entity = cls.model_validate(data)
    entity.version = int(version) if version is not None else 0
    if isinstance(entity, File) and entity.uri:
        entity.uri = file_url(entity.uri, base_url)
    return entity


def file_url(uri: str, base_url: str) -> str:
    """A pass-core file uri (``/file/{uuid}/{name}``, possibly on another host name)
    on the configured base URL."""
    parts = urlsplit(uri)
    if parts.scheme in ("", "http", "https") and parts.path.startswith("/file/"):
        return base_url.rstrip("/") + parts.path
    return uri


def to_resource(entity: Entity, *, with_id: bool) -> dict[str, Any]:
    """The JSON:API resource object pass-core takes for ``entity`` (POST: no id)."""
    cls = type(entity)
    relationships: dict[str, Any] = {}
    for name, field in relationship_names(cls).items():
        value = getattr(entity, field)
        target = type_name(ENTITY_TYPES[cls.REFS[field]])
        if isinstance(value, list):
            relationships[name] = {"data": [{"type": target, "id": v} for v in value]}
        else:
            relationships[name] = {"data": {"type": target, "id": value} if value else None}
    sent = PASS_ATTRIBUTES.get(cls.TYPE, frozenset())
    attributes: dict[str, Any] = {}
    # every attribute pass-core has, unset ones as null: a PATCH leaves out what it does
    # not name, and one we cleared (a statusMessage gone on success) must clear there
    for key, value in entity.model_dump(by_alias=True, mode="json").items():
        if key in sent:
            attributes[key] = value
    for field in cls.model_fields:  # enums and dates as pass-core's serdes write them
        name = _alias(cls, field)
        if name not in sent:
            continue
        value = getattr(entity, field)
        if isinstance(value, enum.Enum):
            attributes[name] = wire_enum(value)
        elif isinstance(value, datetime):
            attributes[name] = wire_date(value)
    for ours, theirs in RENAMED.get(cls.TYPE, {}).items():
        if ours in attributes:
            attributes[theirs] = attributes.pop(ours)
    if cls.TYPE in VERSIONED and with_id:
        attributes["version"] = entity.version
    resource: dict[str, Any] = {"type": type_name(cls), "attributes": attributes,
                                "relationships": relationships}
    if with_id:
        resource["id"] = entity.id
    return resource
