"""A stub of Elasticsearch 8 for the calls the search adapter makes, answering as
Elasticsearch's REST API documentation shows (no Elasticsearch can run here):

- ``GET /``: the info body, ``version.build_flavor`` "default" and no ``distribution``
  (Elasticsearch has none; OpenSearch says ``opensearch``);
- ``PUT /_index_template/{name}``, ``HEAD /{index}`` (200 or 404), ``PUT /{index}``
  (400 ``resource_already_exists_exception`` when it exists);
- ``PUT`` or ``POST /_bulk``: NDJSON action and source lines, an item per action (201/200, or
  the item's error), ``errors`` true when one failed;
- ``POST /{index}/_search``: ``hits.total`` as ``{"value", "relation"}``; of the query
  only the ``term`` filters are applied (query-string search is osmem-server's to test);
- ``POST /{index}/_refresh``;
- every answer with ``X-Elastic-Product: Elasticsearch``; errors as
  ``{"error": {"root_cause", "type", "reason"}, "status"}``.

It records each request (method, path, headers, body) and can answer the next requests
to a path with an error (``fail``) or make bulk items fail (``item_errors``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Cluster:
    """What the stub holds and what it was sent."""

    distribution: str | None = None  # "opensearch": answer as a server that is not ES
    templates: dict[str, Any] = field(default_factory=dict)
    indices: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    hide_indices: bool = False  # HEAD says 404 (another replica creates it meanwhile)
    faults: list[tuple[str, int, str]] = field(default_factory=list)  # prefix, status, type
    item_errors: list[tuple[int, str]] = field(default_factory=list)  # per bulk item
    seen: list[Seen] = field(default_factory=list)

    def fail(self, path_prefix: str, status: int, error_type: str) -> None:
        """The next request whose path starts with ``path_prefix`` answers ``status``."""
        self.faults.append((path_prefix, status, error_type))

    def sent(self, method: str, prefix: str = "") -> list[Seen]:
        return [s for s in self.seen if s.method == method and s.path.startswith(prefix)]


def _error(status: int, error_type: str, reason: str) -> tuple[int, dict[str, Any]]:
    cause = {"type": error_type, "reason": reason}
    return status, {"error": {"root_cause": [cause], **cause}, "status": status}


def _matches(source: dict[str, Any], filters: list[dict[str, Any]]) -> bool:
    for clause in filters:
        (name, value), = clause["term"].items()
        held = source.get(name)
        if not (value in held if isinstance(held, list) else held == value):
            return False
    return True


class _Handler(BaseHTTPRequestHandler):
    cluster: Cluster

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        self.cluster.seen.append(Seen(self.command, self.path,
                                      {k.lower(): v for k, v in self.headers.items()}, body))
        for fault in self.cluster.faults:
            if path.startswith(fault[0]):
                self.cluster.faults.remove(fault)
                self._answer(*_error(fault[1], fault[2], "injected by the test"))
                return
        self._answer(*self._route(path, body))

    def _route(self, path: str, body: bytes) -> tuple[int, dict[str, Any] | None]:
        cluster, method = self.cluster, self.command
        parts = [p for p in path.split("/") if p]
        if method == "GET" and not parts:
            version = {"number": "8.15.0", "build_flavor": "default",
                       "lucene_version": "9.11.1"}
            if cluster.distribution:
                version["distribution"] = cluster.distribution
            return 200, {"name": "stub", "cluster_name": "stub", "version": version,
                         "tagline": "You Know, for Search"}
        if method == "PUT" and parts[0] == "_index_template":
            cluster.templates[parts[1]] = json.loads(body)
            return 200, {"acknowledged": True}
        if method in ("POST", "PUT") and parts == ["_bulk"]:
            return 200, self._bulk(body)
        if len(parts) == 1 and method in ("HEAD", "PUT"):
            exists = parts[0] in cluster.indices
            if method == "HEAD":
                return (200 if exists and not cluster.hide_indices else 404), None
            if exists:
                return _error(400, "resource_already_exists_exception",
                              f"index [{parts[0]}/stub] already exists")
            cluster.indices[parts[0]] = {}
            return 200, {"acknowledged": True, "shards_acknowledged": True, "index": parts[0]}
        if len(parts) == 2 and parts[0] not in cluster.indices:
            return _error(404, "index_not_found_exception", f"no such index [{parts[0]}]")
        if method == "POST" and len(parts) == 2 and parts[1] == "_refresh":
            return 200, {"_shards": {"total": 2, "successful": 1, "failed": 0}}
        if method == "POST" and len(parts) == 2 and parts[1] == "_search":
            return 200, self._search(parts[0], json.loads(body or b"{}"))
        return _error(400, "illegal_argument_exception", f"no handler for {method} {path}")

    def _bulk(self, body: bytes) -> dict[str, Any]:
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        items: list[dict[str, Any]] = []
        for action, source in zip(lines[::2], lines[1::2], strict=True):
            meta = action["index"]
            index = self.cluster.indices.setdefault(meta["_index"], {})
            if self.cluster.item_errors:
                status, error_type = self.cluster.item_errors.pop(0)
                items.append({"index": {"_index": meta["_index"], "_id": meta["_id"],
                                        "status": status, "error": {
                                            "type": error_type, "reason": "by the test"}}})
                continue
            created = meta["_id"] not in index
            index[meta["_id"]] = source
            items.append({"index": {"_index": meta["_index"], "_id": meta["_id"],
                                    "_version": 1, "result": "created" if created
                                    else "updated", "status": 201 if created else 200}})
        return {"took": 1, "errors": any("error" in i["index"] for i in items),
                "items": items}

    def _search(self, index: str, request: dict[str, Any]) -> dict[str, Any]:
        filters = request.get("query", {}).get("bool", {}).get("filter", [])
        found = [(id, source) for id, source in sorted(self.cluster.indices[index].items())
                 if _matches(source, filters)]
        start = int(request.get("from", 0))
        page = found[start:start + int(request.get("size", 10))]
        return {"took": 1, "timed_out": False,
                "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
                "hits": {"total": {"value": len(found), "relation": "eq"}, "max_score": 1.0,
                         "hits": [{"_index": index, "_id": id, "_score": 1.0, "_source": s}
                                  for id, s in page]}}

    def _answer(self, status: int, body: dict[str, Any] | None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("X-Elastic-Product", "Elasticsearch")
        compatible = self.headers.get("Accept", "").startswith("application/vnd.elasticsearch")
        self.send_header("Content-Type", "application/vnd.elasticsearch+json;compatible-with=8"
                         if compatible else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_HEAD = _handle

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def elastic_stub() -> Iterator[tuple[str, Cluster]]:
    """The stub on a free loopback port: its URL and its cluster."""
    cluster = Cluster()
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (_Handler,),
                                                        {"cluster": cluster}))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", cluster
    finally:
        server.shutdown()
        server.server_close()
