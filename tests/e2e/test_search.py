"""The search index end to end: 50 submissions deposited by the real worker (some fail),
found by DOI, by error text and by status with the ``search`` command's index; the
index taken away mid-run: deposits go on, and when it is back the index catches up by
itself; ``reindex`` into a copy gives the same documents."""

from __future__ import annotations

import json
import subprocess
import sys

from deposit_services.search.elastic import ElasticIndex
from tests.e2e.conftest import Daemon, wait_until
from tests.support.graphs import make_graph, write_graph
from tests.support.osmem import (  # noqa: F401 - fixtures
    all_documents,
    fresh_index,
    search_proxy,
    search_url,
    take_away,
)
from tests.support.tcp_proxy import TcpProxy

FAILING = {7, 14, 21, 28, 35, 42, 49, 3, 44, 18}  # their manuscript is gone before deposit


def _submit_many(daemon: Daemon, numbers: range) -> None:
    """Submit the graphs of ``numbers``, four ``submit`` processes at a time."""
    running: list[subprocess.Popen[str]] = []
    for n in numbers:
        sid = f"sub-{n}"
        graph = make_graph(sid, daemon.root)
        path = write_graph(daemon.root / f"{sid}.json", graph)
        if n in FAILING:
            (daemon.root / sid / "manuscript.txt").unlink()
        running.append(subprocess.Popen(
            [sys.executable, "-m", "deposit_services", "submit", str(path)],
            env=daemon.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        if len(running) >= 4:
            proc = running.pop(0)
            assert proc.wait(120) == 0, proc.stderr.read() if proc.stderr else ""
    for proc in running:
        assert proc.wait(120) == 0, proc.stderr.read() if proc.stderr else ""


def _deposits(daemon: Daemon) -> dict[str, dict[str, object]]:
    return {d["id"]: {**d, "submission": s["id"]} for s in daemon.status()
            for d in s["deposits"]}


def _settled(daemon: Daemon, count: int) -> bool:
    deposits = _deposits(daemon)
    return len(deposits) == count and all(
        d["depositStatus"] in ("ACCEPTED", "FAILED") for d in deposits.values())


def test_search_finds_deposits_and_catches_up_after_the_index_was_away(
        daemon: Daemon, search_url: str, search_proxy: TcpProxy,  # noqa: F811
        fresh_index: str) -> None:  # noqa: F811
    daemon.env.update({"DEPOSIT_SEARCH_URL": f"http://127.0.0.1:{search_proxy.port}",
                       "DEPOSIT_SEARCH_INDEX": fresh_index,
                       "PASS_DEPOSIT_JOBS_DEFAULT_INTERVAL_MS": "2000"})
    worker = daemon.listen()
    _submit_many(daemon, range(1, 26))
    wait_until(lambda: _settled(daemon, 25), 180, "the first 25 deposits", [worker])

    take_away(search_proxy)  # the index goes away mid-run
    _submit_many(daemon, range(26, 51))
    wait_until(lambda: _settled(daemon, 50), 180, "deposits while the index is away",
               [worker])
    wait_until(lambda: "search index cannot be reached" in daemon.log_text(), 30,
               "the worker to notice the index is away")
    search_proxy.restore()

    index = ElasticIndex(search_url, fresh_index)

    def caught_up() -> bool:
        index.refresh()
        found = index.search("@type:Deposit", size=100)
        return found.total == 50 and all(
            d.get("depositStatus") in ("ACCEPTED", "FAILED") for d in found.documents)
    wait_until(caught_up, 60, "the index to catch up without reindex", [worker])

    deposits = _deposits(daemon)
    failed = {d for d, v in deposits.items() if v["depositStatus"] == "FAILED"}
    assert {deposits[d]["submission"] for d in failed} == {f"sub-{n}" for n in FAILING}, \
        json.dumps(list(deposits.values())[:4])
    for deposit_id, deposit in deposits.items():  # each by its DOI
        doi = f"10.1234/test.{deposit['submission']}"
        hits = index.search(f'doi:"{doi}" AND @type:Deposit').documents
        assert [h["@id"] for h in hits] == [deposit_id], doi
        assert hits[0]["depositStatus"] == deposit["depositStatus"]
        assert hits[0].get("statusMessage") == deposit["statusMessage"]
    # by error text, as the operator types it into the search command
    one = next(iter(failed))
    error_word = "manuscript.txt"
    assert error_word in str(deposits[one]["statusMessage"])
    out = daemon.cli("search", "--json", "--limit", "100", "@type:Deposit", "AND",
                     error_word).stdout
    by_error = json.loads(out)
    assert {d["@id"] for d in by_error["documents"]} == failed
    # by status
    out = daemon.cli("search", "--json", "--limit", "100", "depositStatus:FAILED").stdout
    assert {d["@id"] for d in json.loads(out)["documents"]} == failed
    table = daemon.cli("search", "depositStatus:ACCEPTED").stdout
    assert f"{50 - len(FAILING)} found" in table

    # reindex into a copy: the same documents the relay wrote
    copy = f"{fresh_index}-copy"
    result = daemon.cli("reindex", "--index", copy)
    assert "reindexed 100 document(s)" in result.stdout
    assert all_documents(search_url, copy) == all_documents(search_url, fresh_index)
    index.close()
    daemon.stop_all()
    assert worker.returncode == 0
