"""Against Elasticsearch the client's compatibility media type is kept; only a server
that says it is not Elasticsearch gets plain JSON. The Elasticsearch side is a stub
that answers ``GET /`` as Elasticsearch 8 does (its ``X-Elastic-Product`` header, its
info body) and records the headers of every request."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from deposit_services.search.elastic import ElasticIndex, PlainJsonNode

COMPAT_JSON = "application/vnd.elasticsearch+json; compatible-with=8"


class _Stub(BaseHTTPRequestHandler):
    seen: list[tuple[str, str, str | None, str | None]] = []
    authorization: list[str | None] = []
    distribution: str | None = None

    def _answer(self, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Elastic-Product", "Elasticsearch")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.seen.append((self.command, self.path, self.headers.get("Content-Type"),
                          self.headers.get("Accept")))
        self.authorization.append(self.headers.get("Authorization"))
        if self.path == "/":
            version = {"number": "8.15.0", "build_flavor": "default"}
            if self.distribution:
                version["distribution"] = self.distribution
            self._answer({"name": "stub", "cluster_name": "stub", "version": version,
                          "tagline": "You Know, for Search"})
        elif self.path.startswith("/_bulk"):
            self._answer({"errors": False, "took": 1, "items": []})
        else:
            self._answer({"hits": {"total": {"value": 0, "relation": "eq"}, "hits": []}})

    do_GET = do_POST = do_PUT = do_HEAD = _any

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def stub() -> Iterator[tuple[str, type[_Stub]]]:
    handler = type("Stub", (_Stub,), {"seen": [], "authorization": [], "distribution": None})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def test_elasticsearch_gets_its_compatibility_media_type(
        stub: tuple[str, type[_Stub]]) -> None:
    url, handler = stub
    index = ElasticIndex(url, "deposits")
    index.write([{"_id": "Deposit:1", "@type": "Deposit"}])
    index.search("depositStatus:FAILED")
    assert not isinstance(index.client().transport.node_pool.get(), PlainJsonNode)
    bodies = [(method, path, ctype, accept) for method, path, ctype, accept in handler.seen
              if method in ("POST", "PUT")]
    assert bodies and all(accept == COMPAT_JSON for *_, accept in bodies)
    bulk = next(b for b in bodies if b[1].startswith("/_bulk"))
    assert bulk[2] == "application/vnd.elasticsearch+x-ndjson; compatible-with=8"
    search = next(b for b in bodies if "_search" in b[1])
    assert search[2] == COMPAT_JSON
    index.close()


def test_a_server_that_is_not_elasticsearch_gets_plain_json(
        stub: tuple[str, type[_Stub]]) -> None:
    url, handler = stub
    handler.distribution = "opensearch"
    index = ElasticIndex(url, "deposits")
    index.write([{"_id": "Deposit:1", "@type": "Deposit"}])
    index.search("x")
    sent = [(path, ctype, accept) for method, path, ctype, accept in handler.seen
            if method in ("POST", "PUT")]
    assert ("/_bulk", "application/x-ndjson", "application/json") in [
        (p.split("?")[0], c, a) for p, c, a in sent]
    assert all("vnd.elasticsearch" not in f"{c} {a}" for _, c, a in sent)
    index.close()


@pytest.mark.parametrize(("options", "expected"), [
    ({"api_key": "aWQ6a2V5"}, "ApiKey aWQ6a2V5"),
    ({"user": "elastic", "password": "changeme"}, "Basic ZWxhc3RpYzpjaGFuZ2VtZQ=="),
])
def test_credentials_go_with_every_request(stub: tuple[str, type[_Stub]],
                                           options: dict[str, str], expected: str) -> None:
    url, handler = stub
    index = ElasticIndex(url, "deposits", **options)  # type: ignore[arg-type]
    index.write([{"_id": "Deposit:1", "@type": "Deposit"}])
    assert handler.authorization and set(handler.authorization) == {expected}
    assert "changeme" not in repr(index)
    index.close()
