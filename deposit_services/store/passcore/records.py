"""The records port on pass-core's JSON:API.

Round trips are what count here (each one is an HTTP request): a submission's graph is
one request with ``include=`` plus one for its files; several entities of one type are
one filtered request (``id=in=(...)``); ``find`` is one request per page of
``PAGE_SIZE``. Writes are POST (pass-core assigns the id) and PATCH carrying the
version it was read at (409 -> ``StaleVersion``: the unit of work runs again on fresh
reads, as on SQL).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from deposit_services.model.entities import Entity, File, Submission
from deposit_services.store.base import E, Records, check_criteria
from deposit_services.store.passcore.client import PassCoreClient
from deposit_services.store.passcore.jsonapi import (
    relationship_names,
    to_entity,
    to_resource,
    type_name,
    wire_enum,
)

PAGE_SIZE = 500
# What a deposit needs, from the submission.
GRAPH_PATHS = ("publication", "publication.journal", "repositories", "submitter", "grants",
               "grants.pi", "grants.coPis", "grants.primaryFunder", "grants.directFunder")
# The submission's graph in ONE request: its files, each including its submission and,
# through it, the rest (a Submission has no relationship to its files; a File has one
# to its submission).
FILES_INCLUDE = ",".join(("submission", *(f"submission.{path}" for path in GRAPH_PATHS)))


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def rsql(cls: type[Entity], criteria: Mapping[str, Any]) -> str:
    """``find`` criteria as an RSQL filter (relationships by their id)."""
    relations = {field: name for name, field in relationship_names(cls).items()}
    parts = []
    for field, value in sorted(criteria.items()):
        name = relations.get(field)
        path = f"{name}.id" if name else (cls.model_fields[field].alias or field)
        if value is None:
            parts.append(f"{path}=isnull=true")
        else:
            text = wire_enum(value) if hasattr(value, "value") else str(value)
            parts.append(f"{path}=={_quoted(text)}")
    return ";".join(parts)


class PassCoreRecords(Records):
    def __init__(self, client: PassCoreClient) -> None:
        self._client = client

    def _entity(self, cls: type[E], resource: dict[str, Any]) -> E:
        entity = to_entity(resource, self._client.base_url)
        if not isinstance(entity, cls):
            raise TypeError(f"pass-core answered a {resource.get('type')} for a {cls.TYPE}")
        return entity

    def get(self, cls: type[E], id: str) -> E:
        document = self._client.request("GET", f"/data/{type_name(cls)}/{id}")
        assert document is not None
        return self._entity(cls, document["data"])

    def get_many(self, cls: type[E], ids: Sequence[str]) -> list[E]:
        if not ids:
            return []
        wanted = ",".join(_quoted(i) for i in ids)
        return self._pages(cls, f"id=in=({wanted})")

    def find(self, cls: type[E], **criteria: Any) -> list[E]:
        check_criteria(cls, criteria)
        return sorted(self._pages(cls, rsql(cls, criteria)), key=lambda e: e.id)

    def _pages(self, cls: type[E], filter_: str) -> list[E]:
        found: list[E] = []
        offset = 0
        while True:
            params = {"page[offset]": str(offset), "page[limit]": str(PAGE_SIZE)}
            if filter_:
                params[f"filter[{type_name(cls)}]"] = filter_
            document = self._client.request("GET", f"/data/{type_name(cls)}", params=params)
            page = (document or {}).get("data") or []
            found.extend(self._entity(cls, resource) for resource in page)
            if len(page) < PAGE_SIZE:
                return found
            offset += PAGE_SIZE

    def add(self, entity: E) -> E:
        document = self._client.request(
            "POST", f"/data/{type_name(type(entity))}",
            document={"data": to_resource(entity, with_id=False)})
        assert document is not None
        return self._entity(type(entity), document["data"])

    def update(self, entity: E) -> E:
        document = self._client.request(
            "PATCH", f"/data/{type_name(type(entity))}/{entity.id}",
            document={"data": to_resource(entity, with_id=True)})
        if document is None:  # 204: Elide's default; pass-core answers 200 with it
            return self.get(type(entity), entity.id)
        return self._entity(type(entity), document["data"])

    def submission_graph(self, submission_id: str) -> list[Entity]:
        """One request: the submission's files with everything else included. A
        submission without files (it cannot be deposited) takes a second request."""
        base = self._client.base_url
        files: list[Entity] = []
        included: list[Entity] = []
        offset = 0
        while True:
            document = self._client.request("GET", "/data/file", params={
                "filter[file]": rsql(File, {"submission": submission_id}),
                "include": FILES_INCLUDE, "page[offset]": str(offset),
                "page[limit]": str(PAGE_SIZE)}) or {}
            page = document.get("data") or []
            files += [self._entity(File, resource) for resource in page]
            included += [to_entity(r, base) for r in document.get("included") or []]
            if len(page) < PAGE_SIZE:
                break
            offset += PAGE_SIZE
        if not any(isinstance(e, Submission) and e.id == submission_id for e in included):
            alone = self._client.request("GET", f"/data/submission/{submission_id}",
                                         params={"include": ",".join(GRAPH_PATHS)})
            assert alone is not None
            included = [self._entity(Submission, alone["data"]),
                        *(to_entity(r, base) for r in alone.get("included") or [])]
        unique = {(e.TYPE, e.id): e for e in included}
        submission = unique.pop(("Submission", submission_id))
        return [submission, *unique.values(), *files]
