"""The search index server of the tests: PyPI's osmem-server (an in-memory,
OpenSearch-compatible server binary), started once per session; a missing binary or a
server that does not start FAILS the tests that need it.

``search_url`` is the server itself; ``search_proxy`` puts a TcpProxy in front, so a test
can take the index away (``cut``) and bring it back (``restore``) mid-run while its data
stays. ``fresh_index`` names an index no other test uses.
"""

from __future__ import annotations

import contextlib
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from deposit_services.search.elastic import ElasticIndex
from tests.support.tcp_proxy import TcpProxy


@pytest.fixture(scope="session")
def search_url() -> Iterator[str]:
    try:
        from osmem_server import OsmemServer

        server = OsmemServer.start(japanese=False)
    except Exception as exc:
        pytest.fail(f"osmem-server (the test search index) did not start: {exc}; install it "
                    "with `.venv/bin/pip install osmem-server` (scripts/test.sh does)",
                    pytrace=False)
    try:
        yield server.url
    finally:
        server.process.kill()
        server.process.wait(10)


@pytest.fixture
def search_proxy(search_url: str) -> Iterator[TcpProxy]:
    host, _, port = search_url.removeprefix("http://").partition(":")
    with TcpProxy(host, int(port)) as proxy:
        yield proxy


@pytest.fixture
def fresh_index() -> str:
    return f"ds-test-{uuid.uuid4().hex[:10]}"


def take_away(proxy: TcpProxy) -> None:
    """Cut the proxy and make sure nothing more gets through: its accept thread, blocked
    in accept(), takes one last connection after the listening socket is closed."""
    proxy.cut()
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", proxy.port),
                                                                 timeout=1):
        pass


def raw_client(url: str) -> Elasticsearch:
    """An elasticsearch client for checking what the index holds (plain JSON)."""
    from deposit_services.search.elastic import PlainJsonNode

    return Elasticsearch(url, node_class=PlainJsonNode)


def all_documents(url: str, index: str) -> dict[str, dict[str, Any]]:
    """Every document of ``index`` by id (after a refresh)."""
    client = raw_client(url)
    try:
        client.indices.refresh(index=index)
        answer = client.search(index=index, size=10_000, query={"match_all": {}})
        return {hit["_id"]: hit["_source"] for hit in answer["hits"]["hits"]}
    finally:
        client.close()


def elastic_index(url: str, name: str) -> ElasticIndex:
    return ElasticIndex(url, name, timeout=5.0)
