"""The drop algorithm (``drop.DropTransport``) on an in-memory server: the rules SFTP and
FTP share, without a network (their own tests run them against sshd and pyftpdlib)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from deposit_services.assemblers.base import Package
from deposit_services.errors import PermanentTransferError, TransientTransferError
from deposit_services.model.submission import DepositSubmission
from tests.support.memory_drop import MemoryServer, memory_transport

SUBMISSION = DepositSubmission(id="1")


def today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


@pytest.fixture
def package(tmp_path: Path) -> Package:
    data = b"package bytes" * 100
    path = tmp_path / "spool.zip"
    path.write_bytes(data)
    return Package(path=path, name="pkg.zip", size=len(data),
                   md5=hashlib.md5(data).hexdigest(), sha256=hashlib.sha256(data).hexdigest(),
                   mime_type="application/zip", specification="simple")


def test_uploads_to_a_temporary_name_then_renames(package: Package) -> None:
    server = MemoryServer()
    receipt = memory_transport(server).send(package, SUBMISSION)
    assert server.dirs == {f"up/{today()}": {"pkg.zip": package.path.read_bytes()}}
    assert server.calls == ["make_directories", "size", "upload", "size", "rename", "names"]
    assert receipt.accepted and receipt.access_url == f"mem://host:1/up/{today()}/pkg.zip"
    assert receipt.message is not None and "size verified" in receipt.message


def test_the_same_package_is_not_sent_again_and_leftovers_go(package: Package) -> None:
    server = MemoryServer()
    server.dirs[f"up/{today()}"] = {"pkg.zip": package.path.read_bytes(),
                                    ".pkg.zip.0123456789ab.part": b"half",
                                    ".other.zip.0123456789ab.part": b"not ours"}
    receipt = memory_transport(server).send(package, SUBMISSION)
    assert "upload" not in server.calls
    assert receipt.message is not None and "not sent again" in receipt.message
    assert sorted(server.dirs[f"up/{today()}"]) == [".other.zip.0123456789ab.part", "pkg.zip"]


def test_another_file_under_the_final_name_is_for_the_operator(package: Package) -> None:
    server = MemoryServer()
    server.dirs[f"up/{today()}"] = {"pkg.zip": b"other"}
    with pytest.raises(PermanentTransferError, match="already exists with 5 bytes"):
        memory_transport(server).send(package, SUBMISSION)
    assert "upload" not in server.calls


@pytest.mark.parametrize("failing", ["upload", "rename", "short"])
def test_a_failed_upload_removes_its_temporary_file(package: Package, failing: str) -> None:
    server = MemoryServer()
    if failing == "short":
        server.short_upload = True
    else:
        server.fail[failing] = ConnectionResetError("cut")
    with pytest.raises((TransientTransferError, ConnectionResetError)) as caught:
        memory_transport(server).send(package, SUBMISSION)
    if failing == "short":
        assert isinstance(caught.value, TransientTransferError)
        assert f"holds {package.size - 1} of {package.size} bytes" in str(caught.value)
    assert server.dirs[f"up/{today()}"] == {}
    assert server.calls[-1] == "remove"


def test_a_failed_removal_does_not_hide_the_cause(package: Package) -> None:
    server = MemoryServer()
    server.fail.update(upload=ConnectionResetError("cut"), remove=BrokenPipeError("gone"))
    with pytest.raises(TransientTransferError, match="cut") as caught:
        memory_transport(server).send(package, SUBMISSION)
    assert isinstance(caught.value.__cause__, ConnectionResetError)  # not the removal's


def test_reconcile_looks_in_the_directory_of_the_attempts_day(package: Package) -> None:
    server = MemoryServer()
    transport = memory_transport(server)
    yesterday = (datetime.now(UTC) - timedelta(days=1)).replace(hour=23, minute=59)
    evidence: dict[str, Any] = {"started_at": yesterday.isoformat()}
    assert transport.reconcile(package, evidence) is None
    earlier = f"up/{yesterday:%Y-%m-%d}"
    server.dirs[earlier] = {"pkg.zip": package.path.read_bytes()}
    receipt = transport.reconcile(package, evidence)
    assert receipt is not None and receipt.access_url == f"mem://host:1/{earlier}/pkg.zip"
    assert f"up/{today()}" not in server.dirs
    assert transport.reconcile(package, {}) is None  # start unknown: send() checks today's


def test_reconcile_without_a_dated_directory_leaves_it_to_send(package: Package) -> None:
    server = MemoryServer()
    evidence = {"started_at": "2024-05-01T10:00:00+00:00"}
    assert memory_transport(server, "fixed").reconcile(package, evidence) is None
    assert server.calls == []
