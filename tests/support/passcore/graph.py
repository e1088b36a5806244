"""Seeding the test pass-core from a graph in our file format (tests/support/graphs.py).

Our format: a JSON list of entities, ``@type`` in PascalCase, camelCase attributes,
references as id strings, enum values as names (``NOT_STARTED``), dates ISO 8601, File
uris relative to a folder or ``file:``. pass-core holds the same data with integer ids
from its one sequence, enums as wire values (``not-started``), ``Publication.abstract``
named ``publicationAbstract``, and File bytes in its file service with the uri the PASS
UI records (``/file/<uuid>/<name>``). Fields pass-core has no column for are refused
(or dropped with ``drop_unknown``), since pass-core could not hold them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from tests.support.passcore.files import FileStore, guess_type
from tests.support.passcore.schema import COLLECTION_KINDS, Attr, EntityType, Kind, entity_type
from tests.support.passcore.store import Record, Store

# our attribute names that pass-core spells differently
RENAMED = {("publication", "abstract"): "publicationAbstract"}


def _enum_value(value: Any) -> Any:
    return value.strip().lower().replace("_", "-") if isinstance(value, str) else value


def _attribute_value(attr: Attr, value: Any) -> Any:
    """Our file's value in the form pass-core's coercion accepts."""
    if attr.kind is Kind.ENUM:
        return _enum_value(value)
    if attr.kind in COLLECTION_KINDS and attr.element is Kind.ENUM and isinstance(value, list):
        return [_enum_value(v) for v in value]
    if attr.kind is Kind.DATE and isinstance(value, str):
        parsed = datetime.fromisoformat(value)
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return value


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _local_path(uri: str, files_dir: Path | None) -> Path | None:
    """The file a File's uri names on this machine, or None for a URL to leave alone."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme == "file":
        return Path(url2pathname(parts.path))
    if scheme and len(scheme) > 1:
        return None
    path = Path(uri)
    if path.is_absolute():
        return path
    if files_dir is None:
        raise ValueError(f"File uri {uri!r} is relative: pass files_dir to load_graph")
    return files_dir / path


def load(
    store: Store, files: FileStore, entities: list[dict[str, Any]],
    files_dir: Path | None = None, drop_unknown: bool = False,
) -> tuple[dict[tuple[str, str], str], list[Record]]:
    """Store ``entities``; returns {(@type, old id): new id} and the records created."""
    plan: list[tuple[EntityType, dict[str, Any]]] = []
    ids: dict[tuple[str, str], int] = {}
    for entity in entities:
        etype = entity_type(str(entity.get("@type")))
        key = (etype.java, str(entity.get("id")))
        if key in ids:
            raise ValueError(f"{key[0]} {key[1]!r} appears twice in the graph")
        ids[key] = store.allocate_id()
        plan.append((etype, entity))

    created: list[Record] = []
    links: list[tuple[Record, dict[str, Any]]] = []
    with store.lock:
        for etype, entity in plan:
            attributes: dict[str, Any] = {}
            references: dict[str, Any] = {}
            unknown: list[str] = []
            for name, value in entity.items():
                if name in ("@type", "id"):
                    continue
                name = RENAMED.get((etype.name, name), name)
                if name in etype.rels:
                    references[name] = value
                elif name in etype.attrs:
                    attributes[name] = _attribute_value(etype.attrs[name], value)
                elif not _empty(value) and not drop_unknown:
                    unknown.append(name)
            if unknown:
                raise ValueError(
                    f"{etype.java} {entity.get('id')!r}: pass-core has no field "
                    f"{', '.join(unknown)} (known: {', '.join(etype.field_names())})"
                )
            if etype.name == "file" and isinstance(attributes.get("uri"), str):
                _upload(files, attributes, files_dir)
            record, _ = store.create(etype, attributes, None,
                                     id=ids[(etype.java, str(entity.get("id")))])
            created.append(record)
            links.append((record, references))
        for record, references in links:
            for name, value in references.items():
                record.rels[name] = _resolve(record, name, value, ids)
    return {key: str(value) for key, value in ids.items()}, created


def _upload(files: FileStore, attributes: dict[str, Any], files_dir: Path | None) -> None:
    path = _local_path(attributes["uri"], files_dir)
    if path is None:
        return
    name = attributes.get("name") or path.name
    with path.open("rb") as stream:
        stored = files.put(name, stream)
    attributes["uri"] = stored.uri
    if not attributes.get("mimeType"):
        attributes["mimeType"] = guess_type(stored.name)


def _resolve(record: Record, name: str, value: Any, ids: dict[tuple[str, str], int]) -> Any:
    rel = record.type.rels[name]
    target = entity_type(rel.target).java
    refs = value if isinstance(value, list) else ([] if value is None else [value])
    resolved: list[int] = []
    for ref in refs:
        ref_id = str(ref["id"]) if isinstance(ref, dict) else str(ref)
        if (target, ref_id) not in ids:
            raise ValueError(
                f"{record.type.java} field {name}: refers to {target} {ref_id!r}, "
                "which is not in the graph"
            )
        resolved.append(ids[(target, ref_id)])
    if rel.to_many:
        return resolved
    if len(resolved) > 1:
        raise ValueError(f"{record.type.java} field {name} is to-one but has {len(resolved)}")
    return resolved[0] if resolved else None
