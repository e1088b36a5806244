"""A pass-core JSON graph: the entities of one submission, loaded and checked.

The file is a JSON list of entities, each with ``@type`` and ``id`` (pass-core's form,
as in PASS's test resources). Unknown fields are kept; a wrong field type, an unknown
``@type`` or a reference to an entity that is not in the graph is a ``GraphError`` that
names the entity and the field. ``Graph`` answers ``get`` and ``find`` like the store,
so the DepositSubmission builder works on either.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from pydantic import ValidationError

from deposit_services.errors import GraphError, NotFound
from deposit_services.model.entities import ENTITY_TYPES, Entity, File, Submission

E = TypeVar("E", bound=Entity)


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"field {'.'.join(str(p) for p in err['loc']) or '(entity)'}: {err['msg']}"
        for err in exc.errors()
    )


def parse_entity(data: Any, position: int) -> Entity:
    """One graph entry as its entity class; GraphError names what is wrong."""
    if not isinstance(data, dict):
        raise GraphError(f"graph entry {position} is not a JSON object")
    kind = data.get("@type")
    entity_id = data.get("id")
    where = f"{kind or 'entity'} {entity_id!r} (graph entry {position})"
    if kind not in ENTITY_TYPES:
        raise GraphError(f"{where}: unknown @type {kind!r} (known: {', '.join(ENTITY_TYPES)})")
    if entity_id in (None, ""):
        raise GraphError(f"{where}: no id")
    body = {k: v for k, v in data.items() if k != "@type"}
    try:
        return ENTITY_TYPES[kind].model_validate(body)
    except ValidationError as exc:
        raise GraphError(f"{where}: {_describe(exc)}") from exc


@dataclass(frozen=True)
class Graph:
    """The entities of a graph, in file order, indexed by (type, id)."""

    entities: tuple[Entity, ...]

    @classmethod
    def parse(cls, data: Any) -> Graph:
        if isinstance(data, dict) and isinstance(data.get("@graph"), list):
            data = data["@graph"]
        if not isinstance(data, list):
            raise GraphError("a graph is a JSON list of entities, each with @type and id")
        graph = cls(tuple(parse_entity(item, n) for n, item in enumerate(data)))
        graph.check()
        return graph

    @classmethod
    def load(cls, path: Path) -> Graph:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise GraphError(f"cannot read graph {path}: {exc.strerror or exc}") from exc
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise GraphError(f"graph {path} is not JSON: {exc}") from exc
        try:
            return cls.parse(data)
        except GraphError as exc:
            raise GraphError(f"graph {path}: {exc}") from exc

    @cached_property
    def _index(self) -> dict[tuple[str, str], Entity]:
        return {(e.TYPE, e.id): e for e in self.entities}

    def check(self) -> None:
        """Duplicate ids and dangling or mistyped references are errors."""
        seen: set[tuple[str, str]] = set()
        for entity in self.entities:
            key = (entity.TYPE, entity.id)
            if key in seen:
                raise GraphError(f"{entity.TYPE} {entity.id!r} appears twice in the graph")
            seen.add(key)
        for entity in self.entities:
            for field_name, target_type in entity.REFS.items():
                value = getattr(entity, field_name)
                refs: Iterable[str] = value if isinstance(value, list) else [value]
                for ref in refs:
                    if ref is not None and (target_type, ref) not in seen:
                        alias = type(entity).model_fields[field_name].alias or field_name
                        raise GraphError(
                            f"{entity.TYPE} {entity.id!r} field {alias}: refers to "
                            f"{target_type} {ref!r}, which is not in the graph"
                        )
        self.submission  # noqa: B018 - exactly one Submission is part of the contract

    @property
    def submission(self) -> Submission:
        found = [e for e in self.entities if isinstance(e, Submission)]
        if len(found) != 1:
            raise GraphError(f"a graph holds exactly one Submission; this one has {len(found)}")
        return found[0]

    def get(self, cls: type[E], id: str) -> E:
        entity = self._index.get((cls.TYPE, id))
        if entity is None:
            raise NotFound(f"{cls.TYPE} {id!r} is not in the graph")
        assert isinstance(entity, cls)
        return entity

    def find(self, cls: type[E], **criteria: Any) -> list[E]:
        found = [
            e for e in self.entities
            if isinstance(e, cls) and all(getattr(e, k) == v for k, v in criteria.items())
        ]
        return sorted(found, key=lambda e: e.id)


def resolve_file_uri(uri: str, base: Path) -> str:
    """A File's uri as an absolute ``file:`` URI or an http(s) URL.

    Relative paths and PASS's ``classpath:`` / ``encodedclasspath:`` (percent-encoded)
    forms resolve against ``base``; absolute paths become file: URIs.
    """
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https", "file"):
        return uri
    if scheme == "classpath":
        path = uri.split(":", 1)[1].lstrip("/")
    elif scheme == "encodedclasspath":
        path = unquote(uri.split(":", 1)[1]).lstrip("/")
    elif scheme and len(scheme) > 1:
        raise GraphError(f"file uri {uri!r}: unsupported scheme {scheme!r}")
    else:
        path = uri
    resolved = Path(path) if Path(path).is_absolute() else base / path
    return resolved.resolve().as_uri()


def resolve_file_uris(graph: Graph, base: Path) -> Graph:
    """The graph with every File's uri resolved against ``base``."""
    entities: list[Entity] = []
    for entity in graph.entities:
        if isinstance(entity, File) and entity.uri:
            try:
                uri = resolve_file_uri(entity.uri, base)
            except GraphError as exc:
                raise GraphError(f"File {entity.id!r} field uri: {exc}") from exc
            entity = entity.model_copy(update={"uri": uri})
        entities.append(entity)
    return Graph(tuple(entities))
