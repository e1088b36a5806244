"""The adapter's Elasticsearch path (the one production takes), on a stub that answers
as Elasticsearch 8 (elastic_stub.py): the compatibility media type, the index template
and the index made once (and a create race lost quietly), bulk writes with refresh,
searches with filters and ES 8's total, refresh, credentials, and each error mapped to
ours; then the relay itself writing through it. A server that says it is not
Elasticsearch gets plain JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from deposit_services.errors import SearchError, SearchUnavailable
from deposit_services.model.entities import DepositStatus, Repository
from deposit_services.search import relay as relay_module
from deposit_services.search.elastic import ElasticIndex, PlainJsonNode, mappings
from deposit_services.search.pending import PendingMarks
from deposit_services.search.relay import SearchRelay
from deposit_services.store.sql import SqlDatabase
from deposit_services.store.uow import UnitOfWork, run_unit
from tests.integration.search.elastic_stub import Cluster, elastic_stub
from tests.integration.search.records import marks, seed

COMPAT = "application/vnd.elasticsearch+{}; compatible-with=8"


@pytest.fixture
def stub() -> Iterator[tuple[str, Cluster]]:
    with elastic_stub() as running:
        yield running


@pytest.fixture
def index(stub: tuple[str, Cluster]) -> Iterator[ElasticIndex]:
    index = ElasticIndex(stub[0], "deposits", timeout=5)
    yield index
    index.close()


def test_prepare_makes_the_template_and_the_index_once(stub: tuple[str, Cluster],
                                                       index: ElasticIndex) -> None:
    _, cluster = stub
    index.prepare()
    index.prepare()  # a second start-up: the template again, the index found
    template = cluster.templates["deposits"]
    assert template == {"index_patterns": ["deposits"], "priority": 100,
                        "template": {"mappings": mappings()}}
    assert list(cluster.indices) == ["deposits"]
    assert [s.path for s in cluster.sent("PUT", "/deposits")] == ["/deposits"]
    assert len(cluster.sent("HEAD", "/deposits")) == 2
    assert not isinstance(index.client().transport.node_pool.get(), PlainJsonNode)


def test_an_index_another_replica_just_made_is_no_error(stub: tuple[str, Cluster],
                                                        index: ElasticIndex) -> None:
    _, cluster = stub
    cluster.indices["deposits"] = {}
    cluster.hide_indices = True  # it says 404, then refuses the create: already exists
    index.prepare()
    assert len(cluster.sent("PUT", "/deposits")) == 1


def test_write_search_refresh_speak_elasticsearch_8(stub: tuple[str, Cluster],
                                                    index: ElasticIndex) -> None:
    _, cluster = stub
    index.prepare()
    documents = [{"_id": f"Deposit:{n}", "@id": str(n), "@type": "Deposit",
                  "depositStatus": "FAILED" if n % 2 else "ACCEPTED",
                  "repositories": ["r1", "r2"]} for n in range(1, 6)]
    assert index.write(documents, refresh=True) == 5
    bulk = cluster.sent("PUT", "/_bulk")[0]  # as the client sends it
    assert bulk.path == "/_bulk?refresh=wait_for"
    assert bulk.headers["content-type"] == COMPAT.format("x-ndjson")
    assert bulk.headers["accept"] == COMPAT.format("json")
    lines = [json.loads(line) for line in bulk.body.splitlines()]
    assert lines[0] == {"index": {"_index": "deposits", "_id": "Deposit:1"}}
    assert "_id" not in lines[1] and lines[1]["@id"] == "1"
    assert documents[0]["_id"] == "Deposit:1"  # the caller's document left as it was

    failed = index.search("", filters={"depositStatus": "FAILED"}, size=2)
    assert failed.total == 3 and [d["@id"] for d in failed.documents] == ["1", "3"]
    rest = index.search("", filters={"depositStatus": "FAILED"}, size=2, offset=2)
    assert [d["@id"] for d in rest.documents] == ["5"]
    assert index.search("", filters={"repositories": "r2"}).total == 5
    body = json.loads(cluster.sent("POST", "/deposits/_search")[0].body)
    assert body["track_total_hits"] is True and body["from"] == 0 and body["size"] == 2
    assert body["query"]["bool"]["filter"] == [{"term": {"depositStatus": "FAILED"}}]
    assert body["query"]["bool"]["must"] == [{"match_all": {}}]
    pasted = index.search("https://doi.org/10.1234/X.1")
    must = json.loads(cluster.sent("POST", "/deposits/_search")[-1].body)["query"]["bool"]
    assert must["must"][0]["query_string"]["query"] == 'doi:"10.1234/X.1"'
    assert pasted.total == 5  # the stub applies filters only
    index.refresh()
    assert cluster.sent("POST", "/deposits/_refresh")


@pytest.mark.parametrize(("fault", "expected", "words"), [
    (("/_bulk", 503, "unavailable_shards_exception"), SearchUnavailable, "answered 503"),
    (("/_bulk", 429, "es_rejected_execution_exception"), SearchUnavailable, "answered 429"),
    (("/_bulk", 401, "security_exception"), SearchError, "answered 401"),
    (("/_bulk", 400, "illegal_argument_exception"), SearchError, "answered 400"),
])
def test_errors_of_a_write_are_ours(stub: tuple[str, Cluster], index: ElasticIndex,
                                    fault: tuple[str, int, str], expected: type[Exception],
                                    words: str) -> None:
    _, cluster = stub
    index.prepare()
    cluster.fail(*fault)
    with pytest.raises(expected, match=words) as caught:
        index.write([{"_id": "Deposit:1", "@type": "Deposit"}])
    # the relay tries an unavailable index again later; a refusal is logged as one
    assert isinstance(caught.value, SearchUnavailable) == (expected is SearchUnavailable)


def test_refused_items_of_a_bulk_write(stub: tuple[str, Cluster], index: ElasticIndex) -> None:
    _, cluster = stub
    index.prepare()
    documents = [{"_id": "Deposit:1", "@type": "Deposit"}, {"_id": "Deposit:2"}]
    cluster.item_errors = [(429, "es_rejected_execution_exception")] * 2
    with pytest.raises(SearchUnavailable, match="refused 2 document"):
        index.write(documents)  # every item busy: try again later
    cluster.item_errors = [(400, "document_parsing_exception")]
    with pytest.raises(SearchError, match=r"Deposit:1.*document_parsing_exception") as caught:
        index.write(documents)
    assert not isinstance(caught.value, SearchUnavailable)


def test_errors_of_a_search_and_of_no_server(stub: tuple[str, Cluster],
                                             index: ElasticIndex) -> None:
    _, cluster = stub
    index.prepare()
    cluster.fail("/deposits/_search", 400, "search_phase_execution_exception")
    with pytest.raises(SearchError, match="answered 400") as caught:
        index.search('title:"unclosed')
    assert not isinstance(caught.value, SearchUnavailable)
    cluster.fail("/deposits/_search", 503, "search_phase_execution_exception")
    with pytest.raises(SearchUnavailable):
        index.search("x")
    away = ElasticIndex("http://127.0.0.1:9", "deposits", timeout=2)  # nothing listens
    with pytest.raises(SearchUnavailable, match="cannot be reached"):
        away.prepare()


def test_a_server_that_is_not_elasticsearch_gets_plain_json(stub: tuple[str, Cluster],
                                                            index: ElasticIndex) -> None:
    _, cluster = stub
    cluster.distribution = "opensearch"
    index.write([{"_id": "Deposit:1", "@type": "Deposit"}])
    index.search("x")
    sent = [s for s in cluster.seen if s.method in ("POST", "PUT")]
    assert ("/_bulk", "application/x-ndjson", "application/json") in [
            (s.path.split("?")[0], s.headers["content-type"], s.headers["accept"]) for s in sent]
    assert all("vnd.elasticsearch" not in f"{s.headers.get('content-type')} "
               f"{s.headers.get('accept')}" for s in sent)


@pytest.mark.parametrize(("options", "expected"), [
    ({"api_key": "aWQ6a2V5"}, "ApiKey aWQ6a2V5"),
    ({"user": "elastic", "password": "changeme"}, "Basic ZWxhc3RpYzpjaGFuZ2VtZQ=="),
])
def test_credentials_go_with_every_request(stub: tuple[str, Cluster],
                                           options: dict[str, str], expected: str) -> None:
    url, cluster = stub
    index = ElasticIndex(url, "deposits", **options)  # type: ignore[arg-type]
    index.prepare()
    index.write([{"_id": "Deposit:1", "@type": "Deposit"}])
    assert {s.headers.get("authorization") for s in cluster.seen} == {expected}
    assert "changeme" not in repr(index)
    index.close()


def test_the_relay_writes_through_elasticsearch(stub: tuple[str, Cluster],
                                                tmp_path: Path) -> None:
    """The relay's whole run on the Elasticsearch path: prepare, documents written, and
    an entity the documents show found through a filtered search."""
    url, cluster = stub
    database = SqlDatabase(f"sqlite:///{tmp_path / 'store.db'}")
    relay = SearchRelay(database, ElasticIndex(url, "deposits", timeout=5),
                        PendingMarks(database.engine))
    database.commit_hooks.append(relay)
    try:
        run_unit(database, lambda uow: seed(uow, 1, DepositStatus.ACCEPTED, "ok"))
        relay.catch_up()
        assert sorted(cluster.indices["deposits"]) == ["Deposit:d1", "Submission:s1"]

        def rename(uow: UnitOfWork) -> None:
            uow.records.get(Repository, "repo-1").repository_key = "jscholarship"

        run_unit(database, rename)
        relay.catch_up()
        held = cluster.indices["deposits"]
        assert held["Deposit:d1"]["repositoryKey"] == "jscholarship"
        assert held["Submission:s1"]["repositoryKeys"] == ["jscholarship"]
        assert cluster.templates["deposits"]["template"]["mappings"] == mappings()
    finally:
        relay.close()
        database.close()


@pytest.mark.parametrize(("window", "found"), [(100, 14), (4, 8)])
def test_documents_showing_an_entity_are_found_page_by_page(
        stub: tuple[str, Cluster], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture, window: int, found: int) -> None:
    """A repository shown by 7 deposits and 7 submissions, searched 2 at a time: all
    are marked; past the search window the rest is left to reindex, and the log says so."""
    monkeypatch.setattr(relay_module, "PAGE", 2)
    monkeypatch.setattr(relay_module, "WINDOW", window)
    database = SqlDatabase(f"sqlite:///{tmp_path / 'store.db'}")
    relay = SearchRelay(database, ElasticIndex(stub[0], "deposits", timeout=5),
                        PendingMarks(database.engine))
    database.commit_hooks.append(relay)
    try:
        for n in range(1, 8):
            run_unit(database, partial(seed, n=n, status=DepositStatus.ACCEPTED, message="ok"))
        relay.catch_up()
        run_unit(database, lambda uow: setattr(uow.records.get(Repository, "repo-1"),
                                               "name", "Renamed"))
        assert relay.run_once() == 1
        assert len(marks(database)) == found
        assert ("search index: Repository repo-1 is shown by 7 documents" in caplog.text) \
            == (window < 7)
    finally:
        relay.close()
        database.close()
