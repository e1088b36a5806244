"""Whole submissions through the real worker (``deposit-services listen``) to SFTP and FTPS.

One submission names two repositories, one dropped over SFTP to the test sshd, one over
FTPS to a pyftpdlib server; the worker assembles, transfers and records them. The
packages must arrive whole (their zip entries are the submitted files, byte for byte)
and the records must be as DESIGN.md section 3 says for a protocol that hands over
custody at once: Deposit ACCEPTED, RepositoryCopy COMPLETE with the drop's URL,
Submission ACCEPTED. A repository whose credentials are wrong FAILS its deposit with
the server's words; one that cannot be reached is put in RETRY.
"""

from __future__ import annotations

import socket
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from tests.e2e.conftest import Daemon, make_daemon, wait_until
from tests.support.ftp_server import FtpServer, FtpServerUnavailable, running_ftp_server
from tests.support.graphs import make_graph, write_graph
from tests.support.sshd import Sshd

FILES = {
    "manuscript.txt": b"The manuscript.\n" * 500,
    "figure 1.png": b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 400,
}


@pytest.fixture
def ftps(tmp_path: Path) -> Iterator[FtpServer]:
    try:
        with running_ftp_server(tmp_path / "ftps", tls=True) as server:
            yield server
    except FtpServerUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    d = make_daemon(tmp_path)
    yield d
    d.stop_all()


def repository(key: str) -> dict[str, Any]:
    return {"@type": "Repository", "id": f"repo-{key}", "name": key, "repositoryKey": key,
            "integrationType": "ONE_WAY"}


def sftp_entry(sshd: Sshd, directory: Path, **overrides: Any) -> dict[str, Any]:
    binding = {
        "protocol": "sftp", "server-fqdn": "127.0.0.1", "server-port": str(sshd.port),
        "username": sshd.user, "private-key": str(sshd.client_key),
        "known-hosts": str(sshd.known_hosts), "default-directory": f"{directory}/%s",
        "connect-timeout": 5,
    }
    binding.update(overrides)
    return {"assembler": {"specification": "simple", "options": {"archive": "ZIP"}},
            "transport-config": {"protocol-binding": binding}}


def ftps_entry(server: FtpServer, **overrides: Any) -> dict[str, Any]:
    binding = {
        "protocol": "ftp", "server-fqdn": "127.0.0.1", "server-port": str(server.port),
        "username": server.username, "password": server.password, "data-type": "binary",
        "transfer-mode": "stream", "use-pasv": True, "default-directory": "/upload/%s",
        "use-tls": True, "ca-file": str(server.ca_file), "connect-timeout": 5,
        "connect-backoff": 0.05,
    }
    binding.update(overrides)
    return {
        "deposit-config": {"mapping": {"INFO": "accepted", "ERROR": "rejected",
                                       "default-mapping": "submitted"}},
        "assembler": {"specification": "simple", "options": {"archive": "ZIP"}},
        "transport-config": {"protocol-binding": binding},
    }


def submit(daemon: Daemon, submission_id: str, keys: list[str]) -> None:
    files = daemon.root / "files"
    graph = make_graph(submission_id, files, repositories=[repository(k) for k in keys],
                       files=FILES)
    path = write_graph(daemon.root / f"{submission_id}.json", graph)
    daemon.cli("submit", str(path), "--files-dir", str(files))


def deposits_by_key(daemon: Daemon, submission_id: str) -> dict[str, dict[str, Any]]:
    return {d["repositoryKey"]: d for d in daemon.status(submission_id)[0]["deposits"]}


def assert_whole_package(path: Path) -> None:
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        contents = {Path(n).name: archive.read(n) for n in archive.namelist()}
    for name, data in FILES.items():
        assert contents.get(name) == data, f"{name} differs in {path}"


def test_a_submission_reaches_sftp_and_ftps_repositories_and_is_accepted(
    daemon: Daemon, sshd: Sshd, ftps: FtpServer, tmp_path: Path
) -> None:
    inbox = tmp_path / "sftp-inbox"
    daemon.write_repositories({"archive": sftp_entry(sshd, inbox), "pmc": ftps_entry(ftps)})
    daemon.listen()
    submit(daemon, "drop-1", ["archive", "pmc"])
    wait_until(lambda: daemon.status("drop-1")[0]["aggregatedDepositStatus"] == "ACCEPTED",
               60, "the submission to be ACCEPTED", daemon.processes)

    deposits = deposits_by_key(daemon, "drop-1")
    for key, scheme in (("archive", "sftp"), ("pmc", "ftps")):
        deposit = deposits[key]
        assert deposit["depositStatus"] == "ACCEPTED", deposit
        assert deposit["depositStatusRef"] is None
        copy = deposit["repositoryCopy"]
        assert copy["copyStatus"] == "COMPLETE"
        assert copy["accessUrl"].startswith(f"{scheme}://127.0.0.1:")
        assert copy["externalIds"] == [copy["accessUrl"]]
    sftp_path = Path(unquote(urlsplit(deposits["archive"]["repositoryCopy"]["accessUrl"]).path))
    assert sftp_path.is_relative_to(inbox)
    assert_whole_package(sftp_path)
    ftp_path = ftps.root / unquote(
        urlsplit(deposits["pmc"]["repositoryCopy"]["accessUrl"]).path).lstrip("/")
    assert_whole_package(ftp_path)
    assert len(ftps.received) == 1 and ftps.renames[0][1] == str(ftp_path)


def test_wrong_credentials_fail_the_deposit_and_an_unreachable_server_retries_it(
    daemon: Daemon, sshd: Sshd, ftps: FtpServer, tmp_path: Path
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    daemon.write_repositories({
        "archive": sftp_entry(sshd, tmp_path / "in", **{"server-port": str(closed)}),
        "pmc": ftps_entry(ftps, password="wrong-password"),
    })
    daemon.listen()
    submit(daemon, "drop-2", ["archive", "pmc"])

    def settled() -> bool:
        deposits = deposits_by_key(daemon, "drop-2")
        return (deposits.get("pmc", {}).get("depositStatus") == "FAILED"
                and deposits.get("archive", {}).get("depositStatus") == "RETRY")

    wait_until(settled, 60, "pmc FAILED and archive RETRY", daemon.processes)
    deposits = deposits_by_key(daemon, "drop-2")
    assert "530" in deposits["pmc"]["statusMessage"]
    assert "check username and password" in deposits["pmc"]["statusMessage"]
    assert "wrong-password" not in deposits["pmc"]["statusMessage"]
    assert deposits["pmc"]["repositoryCopy"] is None
    assert "connection refused" in deposits["archive"]["statusMessage"]
    assert ftps.received == []
