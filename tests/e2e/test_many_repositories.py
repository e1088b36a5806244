"""Many repositories, the real CLI as processes (issue 21): a repository down for the
whole run waits under one pause while two others deliver everything; the operator's
pause and resume; the same DOI twice (one deposit sent, two with --force); a corrected
resubmission updating the SWORD item it replaces."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Daemon, filesystem_repo, wait_until
from tests.integration.invenio.conftest import rdm_binding
from tests.integration.lifecycle.conftest import sword_entry
from tests.support.graphs import make_graph, write_graph
from tests.support.invenio_server import running_invenio_server
from tests.support.sword_server import SwordServer, running_sword_server
from tests.support.tcp_proxy import TcpProxy

KEYS = ("alpha", "beta", "sword")


def repository(key: str) -> dict[str, str]:
    return {"@type": "Repository", "id": f"repo-{key}", "name": key, "repositoryKey": key,
            "integrationType": "ONE_WAY"}


def submit(daemon: Daemon, sid: str, keys: tuple[str, ...],
           contents: dict[str, bytes] | None = None, **metadata: Any) -> None:
    files = daemon.root / "files"
    graph = make_graph(sid, files, repositories=[repository(k) for k in keys],
                       metadata=metadata, files=contents)
    if "doi" in metadata:  # the publication says the same as the metadata blob
        for entity in graph:
            if entity["@type"] == "Publication":
                entity["doi"] = metadata["doi"]
    path = write_graph(daemon.root / f"{sid}.json", graph)
    daemon.cli("submit", str(path), "--files-dir", str(files))


def deposits(daemon: Daemon) -> dict[tuple[str, str], dict[str, Any]]:
    """(submission, repository key) -> the deposit as ``status --json`` shows it."""
    return {(s["id"], d["repositoryKey"]): d for s in daemon.status() for d in s["deposits"]}


@pytest.fixture
def sword_behind_proxy() -> Iterator[tuple[SwordServer, TcpProxy]]:
    """The SWORD test server reached (every URL it hands out too) through a relay the
    test can cut: the server going away and coming back."""
    with running_sword_server() as server:
        proxy = TcpProxy("127.0.0.1", server.port)
        proxy.start()
        server.base_url = server.app.base_url = f"http://127.0.0.1:{proxy.port}"
        try:
            yield server, proxy
        finally:
            proxy.close()


def test_a_repository_down_for_the_whole_run_waits_under_one_pause_while_others_deliver(
        daemon: Daemon, sword_behind_proxy: tuple[SwordServer, TcpProxy]) -> None:
    server, proxy = sword_behind_proxy
    proxy.cut()  # down from the start: connections refused
    daemon.write_repositories({
        "alpha": filesystem_repo(daemon.root / "alpha"),
        "beta": filesystem_repo(daemon.root / "beta"),
        "sword": {**sword_entry(server),
                  "operations": {"pause-after-failures": 2, "pause-seconds": 2}},
    })
    daemon.env.update({"PASS_DEPOSIT_JOBS_DEFAULT_INTERVAL_MS": "500",
                       "DEPOSIT_RETRY_BASE_SECONDS": "0.3", "DEPOSIT_RETRY_FACTOR": "1",
                       "DEPOSIT_RETRY_CAP_SECONDS": "0.3", "DEPOSIT_RETRY_MAX_ATTEMPTS": "100",
                       "DEPOSIT_RETRY_JITTER": "none", "PASS_DEPOSIT_WORKERS_CONCURRENCY": "2"})
    worker = daemon.listen()
    sids = [f"m{n}" for n in range(1, 7)]
    for sid in sids:
        submit(daemon, sid, KEYS)

    def held() -> bool:
        found = deposits(daemon)
        return (len(found) == 18
                and all(found[(s, k)]["depositStatus"] == "ACCEPTED"
                        for s in sids for k in ("alpha", "beta"))
                and all(found[(s, "sword")]["depositStatus"] == "RETRY"
                        and "is paused" in (found[(s, "sword")]["statusMessage"] or "")
                        for s in sids))

    wait_until(held, 120, "alpha and beta delivered, sword's deposits held", [worker])
    for key in ("alpha", "beta"):
        assert len(list((daemon.root / key).rglob("*.zip"))) == 6

    def probes() -> int:
        return daemon.log_text().count("repository sword probed")

    wait_until(lambda: probes() >= 1, 60, "the first probe", [worker])
    before = {s: deposits(daemon)[(s, "sword")]["attempts"] for s in sids}
    # while it stays down: probes, one per pause, and no deposit is attempted again
    wait_until(lambda: probes() >= 3, 60, "two more probes", [worker])
    found = deposits(daemon)
    assert {s: found[(s, "sword")]["attempts"] for s in sids} == before
    assert sum(before.values()) <= 2 + 2  # the threshold, plus what was in flight
    assert found[(sids[0], "sword")]["repositoryHealth"].startswith("paused (")
    table = daemon.cli("status").stdout
    assert "REPOSITORY" in table and "HEALTH" in table and "next probe at" in table

    proxy.restore()
    wait_until(lambda: all(d["depositStatus"] == "SUBMITTED"
                           for (s, k), d in deposits(daemon).items() if k == "sword"),
               90, "every waiting deposit delivered", [worker])
    found = deposits(daemon)
    assert len(server.deposits) == 6  # each delivered once
    assert {s: found[(s, "sword")]["attempts"] for s in sids} == {
        s: n + 1 for s, n in before.items()}
    # a handful of probes: one per pause period (2 s), never one per deposit or per cycle
    stamps = [datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
              for line in daemon.log_text().splitlines() if "repository sword probed" in line]
    assert len(stamps) == probes() >= 3
    assert all((b - a).total_seconds() >= 1.9 for a, b in itertools.pairwise(stamps))
    daemon.stop_all()


def test_an_operator_pause_holds_deposits_until_resume(daemon: Daemon) -> None:
    daemon.env.update({"PASS_DEPOSIT_JOBS_DEFAULT_INTERVAL_MS": "500"})
    paused = daemon.cli("pause", "ARCHIVE", "--reason", "migration to new storage")
    assert "archive: paused (paused by the operator: migration to new storage)" in paused.stdout
    assert daemon.cli("pause", "nowhere", check=False).returncode == 2
    assert daemon.cli("pause", "archive", "--until", "yesterday", check=False).returncode == 2
    worker = daemon.listen()
    submit(daemon, "p1", ("archive",))
    wait_until(lambda: deposits(daemon).get(("p1", "archive"), {}).get("depositStatus")
               == "RETRY", 60, "the deposit held", [worker])
    held = deposits(daemon)[("p1", "archive")]
    assert "paused by the operator: migration to new storage" in held["statusMessage"]
    assert held["attempts"] == 0
    assert not list(daemon.target_dir.rglob("*.zip"))
    resumed = daemon.cli("resume", "archive")
    assert "1 waiting deposit(s) are due now" in resumed.stdout
    wait_until(lambda: deposits(daemon)[("p1", "archive")]["depositStatus"] == "ACCEPTED",
               60, "delivered after resume", [worker])
    assert len(list(daemon.target_dir.rglob("*.zip"))) == 1
    daemon.stop_all()


def test_the_same_doi_twice_is_sent_once_and_with_force_twice(daemon: Daemon) -> None:
    worker = daemon.listen()
    same: dict[str, Any] = {"doi": "https://doi.org/10.5555/E2E.Twice", "title": "Twice told",
                            "contents": {"twice.txt": b"the same bytes\n"}}
    submit(daemon, "t1", ("archive",), **same)
    wait_until(lambda: deposits(daemon).get(("t1", "archive"), {}).get("depositStatus")
               == "ACCEPTED", 60, "the first deposit", [worker])
    submit(daemon, "t2", ("archive",), **{**same, "doi": "10.5555/e2e.twice"})
    wait_until(lambda: deposits(daemon).get(("t2", "archive"), {}).get("depositStatus")
               == "FAILED", 60, "the duplicate refused", [worker])
    first, second = deposits(daemon)[("t1", "archive")], deposits(daemon)[("t2", "archive")]
    assert f"from deposit {first['id']} (ACCEPTED, submission t1)" in second["statusMessage"]
    assert second["repositoryCopy"] is None
    assert len(list(daemon.target_dir.rglob("*.zip"))) == 1
    forced = daemon.cli("retry", "--force", "--uri", second["id"], "--json")
    assert json.loads(forced.stdout)
    assert deposits(daemon)[("t2", "archive")]["depositStatus"] == "ACCEPTED"
    assert len(list(daemon.target_dir.rglob("*.zip"))) == 2
    daemon.stop_all()


def test_a_corrected_resubmission_updates_the_sword_item(daemon: Daemon, tmp_path: Path
                                                          ) -> None:
    with running_sword_server() as server:
        daemon.write_repositories({"sword": sword_entry(server)})
        worker = daemon.listen()
        submit(daemon, "c1", ("sword",), doi="10.5555/corrected", title="Draft title")
        wait_until(lambda: deposits(daemon).get(("c1", "sword"), {}).get("depositStatus")
                   == "SUBMITTED", 60, "the first deposit", [worker])
        (item,) = server.deposits.values()
        first_md5 = item.md5
        submit(daemon, "c2", ("sword",), doi="10.5555/corrected", title="Final title")
        wait_until(lambda: deposits(daemon).get(("c2", "sword"), {}).get("depositStatus")
                   == "SUBMITTED", 60, "the corrected deposit", [worker])
        found = deposits(daemon)
        assert len(server.deposits) == 1  # the same item, not a second one
        (item,) = server.deposits.values()
        assert item.updates >= 1 and item.md5 != first_md5
        assert any(b"Final title" in entry for entry in item.metadata)
        assert found[("c2", "sword")]["depositStatusRef"] == found[("c1", "sword")][
            "depositStatusRef"]
        # said in the deposit's message (until a refresh says what the server says now)
        # and in the log
        said = (f"{found[('c2', 'sword')]['id']}: a corrected resubmission of DOI "
                f"10.5555/corrected: updated the item of deposit {found[('c1', 'sword')]['id']}")
        assert said in daemon.log_text()
        daemon.stop_all()


def test_a_corrected_resubmission_makes_a_new_invenio_rdm_version(daemon: Daemon,
                                                                   tmp_path: Path) -> None:
    with running_invenio_server(directory=tmp_path) as rdm:
        daemon.write_repositories({"rdm": {
            "assembler": {"specification": "invenioRdm", "beanName": "invenioRdmAssembler"},
            "transport-config": {"protocol-binding": rdm_binding(rdm)}}})
        worker = daemon.listen()
        submit(daemon, "v1", ("rdm",), doi="10.5555/versioned", title="First version")
        wait_until(lambda: deposits(daemon).get(("v1", "rdm"), {}).get("depositStatus")
                   == "ACCEPTED", 60, "the first record", [worker])
        submit(daemon, "v2", ("rdm",), doi="10.5555/versioned", title="Second version")
        wait_until(lambda: deposits(daemon).get(("v2", "rdm"), {}).get("depositStatus")
                   == "ACCEPTED", 60, "the new version", [worker])
        first, second = sorted(rdm.app.published(), key=lambda r: r.version)
        assert (first.version, second.version) == (1, 2)
        assert first.parent == second.parent  # versions of one record, not two records
        assert (first.metadata["title"], second.metadata["title"]) == (
            "First version", "Second version")
        found = deposits(daemon)
        assert "a corrected resubmission of DOI 10.5555/versioned: updated the item of " \
               f"deposit {found[('v1', 'rdm')]['id']}" in found[("v2", "rdm")]["statusMessage"]
        daemon.stop_all()


def test_notices_without_an_smtp_server_stop_listen_with_a_configuration_error(
        daemon: Daemon) -> None:
    entry = filesystem_repo(daemon.target_dir)
    entry["operations"] = {"notices": {"to": ["staff@repository.example"]}}
    daemon.write_repositories({"archive": entry})
    worker = daemon.listen()
    assert worker.wait(timeout=60) == 2
    assert "DEPOSIT_SMTP_HOST is not set" in daemon.log_text()
