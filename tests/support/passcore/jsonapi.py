"""The ``/data`` endpoints: Elide's JSON:API documents and its request handling.

Shapes follow Elide 7 as pass-core configures it (``elide.json-api.links.enabled``,
``updateStatus200``, strict query parameters, RSQL only): a resource object is
``{"type", "id", "attributes", "relationships", "links": {"self"}}``, every relationship
carries ``links`` (``self``/``related``) and ``data`` (an identifier, null, or a list),
attributes are all present (null when unset), ``included`` holds each resource once,
``meta.page`` appears only when a ``page[...]`` parameter was given. POST answers 201 with
the new resource, PATCH 200 with the updated one, DELETE 204. A resource reached through
a relationship (``include``, ``/data/submission/1/repositories``) has a self link under
its parent's, as Elide's lineage makes it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tests.support.passcore import paging, query
from tests.support.passcore.errors import ApiError
from tests.support.passcore.schema import TYPES, EntityType, Kind, coerce_scalar, to_wire
from tests.support.passcore.store import Message, Record, Store


@dataclass
class Outcome:
    """What a handler answers: status, document (None: no body), messages to publish."""

    status: int
    document: dict[str, Any] | None
    messages: list[Message] = field(default_factory=list)


@dataclass
class _View:
    """Per-request rendering options: sparse fieldsets and typed filters."""

    fields: dict[str, set[str]]
    typed: dict[str, query.Expr]


def _valid_key(key: str) -> bool:
    return (
        key in ("sort", "include") or key.startswith(("filter", "page["))
        or (key.startswith("fields[") and key.endswith("]"))
    )


class JsonApi:
    """Elide over a Store; ``base_url`` is pass-core's PASS_CORE_BASE_URL + ``/data``."""

    def __init__(self, store: Store, base_url: str) -> None:
        self.store = store
        self.base_url = base_url

    # -- rendering ---------------------------------------------------------------------

    def _visible(self, record: Record, rel_name: str, view: _View) -> list[Record]:
        related = self.store.related(record, rel_name)
        expr = view.typed.get(record.type.rels[rel_name].target)
        if expr is None:
            return related
        return [r for r in related if query.matches(r, expr, self.store)]

    def render(self, record: Record, lineage: str | None = None,
               view: _View | None = None) -> dict[str, Any]:
        """The resource object; ``lineage`` is its path below ``/data``."""
        view = view or _View({}, {})
        etype = record.type
        url = f"{self.base_url}/{lineage or f'{etype.name}/{record.id}'}"
        wanted = view.fields.get(etype.name)
        attributes = {
            name: to_wire(attr, record.attrs.get(name))
            for name, attr in etype.attrs.items() if wanted is None or name in wanted
        }
        relationships: dict[str, Any] = {}
        for name, rel in etype.rels.items():
            if wanted is not None and name not in wanted:
                continue
            ids = [{"type": rel.target, "id": str(r.id)} for r in self._visible(record, name, view)]
            relationships[name] = {
                "links": {"self": f"{url}/relationships/{name}", "related": f"{url}/{name}"},
                "data": ids if rel.to_many else (ids[0] if ids else None),
            }
        resource: dict[str, Any] = {"type": etype.name, "id": str(record.id)}
        if attributes:
            resource["attributes"] = attributes
        if relationships:
            resource["relationships"] = relationships
        resource["links"] = {"self": url}
        return resource

    def _included(self, roots: list[tuple[Record, str]], paths: list[list[str]],
                  view: _View) -> list[dict[str, Any]]:
        included: list[dict[str, Any]] = []
        seen: set[tuple[str, int]] = set()

        def walk(record: Record, lineage: str, path: list[str]) -> None:
            for target in self._visible(record, path[0], view):
                target_lineage = f"{lineage}/{path[0]}/{target.id}"
                if (target.type.name, target.id) not in seen:
                    seen.add((target.type.name, target.id))
                    included.append(self.render(target, target_lineage, view))
                if len(path) > 1:
                    walk(target, target_lineage, path[1:])

        for record, lineage in roots:
            for path in paths:
                walk(record, lineage, path)
        return included

    # -- helpers -----------------------------------------------------------------------

    @staticmethod
    def _type(name: str) -> EntityType:
        etype = TYPES.get(name)
        if etype is None:
            raise ApiError(404, f"Unknown collection {name}")
        return etype

    def _record(self, etype: EntityType, id_text: str) -> Record:
        id = coerce_scalar(Kind.LONG, id_text)
        record = self.store.get(etype.name, int(id))
        if record is None:
            raise ApiError.unknown_identifier(id_text, etype.name)
        return record

    @staticmethod
    def _resource_from(body: bytes) -> Any:
        try:
            document = json.loads(body or b"null")
        except ValueError as exc:
            raise ApiError(400, str(exc)) from exc
        if not isinstance(document, dict):
            raise ApiError.bad_body(f"Invalid JSON-API document: {document}")
        return document.get("data")

    # -- GET ---------------------------------------------------------------------------

    def get(self, parts: list[str], params: dict[str, list[str]]) -> Outcome:
        """GET, as one read transaction (concurrent writers wait)."""
        with self.store.lock:
            return self._get(parts, params)

    def _get(self, parts: list[str], params: dict[str, list[str]]) -> Outcome:
        undefined = [k for k in params if not _valid_key(k)]
        if undefined:
            raise ApiError(400, "Found undefined keys in request: " + ", ".join(undefined))
        global_expr, typed = query.parse_filters(params, parts[-1])
        fields = {
            key[7:-1]: {f for v in values for f in v.split(",") if f}
            for key, values in params.items() if key.startswith("fields[")
        }
        view = _View(fields, typed)
        etype = self._type(parts[0])
        if len(parts) == 1:
            records = self.store.all(etype.name)
            expr = global_expr or typed.get(etype.name)
            return self._collection(etype, records, expr, params, view, etype.name)
        record = self._record(etype, parts[1])
        if len(parts) == 2:
            return self._single(record, f"{etype.name}/{record.id}", params, view)
        relationships_only = parts[2] == "relationships" and len(parts) == 4
        rel_name = parts[3] if relationships_only else parts[2]
        if rel_name not in etype.rels or len(parts) > (4 if relationships_only else 3):
            raise ApiError(404, f"Unknown collection {rel_name}")
        rel = etype.rels[rel_name]
        lineage = f"{etype.name}/{record.id}/{rel_name}"
        if relationships_only:
            targets = self._visible(record, rel_name, view)
            ids = [{"type": rel.target, "id": str(r.id)} for r in targets]
            return Outcome(200, {"data": ids if rel.to_many else (ids[0] if ids else None)})
        if rel.to_many:
            return self._collection(TYPES[rel.target], self.store.related(record, rel_name),
                                    typed.get(rel.target), params, view, lineage)
        targets = self._visible(record, rel_name, view)
        if not targets:
            return Outcome(200, {"data": None})
        return self._single(targets[0], f"{lineage}/{targets[0].id}", params, view)

    def _single(self, record: Record, lineage: str, params: dict[str, list[str]],
                view: _View) -> Outcome:
        paths = paging.parse_includes(params.get("include", []), record.type)
        document: dict[str, Any] = {"data": self.render(record, lineage, view)}
        if paths:
            included = self._included([(record, lineage)], paths, view)
            if included:
                document["included"] = included
        return Outcome(200, document)

    def _collection(self, etype: EntityType, records: list[Record], expr: query.Expr | None,
                    params: dict[str, list[str]], view: _View, lineage: str) -> Outcome:
        paths = paging.parse_includes(params.get("include", []), etype)
        page = paging.parse_page(params)
        if expr is not None:
            records = [r for r in records if query.matches(r, expr, self.store)]
        if "sort" in params:
            records = paging.sort_records(records, params["sort"][0], etype, self.store)
        total = len(records)
        shown = records[page.offset: page.offset + page.limit]
        roots = [(r, f"{lineage}/{r.id}") for r in shown]
        document: dict[str, Any] = {"data": [self.render(r, lin, view) for r, lin in roots]}
        if paths:
            included = self._included(roots, paths, view)
            if included:
                document["included"] = included
        if page.requested:
            document["meta"] = paging.page_meta(page, total)
        return Outcome(200, document)

    # -- writes ------------------------------------------------------------------------

    def post(self, parts: list[str], body: bytes) -> Outcome:
        etype = self._type(parts[0])
        if len(parts) > 1:
            self._record(etype, parts[1])
            raise ApiError(400, "Cannot POST to a record.")
        data = self._resource_from(body)
        if isinstance(data, list):
            if len(data) != 1:
                raise ApiError.bad_body(json.dumps({"data": data}))
            data = data[0]
        if not isinstance(data, dict):
            raise ApiError.bad_body(f"Invalid JSON-API document: {data}")
        type_name = data.get("type")
        if type_name not in TYPES:
            raise ApiError(400, f"Unknown entity type: {type_name}")
        if type_name != etype.name:
            raise ApiError.invalid_value(
                f"Cannot assign value of type: {type_name} to type: {etype.name}"
            )
        with self.store.lock:
            record, messages = self.store.create(
                etype, data.get("attributes"), data.get("relationships")
            )
            return Outcome(201, {"data": self.render(record)}, messages)

    def patch(self, parts: list[str], body: bytes) -> Outcome:
        etype = self._type(parts[0])
        if len(parts) != 2:
            raise ApiError(400, "Invalid operation: PATCH a single resource")
        with self.store.lock:
            record = self._record(etype, parts[1])
            data = self._resource_from(body)
            if data is None:
                raise ApiError.bad_body("Expected data but found null")
            if isinstance(data, list):
                raise ApiError.bad_body("Expected single element but found list")
            if not isinstance(data, dict) or str(data.get("id")) != str(record.id):
                raise ApiError.bad_body(
                    "Id in response body does not match requested id to update from path"
                )
            record, messages = self.store.update(
                record, data.get("attributes"), data.get("relationships")
            )
            return Outcome(200, {"data": self.render(record)}, messages)

    def delete(self, parts: list[str]) -> Outcome:
        etype = self._type(parts[0])
        if len(parts) != 2:
            raise ApiError(400, "Invalid operation: DELETE a single resource")
        with self.store.lock:
            self.store.delete(self._record(etype, parts[1]))
        return Outcome(204, None)
