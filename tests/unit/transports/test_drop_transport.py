"""The drop algorithm (``drop.DropTransport``) on an in-memory server: the rules SFTP and
FTP share, without a network (their own tests run them against sshd and pyftpdlib)."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest

from deposit_services.assemblers.base import Package
from deposit_services.errors import PermanentTransferError, TransientTransferError
from deposit_services.model.submission import DepositSubmission
from deposit_services.transports.drop import (
    DropBinding,
    DropSession,
    DropTransport,
    drop_url,
    remote_path,
)

SUBMISSION = DepositSubmission(id="1")


class MemoryServer:
    """Directories of files (name -> bytes), and a fault to inject into one primitive."""

    def __init__(self) -> None:
        self.dirs: dict[str, dict[str, bytes]] = {}
        self.fail: dict[str, BaseException] = {}  # primitive -> fault raised (once)
        self.short_upload = False
        self.calls: list[str] = []

    def call(self, primitive: str) -> None:
        self.calls.append(primitive)
        fault = self.fail.pop(primitive, None)
        if fault is not None:
            raise fault


class MemorySession(DropSession):
    faults: ClassVar[tuple[type[BaseException], ...]] = (OSError,)

    def __init__(self, server: MemoryServer) -> None:
        self.server = server

    def _dir(self, directory: str) -> dict[str, bytes]:
        if directory not in self.server.dirs:
            raise FileNotFoundError(directory)
        return self.server.dirs[directory]

    def make_directories(self, directory: str) -> None:
        self.server.call("make_directories")
        self.server.dirs.setdefault(directory, {})

    def is_directory(self, directory: str) -> bool:
        self.server.call("is_directory")
        return directory in self.server.dirs

    def size(self, directory: str, name: str) -> int | None:
        self.server.call("size")
        data = self.server.dirs.get(directory, {}).get(name)
        return None if data is None else len(data)

    def upload(self, directory: str, name: str, package: Package) -> None:
        self.server.call("upload")
        data = package.path.read_bytes()
        self._dir(directory)[name] = data[:-1] if self.server.short_upload else data

    def rename(self, directory: str, old: str, new: str) -> None:
        self.server.call("rename")
        files = self._dir(directory)
        files[new] = files.pop(old)

    def remove(self, directory: str, name: str) -> None:
        self.server.call("remove")
        self._dir(directory).pop(name, None)

    def names(self, directory: str) -> list[str]:
        self.server.call("names")
        return list(self._dir(directory))

    def url(self, directory: str, name: str) -> str:
        return drop_url("mem", "host", 1, "/" + remote_path(directory, name))


class MemoryTransport(DropTransport):
    protocol = "memory"
    binding_model = DropBinding

    def __init__(self, server: MemoryServer, directory: str = "up/%s") -> None:
        super().__init__({"protocol": "memory", "server-fqdn": "host", "username": "u",
                          "default-directory": directory})
        self.server = server

    @contextlib.contextmanager
    def connect(self, directory: str) -> Iterator[DropSession]:
        yield MemorySession(self.server)


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
    receipt = MemoryTransport(server).send(package, SUBMISSION)
    assert server.dirs == {f"up/{today()}": {"pkg.zip": package.path.read_bytes()}}
    assert server.calls == ["make_directories", "size", "upload", "size", "rename", "names"]
    assert receipt.accepted and receipt.access_url == f"mem://host:1/up/{today()}/pkg.zip"
    assert receipt.message is not None and "size verified" in receipt.message


def test_the_same_package_is_not_sent_again_and_leftovers_go(package: Package) -> None:
    server = MemoryServer()
    server.dirs[f"up/{today()}"] = {"pkg.zip": package.path.read_bytes(),
                                    ".pkg.zip.0123456789ab.part": b"half",
                                    ".other.zip.0123456789ab.part": b"not ours"}
    receipt = MemoryTransport(server).send(package, SUBMISSION)
    assert "upload" not in server.calls
    assert receipt.message is not None and "not sent again" in receipt.message
    assert sorted(server.dirs[f"up/{today()}"]) == [".other.zip.0123456789ab.part", "pkg.zip"]


def test_another_file_under_the_final_name_is_for_the_operator(package: Package) -> None:
    server = MemoryServer()
    server.dirs[f"up/{today()}"] = {"pkg.zip": b"other"}
    with pytest.raises(PermanentTransferError, match="already exists with 5 bytes"):
        MemoryTransport(server).send(package, SUBMISSION)
    assert "upload" not in server.calls


@pytest.mark.parametrize("failing", ["upload", "rename", "short"])
def test_a_failed_upload_removes_its_temporary_file(package: Package, failing: str) -> None:
    server = MemoryServer()
    if failing == "short":
        server.short_upload = True
    else:
        server.fail[failing] = ConnectionResetError("cut")
    with pytest.raises((TransientTransferError, ConnectionResetError)) as caught:
        MemoryTransport(server).send(package, SUBMISSION)
    if failing == "short":
        assert isinstance(caught.value, TransientTransferError)
        assert f"holds {package.size - 1} of {package.size} bytes" in str(caught.value)
    assert server.dirs[f"up/{today()}"] == {}
    assert server.calls[-1] == "remove"


def test_a_failed_removal_does_not_hide_the_cause(package: Package) -> None:
    server = MemoryServer()
    server.fail.update(upload=ConnectionResetError("cut"), remove=BrokenPipeError("gone"))
    with pytest.raises(ConnectionResetError, match="cut"):
        MemoryTransport(server).send(package, SUBMISSION)


def test_reconcile_looks_in_the_directory_of_the_attempts_day(package: Package) -> None:
    server = MemoryServer()
    transport = MemoryTransport(server)
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
    assert MemoryTransport(server, "fixed").reconcile(package, evidence) is None
    assert server.calls == []
