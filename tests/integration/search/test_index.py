"""The search index on a real (osmem) server: the Elasticsearch adapter, the relay
that writes documents from committed changes, its catching up after an outage, and
reindex giving the same documents."""

from __future__ import annotations

from functools import partial

import pytest

from deposit_services.errors import SearchError, SearchUnavailable
from deposit_services.model.entities import Deposit, DepositStatus
from deposit_services.search.commands import reindex
from deposit_services.search.elastic import ElasticIndex, PlainJsonNode, mappings
from deposit_services.search.relay import SearchRelay
from deposit_services.store.sql import SqlDatabase
from deposit_services.store.uow import UnitOfWork, run_unit
from tests.integration.search.records import make_relay, pending, seed
from tests.support.osmem import all_documents, elastic_index, raw_client, take_away
from tests.support.tcp_proxy import TcpProxy


def test_documents_are_written_and_found_by_query_string(search_url: str,
                                                         fresh_index: str) -> None:
    index = elastic_index(search_url, fresh_index)
    index.prepare()
    index.prepare()  # idempotent: a second start-up finds them there
    assert isinstance(index.client().transport.node_pool.get(), PlainJsonNode)
    mapping = raw_client(search_url).indices.get_mapping(index=fresh_index)
    properties = mapping[fresh_index]["mappings"]["properties"]
    assert properties["depositStatus"]["type"] == "keyword"
    assert properties["submittedDate"]["type"] == "date"
    index.write([
        {"_id": "Deposit:1", "@id": "1", "@type": "Deposit", "depositStatus": "FAILED",
         "doi": "10.1234/abc.1", "statusMessage": "connection refused by sftp.example.org"},
        {"_id": "Deposit:2", "@id": "2", "@type": "Deposit", "depositStatus": "ACCEPTED",
         "doi": "10.1234/abc.2", "statusMessage": "accepted"},
        {"_id": "Submission:1", "@id": "1", "@type": "Submission",
         "aggregatedDepositStatus": "FAILED", "doi": "10.1234/abc.1"},
    ], refresh=True)
    by_doi = index.search('doi:"10.1234/abc.1"')
    assert sorted(d["@type"] for d in by_doi.documents) == ["Deposit", "Submission"]
    pasted = index.search("https://doi.org/10.1234/abc.1")  # as an operator pastes it
    assert sorted(d["@type"] for d in pasted.documents) == ["Deposit", "Submission"]
    assert [d["@id"] for d in index.search("refused").documents] == ["1"]
    failed = index.search("depositStatus:FAILED")
    assert failed.total == 1 and failed.documents[0]["doi"] == "10.1234/abc.1"
    assert index.search("", filters={"@type": "Deposit"}).total == 2
    index.close()


def test_unreachable_index_and_bad_query_are_our_errors(search_url: str, fresh_index: str,
                                                        search_proxy: TcpProxy) -> None:
    index = ElasticIndex(f"http://127.0.0.1:{search_proxy.port}", fresh_index, timeout=2)
    index.prepare()
    take_away(search_proxy)
    with pytest.raises(SearchUnavailable, match="cannot be reached"):
        index.write([{"_id": "Deposit:1", "@type": "Deposit"}])
    search_proxy.restore()
    with pytest.raises(SearchError):
        index.search('title:"unclosed')
    index.close()


def test_mapping_names_pass_fields() -> None:
    properties = mappings()["properties"]
    for name in ("@type", "depositStatus", "submission", "aggregatedDepositStatus",
                 "repositoryCopy", "copyStatus", "externalIds", "accessUrl"):
        assert properties[name]["type"] == "keyword", name
    assert properties["statusMessage"]["type"] == "text"


# -- the relay on a real store ------------------------------------------------------


def test_relay_indexes_committed_changes_only(database: SqlDatabase, search_url: str,
                                              fresh_index: str) -> None:
    relay = make_relay(database, search_url, fresh_index)
    run_unit(database, lambda uow: seed(uow, 1, DepositStatus.FAILED,
                                         "permission denied on /upload"))
    with database.unit_of_work() as uow:  # rolled back: no mark, no document
        seed(uow, 2, DepositStatus.ACCEPTED, "ok")
    # the deposit, its submission, and the publication and repository it added, which
    # documents show (the relay looks them up in the index: none shows them yet)
    assert pending(database) == 4
    assert relay.run_once() == 4
    assert pending(database) == 0
    documents = all_documents(search_url, fresh_index)
    assert sorted(documents) == ["Deposit:d1", "Submission:s1"]
    deposit = documents["Deposit:d1"]
    assert deposit["@type"] == "Deposit" and deposit["depositStatus"] == "FAILED"
    assert deposit["repositoryKey"] == "js" and deposit["doi"] == "10.5555/p.1"
    assert deposit["title"] == "Paper <1>"
    assert deposit["attempts"] == 1 and deposit["lastAttemptOutcome"] == "permanent-error"
    assert deposit["packageName"] == "pkg-1.zip" and deposit["packageSize"] == 1234
    assert deposit["packageSha256"] == "cd" * 32
    assert deposit["accessUrl"] == "https://js.example/item/1"
    assert deposit["externalIds"] == ["hdl:1/1"]
    assert documents["Submission:s1"]["depositStatuses"] == ["FAILED"]

    def accept(uow: UnitOfWork) -> None:
        uow.records.get(Deposit, "d1").deposit_status = DepositStatus.ACCEPTED

    run_unit(database, accept)
    relay.catch_up()
    documents = all_documents(search_url, fresh_index)
    assert documents["Deposit:d1"]["depositStatus"] == "ACCEPTED"
    assert documents["Submission:s1"]["depositStatuses"] == ["ACCEPTED"]
    relay.close()


def test_index_down_deposits_go_on_and_relay_catches_up(
        database: SqlDatabase, search_url: str, search_proxy: TcpProxy,
        fresh_index: str) -> None:
    relay = make_relay(database, f"http://127.0.0.1:{search_proxy.port}", fresh_index)
    run_unit(database, lambda uow: seed(uow, 1, DepositStatus.ACCEPTED, "ok"))
    relay.catch_up()
    take_away(search_proxy)
    for n in range(2, 5):  # commits go on while the index is away
        run_unit(database, partial(seed, n=n, status=DepositStatus.FAILED,
                                   message=f"timeout {n}"))
    with pytest.raises(SearchUnavailable):
        relay.run_once()
    assert pending(database) == 9  # each deposit, its submission, its publication
    search_proxy.restore()
    assert relay.catch_up() == 9
    documents = all_documents(search_url, fresh_index)
    assert {f"Deposit:d{n}" for n in range(1, 5)} <= set(documents)
    assert documents["Deposit:d3"]["statusMessage"] == "timeout 3"

    # reindex into a copy gives the very same documents
    copy = ElasticIndex(search_url, f"{fresh_index}-copy")
    assert reindex(database, copy, batch=3) == 8
    assert all_documents(search_url, f"{fresh_index}-copy") == documents
    copy.close()
    relay.close()


def test_one_relay_at_a_time_on_a_store(database: SqlDatabase, search_url: str,
                                        fresh_index: str) -> None:
    first = make_relay(database, search_url, fresh_index)
    # another process's relay on the same store (its hook is in that process)
    second = SearchRelay(database, ElasticIndex(search_url, fresh_index), first.marks)
    run_unit(database, lambda uow: seed(uow, 1, DepositStatus.ACCEPTED, "ok"))
    assert first.run_once() == 4
    run_unit(database, lambda uow: seed(uow, 2, DepositStatus.ACCEPTED, "ok"))
    assert second.run_once() == 0  # the first holds the relay's lease
    assert pending(database) == 3
    first.close()  # gives the lease back
    assert second.run_once() == 3
    assert pending(database) == 0
    assert "Deposit:d2" in all_documents(search_url, fresh_index)
    second.close()
