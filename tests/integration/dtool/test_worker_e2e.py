"""End to end through the real worker (``deposit-services listen`` as a process): a
dataset submission deposited as an RO-Crate, written as a frozen dtool dataset and
registered in dserver; and the same with the worker SIGKILLed after freezing, while
it registers: one dataset, one registration."""

from __future__ import annotations

import hashlib
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dtoolcore
import pytest

from deposit_services.model.entities import CopyStatus, Deposit, DepositStatus, RepositoryCopy
from tests.e2e.conftest import Daemon, make_daemon, wait_until
from tests.support.dserver import DServer
from tests.support.graphs import make_graph, write_graph

REPO = {"@type": "Repository", "id": "repo-datasets", "name": "Datasets",
        "repositoryKey": "datasets", "integrationType": "ONE_WAY"}
NO_JOBS = {"PASS_DEPOSIT_JOBS_DISABLED": "true"}
FILES = {"salinity.csv": b"t,salinity\n" + b"1,30.1\n" * 3000,
         "site.json": b'{"site": "estuary mouth"}\n', "raw.bin": bytes(range(256)) * 4000}


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    d = make_daemon(tmp_path)
    yield d
    d.stop_all()


def entry(server_url: str, dserver_app: DServer, base_uri: str, user: str) -> dict[str, Any]:
    return {
        "assembler": {"specification": "ro-crate-1.1",
                      "options": {"archive": "ZIP", "license": "https://spdx.org/licenses/CC0-1.0"}},
        "transport-config": {"protocol-binding": {
            "protocol": "dtool", "base-uri": base_uri, "dserver-url": server_url,
            "private-key-file": str(dserver_app.private_key), "username": user,
            "repository-key": "datasets", "tags": ["pass-deposit"], "timeout": 600}},
    }


def submit(daemon: Daemon, sid: str) -> None:
    files = daemon.root / "files"
    graph = write_graph(daemon.root / f"{sid}.json",
                        make_graph(sid, files, repositories=[REPO], files=FILES))
    daemon.data_dir.mkdir(parents=True, exist_ok=True)
    daemon.cli("submit", str(graph), "--files-dir", str(files))


def deposit_of(daemon: Daemon, sid: str) -> Deposit | None:
    store = daemon.store()
    try:
        found = store.find(Deposit, submission=sid)
        return found[0] if found else None
    finally:
        store.close()


def copy_of(daemon: Daemon, deposit: Deposit) -> RepositoryCopy:
    store = daemon.store()
    try:
        copy: RepositoryCopy = store.get(RepositoryCopy, deposit.repository_copy or "")
        return copy
    finally:
        store.close()


def accepted(daemon: Daemon, sid: str) -> Deposit:
    def done() -> bool:
        deposit = deposit_of(daemon, sid)
        return deposit is not None and deposit.deposit_status is DepositStatus.ACCEPTED
    wait_until(done, 120, f"{sid} ACCEPTED", daemon.processes)
    deposit = deposit_of(daemon, sid)
    assert deposit is not None
    return deposit


def check_dataset(daemon: Daemon, dserver_app: DServer, deposit: Deposit, user: str) -> None:
    copy = copy_of(daemon, deposit)
    assert copy.copy_status is CopyStatus.COMPLETE
    dataset = dtoolcore.DataSet.from_uri(copy.access_url)
    assert dataset.admin_metadata["type"] == "dataset"
    assert list(copy.external_ids) == [dataset.uuid]
    items = {dataset.item_properties(i)["relpath"]: dataset.item_properties(i)
             for i in dataset.identifiers}
    for name, content in FILES.items():
        assert items[name]["hash"] == hashlib.md5(content).hexdigest()
    assert "ro-crate-metadata.json" in items
    status, by_uuid = dserver_app.request("GET", f"/uuids/{dataset.uuid}", username=user)
    assert status == 200 and [e["uri"] for e in by_uuid] == [dataset.uri]
    status, by_tag = dserver_app.request("POST", "/uris", {"tags": ["pass-deposit"]},
                                         username=user)
    assert status == 200 and [e["uuid"] for e in by_tag] == [dataset.uuid]


def test_the_worker_deposits_a_dataset_submission_into_dtool_and_dserver(
        daemon: Daemon, dserver_app: DServer, base_uri: str, worker: str) -> None:
    daemon.write_repositories({"datasets": entry(dserver_app.url, dserver_app, base_uri,
                                                 worker)})
    submit(daemon, "dtool-e2e")
    daemon.listen("worker", NO_JOBS)
    check_dataset(daemon, dserver_app, accepted(daemon, "dtool-e2e"), worker)


@pytest.fixture
def hanging_dserver() -> Iterator[tuple[str, threading.Event]]:
    """A URL whose server accepts connections and never answers, and an event set when
    a connection came: the worker is then inside its registration request."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    held: list[socket.socket] = []
    stop, came = threading.Event(), threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
                came.set()
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}", came
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_sigkill_after_freezing_before_registering_gives_one_dataset_one_registration(
        daemon: Daemon, dserver_app: DServer, base_uri: str, worker: str,
        hanging_dserver: tuple[str, threading.Event]) -> None:
    url, registering = hanging_dserver
    daemon.write_repositories({"datasets": entry(url, dserver_app, base_uri, worker)})
    submit(daemon, "dtool-kill")
    first = daemon.listen("crashing", NO_JOBS)
    assert registering.wait(120), daemon.log_text("crashing")
    first.send_signal(signal.SIGKILL)
    assert first.wait(30) == -signal.SIGKILL
    daemon.processes.remove(first)
    [frozen] = dtoolcore.iter_datasets_in_base_uri(base_uri)
    frozen_at = frozen.admin_metadata["frozen_at"]
    status, none_yet = dserver_app.request("GET", f"/uuids/{frozen.uuid}", username=worker)
    assert (status, none_yet) == (200, [])

    daemon.write_repositories({"datasets": entry(dserver_app.url, dserver_app, base_uri,
                                                 worker)})
    daemon.listen("restarted", NO_JOBS)
    deposit = accepted(daemon, "dtool-kill")
    check_dataset(daemon, dserver_app, deposit, worker)
    [again] = dtoolcore.iter_datasets_in_base_uri(base_uri)
    assert (again.uuid, again.admin_metadata["frozen_at"]) == (frozen.uuid, frozen_at)


@pytest.mark.parametrize("fault", ["dserver down", "wrong token", "unknown base URI"])
def test_registration_faults_end_as_retry_or_failed_with_what_to_fix(
        daemon: Daemon, dserver_app: DServer, base_uri: str, worker: str, tmp_path: Path,
        fault: str) -> None:
    config = entry(dserver_app.url, dserver_app, base_uri, worker)
    binding = config["transport-config"]["protocol-binding"]
    expected, words = DepositStatus.FAILED, "refused the credentials"
    if fault == "dserver down":
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            binding["dserver-url"] = f"http://127.0.0.1:{probe.getsockname()[1]}"
        expected, words = DepositStatus.RETRY, "failed"
    elif fault == "wrong token":
        binding["username"] = "not-a-dserver-user"
    else:
        elsewhere = tmp_path / "unregistered"
        elsewhere.mkdir()
        binding["base-uri"] = str(elsewhere)
        words = "is not registered in dserver"
    daemon.write_repositories({"datasets": config})
    submit(daemon, "dtool-fault")
    daemon.listen("worker", NO_JOBS)

    def ended() -> bool:
        deposit = deposit_of(daemon, "dtool-fault")
        return deposit is not None and deposit.deposit_status is expected
    wait_until(ended, 120, f"deposit {expected.value}", daemon.processes)
    deposit = deposit_of(daemon, "dtool-fault")
    assert deposit is not None and deposit.status_message is not None
    assert words in deposit.status_message
    assert deposit.repository_copy is None  # no copy until it is registered
    assert "BEGIN" not in deposit.status_message and "PRIVATE" not in deposit.status_message
