"""SWORD 1.3 deposits through the real CLI, and ``check-target`` against every kind of
target (filesystem, SFTP, FTP, SWORDv2, SWORD 1.3; DSpace, InvenioRDM, Zenodo, dtool
with dserver): all passing, then one fault each, exit 1 with a line naming the fault
and the fix."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dtoolcore.utils
import pytest

from deposit_services.model.entities import Deposit, DepositStatus
from tests.e2e.conftest import Daemon, filesystem_repo, make_daemon, wait_until
from tests.integration.dspace.conftest import HANDLE, dspace_binding
from tests.integration.ftp.conftest import ftp_binding
from tests.integration.invenio.conftest import rdm_binding
from tests.integration.zenodo.conftest import zenodo_binding
from tests.support import dserver
from tests.support.dspace_server import running_dspace_server
from tests.support.ftp_server import running_ftp_server
from tests.support.graphs import make_graph, write_graph
from tests.support.invenio_server import running_invenio_server
from tests.support.sshd import Sshd, running_sshd
from tests.support.sword1_server import Sword1Server, running_sword1_server
from tests.support.sword_server import SwordServer, running_sword_server
from tests.support.zenodo_server import running_zenodo_server

MYCORE = {"@type": "Repository", "id": "repo-mycore", "name": "MyCoRe",
          "repositoryKey": "mycore", "integrationType": "ONE_WAY"}
METS = {"specification": "http://purl.org/net/sword/package/METSDSpaceSIP",
        "options": {"archive": "ZIP"}}


def sword1_entry(server: Sword1Server, **overrides: Any) -> dict[str, Any]:
    return {"assembler": METS,
            "transport-config": {"protocol-binding": server.binding(**overrides)}}


def sword2_entry(server: SwordServer, **overrides: Any) -> dict[str, Any]:
    binding = {"protocol": "SWORDv2", "username": server.username,
               "password": server.password, "service-doc": server.service_document_url,
               "default-collection": server.collection_url("default"),
               "connect-timeout": 2, "read-timeout": 10, **overrides}
    return {"assembler": METS, "transport-config": {"protocol-binding": binding}}


def sftp_entry(sshd: Sshd, directory: Path, **overrides: Any) -> dict[str, Any]:
    binding = {"protocol": "sftp", "server-fqdn": sshd.host, "server-port": str(sshd.port),
               "username": sshd.user, "private-key": str(sshd.client_key),
               "known-hosts": str(sshd.known_hosts), "default-directory": str(directory),
               "connect-timeout": 5, "read-timeout": 10, **overrides}
    return {"assembler": {"specification": "simple", "options": {"archive": "ZIP"}},
            "transport-config": {"protocol-binding": binding}}


def ftp_entry(binding: dict[str, Any]) -> dict[str, Any]:
    return {"assembler": {"specification": "nihms-native-2022-05",
                          "options": {"archive": "TAR", "compression": "GZIP"}},
            "transport-config": {"protocol-binding": binding}}


@pytest.fixture
def sword1() -> Iterator[Sword1Server]:
    with running_sword1_server() as server:
        yield server


# -- SWORD 1.3 deposits through submit + listen ------------------------------------------


def _submit(daemon: Daemon, sid: str) -> None:
    files = daemon.root / "files"
    graph = write_graph(daemon.root / f"{sid}.json",
                        make_graph(sid, files, repositories=[MYCORE]))
    daemon.cli("submit", str(graph), "--files-dir", str(files))


def _deposit(daemon: Daemon, sid: str) -> Deposit | None:
    store = daemon.store()
    try:
        found = store.find(Deposit, submission=sid)
    finally:
        store.close()
    return found[0] if found else None


def _wait_final(daemon: Daemon, sid: str) -> Deposit:
    final = (DepositStatus.ACCEPTED, DepositStatus.FAILED, DepositStatus.REJECTED)

    def done() -> bool:
        deposit = _deposit(daemon, sid)
        return deposit is not None and deposit.deposit_status in final

    wait_until(done, 60, f"{sid} to finish", daemon.processes)
    deposit = _deposit(daemon, sid)
    assert deposit is not None
    return deposit


def _daemon(tmp_path: Path, config: dict[str, Any]) -> Daemon:
    daemon = make_daemon(tmp_path)
    daemon.write_repositories(config)
    daemon.env["PASS_DEPOSIT_JOBS_DISABLED"] = "true"
    daemon.data_dir.mkdir(parents=True, exist_ok=True)
    daemon.store().close()
    return daemon


def test_mets_deposit_accepted_with_its_treatment(tmp_path: Path, sword1: Sword1Server) -> None:
    daemon = _daemon(tmp_path, {"mycore": sword1_entry(sword1)})
    try:
        _submit(daemon, "sub-m1")
        daemon.listen()
        deposit = _wait_final(daemon, "sub-m1")
    finally:
        daemon.stop_all()
    [item] = sword1.items.values()
    assert deposit.deposit_status is DepositStatus.ACCEPTED, deposit.status_message
    assert deposit.status_message == item.treatment
    assert "MyCoRe object" in item.treatment and "mets.xml" in item.files


@pytest.mark.parametrize(("overrides", "server_args", "reason"), [
    ({"password": "wrong"}, {}, "authentication failed for user 'depositor'"),
    ({}, {"max_upload_bytes": 1024}, "maxUploadSize of 1 kB"),
    ({"packaging": "http://example.org/Unknown"}, {}, "does not accept packaging"),
], ids=["wrong-password", "oversize", "unknown-packaging"])
def test_refused_deposits_fail_with_the_reason(tmp_path: Path, overrides: dict[str, Any],
                                               server_args: dict[str, Any], reason: str) -> None:
    with running_sword1_server(**server_args) as server:
        daemon = _daemon(tmp_path, {"mycore": sword1_entry(server, **overrides)})
        try:
            _submit(daemon, "sub-m2")
            daemon.listen()
            deposit = _wait_final(daemon, "sub-m2")
        finally:
            daemon.stop_all()
        assert server.items == {}
    assert deposit.deposit_status is DepositStatus.FAILED
    assert reason in (deposit.status_message or "")


# -- check-target -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture
def targets(tmp_path: Path, sshd: Sshd, sword1: Sword1Server
            ) -> Iterator[tuple[Daemon, dict[str, Any]]]:
    with running_sword_server() as sword2, running_ftp_server(tmp_path / "ftp") as ftp:
        config = {
            "archive": filesystem_repo(tmp_path / "archive"),
            "sftp": sftp_entry(sshd, tmp_path / "sftp-inbox" / "%s"),
            "pmc": ftp_entry(ftp_binding(ftp)),
            "dspace": sword2_entry(sword2),
            "mycore": sword1_entry(sword1),
        }
        (tmp_path / "daemon").mkdir()
        daemon = make_daemon(tmp_path / "daemon")
        daemon.write_repositories(config)
        yield daemon, config
        daemon.stop_all()


def test_check_target_all_pass_and_store_nothing(targets: tuple[Daemon, dict[str, Any]],
                                                 sword1: Sword1Server) -> None:
    daemon, config = targets
    result = daemon.cli("check-target", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for key in config:
        for check in ("config", "package", "target"):
            assert any(line.startswith(f"{key}  {check}") and " OK " in line
                       for line in lines), (key, check, result.stdout)
    assert "X-No-Op deposit" in result.stdout
    assert sword1.items == {}  # the No-Op deposit stored nothing
    [post] = [r for r in sword1.requests if r.method == "POST"]
    assert post.headers["X-No-Op"] == "true" and post.status == 201
    data = json.loads(daemon.cli("check-target", "mycore", "--json").stdout)
    assert {c["check"] for c in data} == {"config", "package", "target"}
    assert all(c["status"] == "ok" and c["repository"] == "mycore" for c in data)


def _fails(daemon: Daemon, key: str, *words: str) -> str:
    result = daemon.cli("check-target", key, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    [line] = [line for line in result.stdout.splitlines() if " FAIL " in line] or [
        result.stdout + result.stderr]
    assert line.startswith(f"{key}  target"), result.stdout
    for word in words:
        assert word in line, line
    return line


def test_check_target_faults(tmp_path: Path, targets: tuple[Daemon, dict[str, Any]],
                             sshd: Sshd) -> None:
    daemon, config = targets
    sword1_binding = config["mycore"]["transport-config"]["protocol-binding"]
    sword2_binding = config["dspace"]["transport-config"]["protocol-binding"]
    empty_known_hosts = tmp_path / "empty_known_hosts"
    empty_known_hosts.write_text("")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with running_ftp_server(tmp_path / "ro-ftp", perm="elr") as read_only:
        faulty = {
            "mycore": {**config["mycore"], "transport-config": {"protocol-binding": {
                **sword1_binding, "password": "wrong"}}},
            "dspace": {**config["dspace"], "transport-config": {"protocol-binding": {
                **sword2_binding,
                "default-collection": sword2_binding["default-collection"] + "-gone"}}},
            "sftp": sftp_entry(sshd, tmp_path / "inbox", **{
                "known-hosts": str(empty_known_hosts)}),
            "pmc": ftp_entry(ftp_binding(read_only)),
            "archive": filesystem_repo(blocker / "target"),
        }
        daemon.write_repositories(faulty)
        _fails(daemon, "mycore", "authentication failed", "check the protocol-binding's "
               "username and password")
        _fails(daemon, "dspace", "is not in the service document", "default-collection")
        _fails(daemon, "sftp", "is unknown", "add it to known-hosts")
        _fails(daemon, "pmc", "cannot create the directory", "550", "give 'depositor' permission")
        _fails(daemon, "archive", "not writable", "write permission")
        result = daemon.cli("check-target", check=False)
        assert result.returncode == 1
        assert result.stdout.count(" FAIL ") == 5
    assert not os.path.exists(blocker / "target")


SIMPLE = {"specification": "simple", "options": {"archive": "ZIP"}}


def _entry(binding: dict[str, Any]) -> dict[str, Any]:
    return {"assembler": SIMPLE, "transport-config": {"protocol-binding": binding}}


def test_check_target_rest_repositories_and_dtool(tmp_path: Path) -> None:
    """DSpace, InvenioRDM (with a community), Zenodo and dtool pass and keep nothing;
    then a wrong password, a missing community, a wrong token and a base URI dserver
    does not know each fail naming what to fix."""
    datasets = tmp_path / "datasets"
    datasets.mkdir()
    base_uri = str(dtoolcore.utils.sanitise_uri(str(datasets)))
    unknown = tmp_path / "unregistered"
    for folder in (unknown, tmp_path / "rdm", tmp_path / "zenodo"):
        folder.mkdir()
    with running_dspace_server(collections={HANDLE: "c0ffee00-0000-4000-8000-000000000004"}
                               ) as dspace, \
            running_invenio_server(directory=tmp_path / "rdm") as rdm, \
            running_zenodo_server(tmp_path / "zenodo") as zenodo, \
            dserver.running(tmp_path / "dserver") as dsrv:
        dsrv.add_user("depositor")
        dsrv.add_base_uri(base_uri, register=["depositor"], search=["depositor"])
        dtool = {"protocol": "dtool", "base-uri": base_uri, "dserver-url": dsrv.url,
                 "private-key-file": str(dsrv.private_key), "username": "depositor"}
        config = {
            "dspace7": _entry(dspace_binding(dspace)),
            "rdm": _entry(rdm_binding(rdm, community="pass-community")),
            "zenodo": _entry(zenodo_binding(zenodo)),
            "dtool": _entry(dtool),
        }
        (tmp_path / "daemon").mkdir()
        daemon = make_daemon(tmp_path / "daemon")
        daemon.write_repositories(config)
        result = daemon.cli("check-target", check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        targets = {line.split()[0]: line for line in result.stdout.splitlines()
                   if "  target " in line}
        assert all(" OK " in targets[key] for key in config), result.stdout
        assert f"collection {HANDLE} found" in targets["dspace7"]
        assert "community 'pass-community' found" in targets["rdm"]
        assert "written and removed" in targets["dtool"] and "'depositor'" in targets["dtool"]
        # nothing made: no items, records, depositions, datasets
        assert not dspace.app.items and not rdm.app.records and not zenodo.app.depositions
        assert list(datasets.iterdir()) == []

        faulty = {
            "dspace7": _entry(dspace_binding(dspace, DSPACE_PASSWORD="wrong")),
            "rdm": _entry(rdm_binding(rdm, community="no-such-community")),
            "zenodo": _entry(zenodo_binding(zenodo, **{"access-token": "wrong"})),
            "dtool": _entry({**dtool, "base-uri": str(unknown)}),
        }
        daemon.write_repositories(faulty)
        _fails(daemon, "dspace7", "credentials refused", "check DSPACE_USER and "
               "DSPACE_PASSWORD")
        _fails(daemon, "rdm", "'no-such-community' not found", "correct the binding's "
               "community")
        _fails(daemon, "zenodo", "credentials refused", "the token was refused",
               "access-token")
        _fails(daemon, "dtool", "does not let 'depositor' register", "flask base_uri add")
