"""The FTP/FTPS transport against real pyftpdlib servers on loopback."""

from __future__ import annotations

import ftplib
import hashlib
import os
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from deposit_services.assemblers.base import Package
from deposit_services.errors import (
    AuthenticationError,
    PermanentTransferError,
    RepositoryConfigError,
    TransientTransferError,
)
from deposit_services.model.submission import DepositSubmission
from deposit_services.transports.base import create_transport
from deposit_services.transports.ftp import FtpTransport
from tests.integration.ftp.conftest import ServerFactory, ftp_binding
from tests.support.ftp_server import FtpServer, running_ftp_server


def today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def final_path(server: FtpServer, package: Package) -> Path:
    return server.root / "logs" / "upload" / today() / package.name


@pytest.mark.parametrize("tls", [False, True], ids=["ftp", "ftps"])
def test_pass_binding_delivers_the_package_intact_via_a_temporary_name(
    start_ftp: ServerFactory, package: Package, submission: DepositSubmission, tls: bool
) -> None:
    """PASS's PubMed Central binding; %s is today's UTC date, created with its parents.
    The FTPS server refuses anything but TLS on control and data connections."""
    server = start_ftp(tls=tls)
    transport = create_transport(ftp_binding(server))
    assert isinstance(transport, FtpTransport)

    receipt = transport.send(package, submission)

    final = final_path(server, package)
    assert sha256(final) == package.sha256
    assert len(server.received) == 1
    temp = Path(server.received[0])
    assert temp.parent == final.parent
    assert temp.name.startswith(f".{package.name}.") and temp.name.endswith(".part")
    assert server.renames == [(str(temp), str(final))]
    assert [p.name for p in final.parent.iterdir()] == [package.name]
    scheme = "ftps" if tls else "ftp"
    assert receipt.accepted and receipt.status_ref is None
    assert receipt.access_url == (
        f"{scheme}://127.0.0.1:{server.port}/logs/upload/{today()}/{package.name}")


def test_active_mode_works_too(
    ftp_server: FtpServer, package: Package, submission: DepositSubmission
) -> None:
    FtpTransport(ftp_binding(ftp_server, **{"use-pasv": False})).send(package, submission)
    assert sha256(final_path(ftp_server, package)) == package.sha256


def test_same_size_already_present_is_not_sent_again(
    ftp_server: FtpServer, package: Package, submission: DepositSubmission
) -> None:
    transport = FtpTransport(ftp_binding(ftp_server))
    transport.send(package, submission)
    final = final_path(ftp_server, package)
    os.utime(final, (1_000_000_000, 1_000_000_000))

    receipt = transport.send(package, submission)

    assert receipt.accepted
    assert receipt.message is not None and "not sent again" in receipt.message
    assert len(ftp_server.received) == 1  # no second STOR
    assert final.stat().st_mtime == 1_000_000_000


def test_a_different_file_under_the_final_name_is_a_permanent_error(
    ftp_server: FtpServer, package: Package, submission: DepositSubmission
) -> None:
    final = final_path(ftp_server, package)
    final.parent.mkdir(parents=True)
    final.write_bytes(b"somebody else's file")
    with pytest.raises(PermanentTransferError, match=r"already exists with 20 bytes.*remove it"):
        FtpTransport(ftp_binding(ftp_server)).send(package, submission)
    assert final.read_bytes() == b"somebody else's file"
    assert ftp_server.received == []


@pytest.mark.parametrize("tls", [False, True], ids=["ftp", "ftps"])
def test_a_server_dropping_the_upload_is_transient_and_leaves_nothing_behind(
    start_ftp: ServerFactory, package: Package, submission: DepositSubmission, tls: bool
) -> None:
    """The server closes the data connection after 1 MB of ~3 MB; a retry succeeds."""
    server = start_ftp(tls=tls, drop_after=1_000_000)
    with pytest.raises(TransientTransferError, match=r"127.0.0.1"):
        FtpTransport(ftp_binding(server)).send(package, submission)
    final = final_path(server, package)
    assert server.incomplete and Path(server.incomplete[0]).name.endswith(".part")
    assert list(final.parent.iterdir()) == []  # no final name, temporary file removed
    assert server.renames == []

    healthy = start_ftp(tls=tls)
    FtpTransport(ftp_binding(healthy)).send(package, submission)
    assert sha256(final_path(healthy, package)) == package.sha256


def test_wrong_password_is_an_authentication_error_with_the_reply(
    ftp_server: FtpServer, package: Package, submission: DepositSubmission
) -> None:
    with pytest.raises(AuthenticationError) as caught:
        FtpTransport(ftp_binding(ftp_server, password="wrong-password")).send(package, submission)
    message = str(caught.value)
    assert "530" in message and "check username and password" in message
    assert f"depositor@127.0.0.1:{ftp_server.port}" in message
    assert "wrong-password" not in message


def test_a_self_signed_certificate_is_refused_unless_its_ca_is_given(
    start_ftp: ServerFactory, package: Package, submission: DepositSubmission
) -> None:
    server = start_ftp(tls=True)
    with pytest.raises(PermanentTransferError, match=r"cannot be verified.*ca-file"):
        FtpTransport(ftp_binding(server, **{"ca-file": None})).send(package, submission)
    assert server.received == []
    FtpTransport(ftp_binding(server)).send(package, submission)  # with ca-file
    assert sha256(final_path(server, package)) == package.sha256


def test_permission_denied_is_permanent_with_the_server_reply(
    start_ftp: ServerFactory, package: Package, submission: DepositSubmission
) -> None:
    server = start_ftp(perm="elr")  # read-only account
    with pytest.raises(PermanentTransferError, match=r"550") as caught:
        FtpTransport(ftp_binding(server)).send(package, submission)
    assert not isinstance(caught.value, AuthenticationError)
    assert not (server.root / "logs").exists()


def test_a_busy_server_421_is_transient_after_the_connect_retries(
    start_ftp: ServerFactory, package: Package, submission: DepositSubmission
) -> None:
    server = start_ftp(max_clients=1)
    holder = ftplib.FTP()  # noqa: S321
    holder.connect("127.0.0.1", server.port, timeout=5)
    try:
        with pytest.raises(TransientTransferError, match=r"421.*3 attempt"):
            FtpTransport(ftp_binding(server, **{"connect-attempts": 3})).send(package,
                                                                              submission)
    finally:
        holder.close()
    assert server.received == []


def test_connect_is_retried_with_backoff_until_the_server_is_up(
    tmp_path: Path, package: Package, submission: DepositSubmission
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = threading.Event()
    stop = threading.Event()
    servers: list[FtpServer] = []

    def late_server() -> None:
        time.sleep(0.4)
        with running_ftp_server(tmp_path / "late", port=port) as server:
            servers.append(server)
            started.set()
            stop.wait(30)

    thread = threading.Thread(target=late_server, daemon=True)
    thread.start()
    try:
        probe = FtpServer(root=tmp_path, port=port, tls=False, ca_file=None)
        binding = ftp_binding(probe, **{"connect-attempts": 6, "connect-backoff": 0.1})
        begun = time.monotonic()
        FtpTransport(binding).send(package, submission)
        assert time.monotonic() - begun >= 0.3  # waited for the server, did not give up
        assert started.is_set()
        assert sha256(final_path(servers[0], package)) == package.sha256
    finally:
        stop.set()
        thread.join(10)


def test_connection_refused_is_transient(
    tmp_path: Path, package: Package, submission: DepositSubmission
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    probe = FtpServer(root=tmp_path, port=port, tls=False, ca_file=None)
    with pytest.raises(TransientTransferError, match=r"connection refused.*2 attempt"):
        FtpTransport(ftp_binding(probe, **{"connect-attempts": 2})).send(package, submission)


@pytest.mark.parametrize(("change", "problem"), [
    ({"data-type": "ascii"}, "data-type"),
    ({"transfer-mode": "block"}, "transfer-mode"),
    ({"server-fqdn": ""}, "server-fqdn"),
    ({"passive": True}, "passive"),
])
def test_a_bad_binding_is_a_configuration_error(
    ftp_server: FtpServer, change: dict[str, object], problem: str
) -> None:
    with pytest.raises(RepositoryConfigError, match=problem):
        FtpTransport(ftp_binding(ftp_server, **change))


def test_pass_values_in_upper_case_are_accepted(ftp_server: FtpServer) -> None:
    transport = FtpTransport(ftp_binding(ftp_server, **{"data-type": "BINARY",
                                                        "transfer-mode": "Stream"}))
    assert transport.binding.data_type == "binary"


def test_a_missing_ca_file_is_a_permanent_error(
    start_ftp: ServerFactory, package: Package, submission: DepositSubmission, tmp_path: Path
) -> None:
    server = start_ftp(tls=True)
    binding = ftp_binding(server, **{"ca-file": str(tmp_path / "nowhere.pem")})
    with pytest.raises(PermanentTransferError, match=r"ca-file .*nowhere.pem does not exist"):
        FtpTransport(binding).send(package, submission)


@pytest.mark.parametrize(("directory", "where"), [
    ("", ""), ("incoming/%s", "incoming/{today}")], ids=["login-dir", "relative"])
def test_directories_relative_to_the_login_directory(
    ftp_server: FtpServer, package: Package, submission: DepositSubmission, directory: str,
    where: str
) -> None:
    receipt = FtpTransport(ftp_binding(ftp_server, **{"default-directory": directory})).send(
        package, submission)
    relative = where.format(today=today())
    final = ftp_server.root / relative / package.name
    assert sha256(final) == package.sha256
    path = f"/{relative}/{package.name}" if relative else f"/{package.name}"
    assert receipt.access_url == f"ftp://127.0.0.1:{ftp_server.port}{path}"


def test_ftps_data_connections_resume_the_control_session(
    start_ftp: ServerFactory, package: Package, submission: DepositSubmission
) -> None:
    """As vsftpd requires by default (require_ssl_reuse); ftplib alone does not offer it."""
    server = start_ftp(tls=True)
    FtpTransport(ftp_binding(server)).send(package, submission)
    assert server.tls_data_resumed and all(server.tls_data_resumed)


@pytest.mark.parametrize("tls", [False, True], ids=["ftp", "ftps"])
def test_reconcile_finds_the_package_in_the_directory_of_the_attempts_day(
    start_ftp: ServerFactory, package: Package, tls: bool
) -> None:
    """A worker died after sending, before midnight, and is restarted after it: the
    package is recognised in that day's directory, nothing is uploaded again."""
    server = start_ftp(tls=tls)
    transport = FtpTransport(ftp_binding(server))
    yesterday = (datetime.now(UTC) - timedelta(days=1)).replace(hour=23, minute=59)
    evidence = {"attempt": "1", "started_at": yesterday.isoformat()}
    assert transport.reconcile(package, evidence) is None  # no such directory yet

    earlier = server.root / "logs" / "upload" / yesterday.strftime("%Y-%m-%d")
    earlier.mkdir(parents=True)
    assert transport.reconcile(package, evidence) is None  # directory, no package
    (earlier / package.name).write_bytes(package.path.read_bytes())

    receipt = transport.reconcile(package, evidence)

    assert receipt is not None and receipt.accepted
    assert receipt.access_url == (f"{'ftps' if tls else 'ftp'}://{server.host}:{server.port}"
                                  f"/logs/upload/{earlier.name}/{package.name}")
    assert server.received == [], "nothing uploaded"
    assert not final_path(server, package).parent.exists(), "today's directory not made"
