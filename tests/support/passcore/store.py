"""pass-core's database as Elide and Hibernate change it: one write path for every change.

- Ids come from one sequence shared by every type (pass-core's ``hibernate_sequence``).
- A PATCH changes only the fields whose value differs; when nothing differs nothing is
  written: no version bump, no lifecycle hook, no message (Elide's updateAttribute /
  updateRelation; pass-core's ElidePassClientTest ``OptimisticLocking_NoUpdate``).
- Submission and Deposit carry ``@Version``. On a real change pass-core's PREFLUSH hook
  compares the request's ``version`` attribute with the stored one: a missing version or
  one lower than the stored version is refused with 409 and pass-core's message; equal or
  higher passes, and the stored version goes up by one (JmsConfiguration
  ``validateEntityVersions``).
- Messages are pass-core's POSTCOMMIT hooks: SubmissionReady on every create or real
  update of a Submission whose ``submitted`` is true, DepositStatus on every create or real
  update of a Deposit, SubmissionEvent on the creation of a SubmissionEvent.
- A delete of an entity another one still refers to fails at flush: Elide's
  TransactionException, 423 Locked.

Callers hold ``lock`` for a whole request so each request is one transaction.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tests.support.passcore.errors import ApiError
from tests.support.passcore.schema import (
    TYPES,
    EntityType,
    Kind,
    coerce,
    coerce_scalar,
    default_value,
)

SUBMISSION_READY = "SubmissionReady"
DEPOSIT_STATUS = "DepositStatus"
SUBMISSION_EVENT = "SubmissionEvent"


@dataclass(frozen=True)
class Message:
    """One message pass-core publishes after commit: ``kind`` names its queue
    (``submission`` -> PASS_CORE_SUBMISSION_QUEUE, ``deposit`` -> PASS_CORE_DEPOSIT_QUEUE,
    ``submission-event`` -> PASS_CORE_SUBMISSION_EVENT_QUEUE), ``body`` is the JSON text,
    ``properties`` the JMS string properties (SQS message attributes)."""

    kind: str
    body: str
    properties: dict[str, str]


def _message(kind: str, id: int, type: str) -> Message:
    body = json.dumps({kind: str(id), "type": type}, separators=(",", ":"))
    return Message(kind, body, {"type": type})


RelValue = int | list[int] | None


@dataclass
class Record:
    """One stored entity: attribute values as stored, relationships as ids."""

    type: EntityType
    id: int
    attrs: dict[str, Any] = field(default_factory=dict)
    rels: dict[str, RelValue] = field(default_factory=dict)

    def rel_ids(self, name: str) -> list[int]:
        value = self.rels.get(name)
        if value is None:
            return []
        return list(value) if isinstance(value, list) else [value]


class Store:
    """Every entity, keyed by (JSON:API type, id); thread-safe through ``lock``."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._records: dict[tuple[str, int], Record] = {}
        self._next_id = 1

    # -- reading -----------------------------------------------------------------------

    def get(self, type_name: str, id: int) -> Record | None:
        return self._records.get((type_name, id))

    def all(self, type_name: str) -> list[Record]:
        return sorted(
            (r for (t, _), r in self._records.items() if t == type_name), key=lambda r: r.id
        )

    def related(self, record: Record, rel_name: str) -> list[Record]:
        """The records a relationship points at (skipping ids no longer stored)."""
        target = record.type.rels[rel_name].target
        found = (self.get(target, i) for i in record.rel_ids(rel_name))
        return [r for r in found if r is not None]

    def __iter__(self) -> Iterator[Record]:
        return iter(sorted(self._records.values(), key=lambda r: r.id))

    # -- parsing a request's fields ------------------------------------------------------

    def _identifier(self, rel_target: str, item: Any) -> int:
        if not isinstance(item, dict) or "type" not in item or item.get("id") is None:
            raise ApiError.bad_body(json.dumps(item))
        type_name = str(item["type"])
        if type_name not in TYPES:
            raise ApiError(400, f"Unknown entity type: {type_name}")
        id_text = str(item["id"])
        id = coerce_scalar(Kind.LONG, id_text)
        if self.get(type_name, id) is None:
            raise ApiError.unknown_identifier(id_text, type_name)
        if type_name != rel_target:
            raise ApiError(400, f"Invalid value: {type_name} {id_text} is not a {rel_target}")
        return int(id)

    def _relationship(self, etype: EntityType, name: str, value: Any) -> RelValue:
        rel = etype.rels.get(name)
        if rel is None:
            raise ApiError.unknown_attribute(name, etype.name)
        data = value.get("data") if isinstance(value, dict) else None
        if value is not None and not isinstance(value, dict):
            raise ApiError.bad_body(json.dumps(value))
        items = [] if data is None else data if isinstance(data, list) else [data]
        ids = [self._identifier(rel.target, item) for item in items]
        if rel.to_many:
            return list(dict.fromkeys(ids))
        if len(ids) > 1:
            raise ApiError(400, f"Invalid value: {name} is a to-one relationship")
        return ids[0] if ids else None

    def _fields(
        self, etype: EntityType, attributes: dict[str, Any] | None,
        relationships: dict[str, Any] | None,
    ) -> tuple[dict[str, Any], dict[str, RelValue]]:
        attrs: dict[str, Any] = {}
        for name, value in (attributes or {}).items():
            attr = etype.attrs.get(name)
            if attr is None:
                raise ApiError.unknown_attribute(name, etype.name)
            attrs[name] = coerce(attr, value)
        rels = {
            name: self._relationship(etype, name, value)
            for name, value in (relationships or {}).items()
        }
        return attrs, rels

    # -- writing -----------------------------------------------------------------------

    def allocate_id(self) -> int:
        with self.lock:
            id = self._next_id
            self._next_id += 1
            return id

    def create(
        self, etype: EntityType, attributes: dict[str, Any] | None,
        relationships: dict[str, Any] | None, id: int | None = None,
    ) -> tuple[Record, list[Message]]:
        """POST: a new entity with a fresh id; its messages (sent after commit)."""
        with self.lock:
            attrs, rels = self._fields(etype, attributes, relationships)
            record = Record(etype, id if id is not None else self.allocate_id())
            record.attrs = {name: default_value(a) for name, a in etype.attrs.items()}
            record.rels = {n: ([] if r.to_many else None) for n, r in etype.rels.items()}
            record.attrs.update(attrs)
            if etype.versioned and record.attrs.get("version") is None:
                record.attrs["version"] = 0  # Hibernate seeds a null version
            record.rels.update(rels)
            self._records[(etype.name, record.id)] = record
            return record, self.messages_for(record, created=True)

    def update(
        self, record: Record, attributes: dict[str, Any] | None,
        relationships: dict[str, Any] | None,
    ) -> tuple[Record, list[Message]]:
        """PATCH: change the differing fields, check the version, bump it, and return
        the messages (none when nothing changed)."""
        with self.lock:
            etype = record.type
            attrs, rels = self._fields(etype, attributes, relationships)
            changed_attrs = {n: v for n, v in attrs.items() if record.attrs.get(n) != v}
            changed_rels = {n: v for n, v in rels.items() if not _same(record.rels.get(n), v)}
            if not changed_attrs and not changed_rels:
                return record, []
            stored = int(record.attrs.get("version") or 0)
            if etype.versioned:
                _check_version(record, stored, attributes or {})
            record.attrs.update(changed_attrs)
            record.rels.update(changed_rels)
            if etype.versioned:
                record.attrs["version"] = stored + 1  # Hibernate: the loaded version + 1
            return record, self.messages_for(record, created=False)

    def delete(self, record: Record) -> None:
        """DELETE: refused with 423 while another entity still refers to it."""
        with self.lock:
            for other in self._records.values():
                for name, rel in other.type.rels.items():
                    if rel.target == record.type.name and record.id in other.rel_ids(name):
                        raise ApiError(423, (
                            "could not execute statement [ERROR: update or delete on table "
                            f'"{record.type.table}" violates foreign key constraint on table '
                            f'"{other.type.table}"]'
                        ))
            del self._records[(record.type.name, record.id)]

    @staticmethod
    def messages_for(record: Record, created: bool) -> list[Message]:
        """The messages pass-core's POSTCOMMIT hooks send for this create or update."""
        name = record.type.name
        if name == "submission" and record.attrs.get("submitted") is True:
            return [_message("submission", record.id, SUBMISSION_READY)]
        if name == "deposit":
            return [_message("deposit", record.id, DEPOSIT_STATUS)]
        if name == "submissionEvent" and created:
            return [_message("submission-event", record.id, SUBMISSION_EVENT)]
        return []


def _check_version(record: Record, stored: int, attributes: dict[str, Any]) -> None:
    """pass-core's PREFLUSH check: after the flush the stored version is ``stored + 1``;
    the request's version (missing: -1) plus one must not be lower."""
    raw = attributes.get("version")
    checked = -1 if raw is None else int(float(str(raw))) + 1
    if checked < stored + 1:
        raise ApiError(409, (
            f"Optimistic lock check failed for {record.type.java} [ID={record.id}]. "
            f"Request version: {checked}, Stored version: {stored + 1}"
        ))


def _same(old: RelValue, new: RelValue) -> bool:
    """Elide compares to-many relationships as sets (order alone is no change)."""
    if isinstance(old, list) or isinstance(new, list):
        return set(old or []) == set(new or [])  # type: ignore[arg-type]
    return old == new
