"""The SFTP transport against a real OpenSSH sshd on loopback."""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

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
from deposit_services.transports.sftp import SftpTransport
from tests.integration.sftp.conftest import password_account, today
from tests.support.sshd import Sshd, key_fingerprint, make_key
from tests.support.tcp_proxy import TcpProxy

Binding = Callable[..., dict[str, Any]]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def parts_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".part"))


def test_key_auth_delivers_the_package_intact_into_the_dated_directory(
    key_binding: Binding, package: Package, submission: DepositSubmission, tmp_path: Path
) -> None:
    """Registered as ``sftp``; ``%s`` becomes today's UTC date, created with its parents."""
    transport = create_transport(key_binding(**{
        "default-directory": str(tmp_path / "inbox" / "nested" / "%s" / "pmc")}))
    assert isinstance(transport, SftpTransport)

    receipt = transport.send(package, submission)

    target = tmp_path / "inbox" / "nested" / today() / "pmc"
    final = target / package.name
    assert sha256(final) == package.sha256
    assert final.stat().st_size == package.size
    assert parts_in(target) == []
    assert receipt.accepted and receipt.status_ref is None
    assert receipt.access_url is not None
    assert receipt.access_url.startswith("sftp://127.0.0.1:")
    assert receipt.access_url.endswith(f"{target}/{package.name}")
    assert receipt.external_ids == (receipt.access_url,)


def test_password_auth_delivers_the_package(
    sshd: Sshd, package: Package, submission: DepositSubmission
) -> None:
    """A throwaway system account with a password (PASS's binding keys only + a pin)."""
    account = password_account(sshd)
    transport = SftpTransport({
        "protocol": "sftp", "server-fqdn": "127.0.0.1", "server-port": str(sshd.port),
        "username": account.name, "password": account.password,
        "default-directory": str(account.directory / "%s"),
        "host-key-fingerprint": sshd.fingerprint,
    })
    transport.send(package, submission)
    final = account.directory / today() / package.name
    assert sha256(final) == package.sha256
    assert final.stat().st_uid == pwd.getpwnam(account.name).pw_uid  # as that account


def test_same_size_already_present_is_not_sent_again(
    key_binding: Binding, package: Package, submission: DepositSubmission, tmp_path: Path
) -> None:
    transport = SftpTransport(key_binding())
    transport.send(package, submission)
    final = tmp_path / "inbox" / today() / package.name
    os.utime(final, (1_000_000_000, 1_000_000_000))
    inode = final.stat().st_ino

    receipt = transport.send(package, submission)

    assert receipt.accepted
    assert receipt.message is not None and "not sent again" in receipt.message
    assert final.stat().st_mtime == 1_000_000_000  # not rewritten
    assert final.stat().st_ino == inode  # not replaced by a rename either
    assert parts_in(final.parent) == []


def test_reconcile_finds_the_package_in_the_directory_of_the_attempts_day(
    key_binding: Binding, package: Package, submission: DepositSubmission, tmp_path: Path
) -> None:
    """A worker died after sending, before midnight, and is restarted after it: the
    package is recognised in that day's directory and not sent again into today's."""
    yesterday = (datetime.now(UTC) - timedelta(days=1)).replace(hour=23, minute=59)
    transport = SftpTransport(key_binding())
    evidence = {"attempt": "1", "started_at": yesterday.isoformat()}
    assert transport.reconcile(package, evidence) is None  # nothing there yet

    earlier = tmp_path / "inbox" / yesterday.strftime("%Y-%m-%d")
    earlier.mkdir(parents=True)
    shutil.copyfile(package.path, earlier / package.name)
    (earlier / f".{package.name}.0123456789ab.part").write_bytes(b"left over")

    receipt = transport.reconcile(package, evidence)

    assert receipt is not None and receipt.accepted
    assert receipt.access_url is not None
    assert receipt.access_url.endswith(f"/{earlier.name}/{package.name}")
    assert receipt.message is not None and "not sent again" in receipt.message
    assert parts_in(earlier) == []
    assert not (tmp_path / "inbox" / today()).exists(), "nothing sent into today's directory"
    # a package of another size there is not ours: the operator is told
    (earlier / package.name).write_bytes(b"x" * 20)
    with pytest.raises(PermanentTransferError, match="already exists with 20 bytes"):
        transport.reconcile(package, evidence)


def test_a_different_file_under_the_final_name_is_a_permanent_error(
    key_binding: Binding, package: Package, submission: DepositSubmission, tmp_path: Path
) -> None:
    target = tmp_path / "inbox" / today()
    target.mkdir(parents=True)
    (target / package.name).write_bytes(b"somebody else's file")

    with pytest.raises(PermanentTransferError) as caught:
        SftpTransport(key_binding()).send(package, submission)

    assert "already exists with 20 bytes" in str(caught.value)
    assert "remove it" in str(caught.value)
    assert (target / package.name).read_bytes() == b"somebody else's file"
    assert parts_in(target) == []


def test_connection_cut_mid_upload_is_transient_and_leaves_nothing_under_the_final_name(
    sshd: Sshd, key_binding: Binding, package: Package, submission: DepositSubmission,
    tmp_path: Path
) -> None:
    """A proxy cuts the TCP connection after 1 MB of a ~3 MB upload; a retry then succeeds
    and removes the partial temporary file the cut left behind."""
    target = tmp_path / "inbox" / today()
    with TcpProxy(sshd.host, sshd.port, cut_after=1_000_000) as proxy:
        transport = SftpTransport(key_binding(**{
            "server-port": proxy.port, "known-hosts": None,
            "host-key-fingerprint": sshd.fingerprint}))
        with pytest.raises(TransientTransferError) as caught:
            transport.send(package, submission)
        assert proxy.cuts == 1
    assert "127.0.0.1" in str(caught.value)
    assert not (target / package.name).exists()
    leftovers = parts_in(target)  # the upload went to a temporary name
    assert len(leftovers) == 1 and leftovers[0].startswith(f".{package.name}.")
    assert (target / leftovers[0]).stat().st_size < package.size  # partial (maybe empty)

    SftpTransport(key_binding()).send(package, submission)

    assert sha256(target / package.name) == package.sha256
    assert parts_in(target) == []


def test_wrong_password_is_an_authentication_error(
    sshd: Sshd, key_binding: Binding, package: Package, submission: DepositSubmission
) -> None:
    account = password_account(sshd)
    binding = key_binding(**{"username": account.name, "password": "not-the-password",
                             "private-key": None})
    with pytest.raises(AuthenticationError) as caught:
        SftpTransport(binding).send(package, submission)
    message = str(caught.value)
    assert f"sftp://{account.name}@127.0.0.1:{sshd.port}" in message
    assert "refused our credentials" in message
    assert "not-the-password" not in message


def test_an_unauthorized_key_is_an_authentication_error(
    key_binding: Binding, package: Package, submission: DepositSubmission, tmp_path: Path
) -> None:
    stranger = make_key(tmp_path / "stranger")
    with pytest.raises(AuthenticationError):
        SftpTransport(key_binding(**{"private-key": str(stranger)})).send(package, submission)
    assert not (tmp_path / "inbox").exists()


def test_an_encrypted_key_needs_its_passphrase(
    sshd: Sshd, key_binding: Binding, package: Package, submission: DepositSubmission,
    tmp_path: Path
) -> None:
    key = make_key(tmp_path / "locked", passphrase="s3cret")
    authorized = sshd.root / "authorized_keys"
    original = authorized.read_text()
    authorized.write_text(original + key.with_suffix(".pub").read_text())
    try:
        with pytest.raises(PermanentTransferError, match="set private-key-passphrase"):
            SftpTransport(key_binding(**{"private-key": str(key)})).send(package, submission)
        SftpTransport(key_binding(**{"private-key": str(key), "private-key-passphrase": "s3cret"})
                      ).send(package, submission)
    finally:
        authorized.write_text(original)
    assert sha256(tmp_path / "inbox" / today() / package.name) == package.sha256


def test_an_unknown_host_key_is_refused_before_logging_in(
    sshd: Sshd, key_binding: Binding, package: Package, submission: DepositSubmission,
    tmp_path: Path
) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    before = sshd.log_text().count("Accepted publickey")
    with pytest.raises(PermanentTransferError) as caught:
        SftpTransport(key_binding(**{"known-hosts": str(empty)})).send(package, submission)
    message = str(caught.value)
    assert "is unknown" in message
    assert sshd.fingerprint in message  # the operator can compare it with the repository's
    assert not isinstance(caught.value, TransientTransferError)
    assert sshd.log_text().count("Accepted publickey") == before
    assert not (tmp_path / "inbox").exists()


def test_an_unknown_host_key_is_accepted_only_when_allowed(
    key_binding: Binding, package: Package, submission: DepositSubmission, tmp_path: Path
) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    SftpTransport(key_binding(**{"known-hosts": str(empty), "allow-unknown-host-key": True})
                  ).send(package, submission)
    assert sha256(tmp_path / "inbox" / today() / package.name) == package.sha256


def test_a_changed_host_key_is_refused(
    sshd: Sshd, key_binding: Binding, package: Package, submission: DepositSubmission,
    tmp_path: Path
) -> None:
    other = make_key(tmp_path / "other_host").with_suffix(".pub").read_text().split()
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port} {other[0]} {other[1]}\n")
    with pytest.raises(PermanentTransferError, match="CHANGED") as caught:
        SftpTransport(key_binding(**{"known-hosts": str(known),
                                     "allow-unknown-host-key": True})).send(package, submission)
    assert sshd.fingerprint in str(caught.value)


def test_a_pinned_fingerprint_must_match(
    sshd: Sshd, key_binding: Binding, package: Package, submission: DepositSubmission,
    tmp_path: Path
) -> None:
    other = key_fingerprint(make_key(tmp_path / "other_host").with_suffix(".pub"))
    with pytest.raises(PermanentTransferError, match="does not match the pinned") as caught:
        SftpTransport(key_binding(**{"known-hosts": None, "host-key-fingerprint": other})
                      ).send(package, submission)
    assert sshd.fingerprint in str(caught.value)
    assert not (tmp_path / "inbox").exists()

    SftpTransport(key_binding(**{"known-hosts": None,
                                 "host-key-fingerprint": f"{other}, {sshd.fingerprint}"})
                  ).send(package, submission)
    assert sha256(tmp_path / "inbox" / today() / package.name) == package.sha256


def test_permission_denied_is_permanent(
    sshd: Sshd, key_binding: Binding, package: Package, submission: DepositSubmission
) -> None:
    """The unprivileged account may not create directories under /root."""
    account = password_account(sshd)
    binding = key_binding(**{"username": account.name, "password": account.password,
                             "private-key": None,
                             "default-directory": "/root/dstest-denied/%s"})
    with pytest.raises(PermanentTransferError, match="permission denied"):
        SftpTransport(binding).send(package, submission)


def test_connection_refused_is_transient(
    key_binding: Binding, package: Package, submission: DepositSubmission
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TransientTransferError, match="connection refused"):
        SftpTransport(key_binding(**{"server-port": port})).send(package, submission)


def test_a_server_that_never_answers_times_out_as_transient(
    key_binding: Binding, package: Package, submission: DepositSubmission
) -> None:
    """A listener that accepts and says nothing: the banner timeout ends the wait."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        binding = key_binding(**{"server-port": silent.getsockname()[1],
                                 "banner-timeout": 0.5, "connect-timeout": 1})
        with pytest.raises(TransientTransferError):
            SftpTransport(binding).send(package, submission)


@pytest.mark.parametrize(("change", "problem"), [
    ({"private-key": None}, "give a password or a private-key"),
    ({"hostname": "x"}, "hostname"),
    ({"server-port": "not-a-port"}, "server-port"),
])
def test_a_bad_binding_is_a_configuration_error(
    key_binding: Binding, change: dict[str, Any], problem: str
) -> None:
    with pytest.raises(RepositoryConfigError, match=problem):
        SftpTransport(key_binding(**change))


def test_pass_ftp_keys_are_accepted_and_ignored_with_a_warning(
    key_binding: Binding, package: Package, submission: DepositSubmission, tmp_path: Path,
    caplog: pytest.LogCaptureFixture
) -> None:
    """A PASS FTP binding switched to ``sftp`` still loads; the FTP-only keys are named."""
    binding = key_binding(**{"data-type": "binary", "transfer-mode": "stream",
                             "use-pasv": True, "write-size": 32 * 1024})
    with caplog.at_level("WARNING", logger="deposit_services.transports.sftp"):
        transport = SftpTransport(binding)
    assert "data-type, transfer-mode, use-pasv mean nothing for SFTP" in caplog.text
    transport.send(package, submission)  # with the protocol's safe 32 KiB writes
    assert sha256(tmp_path / "inbox" / today() / package.name) == package.sha256
