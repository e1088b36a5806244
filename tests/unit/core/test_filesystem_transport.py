from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from deposit_services.assemblers.base import Package
from deposit_services.errors import PermanentTransferError, RepositoryConfigError
from deposit_services.model.submission import DepositSubmission
from deposit_services.transports.base import create_transport

SUBMISSION = DepositSubmission(id="1")


def _package(tmp_path: Path, name: str = "pkg.zip", data: bytes = b"package bytes") -> Package:
    path = tmp_path / f"spool-{name}"
    path.write_bytes(data)
    return Package(path=path, name=name, size=len(data),
                   md5=hashlib.md5(data).hexdigest(), sha256=hashlib.sha256(data).hexdigest(),
                   mime_type="application/zip", specification="simple")


def test_sends_into_base_dir_and_is_accepted_at_once(tmp_path: Path) -> None:
    base = tmp_path / "target" / "deep"
    transport = create_transport({"protocol": "filesystem", "baseDir": str(base)})
    receipt = transport.send(_package(tmp_path), SUBMISSION)
    assert receipt.accepted
    path = Path(unquote(urlsplit(receipt.access_url or "").path))
    assert path == (base / "pkg.zip").resolve()
    assert path.read_bytes() == b"package bytes"
    assert list(base.iterdir()) == [base / "pkg.zip"], "no temporary file left"


def test_same_package_again_is_not_written_twice(tmp_path: Path) -> None:
    base = tmp_path / "t"
    transport = create_transport({"protocol": "filesystem", "baseDir": str(base)})
    transport.send(_package(tmp_path), SUBMISSION)
    before = (base / "pkg.zip").stat().st_mtime_ns
    receipt = transport.send(_package(tmp_path), SUBMISSION)
    assert receipt.accepted and "already present" in (receipt.message or "")
    assert (base / "pkg.zip").stat().st_mtime_ns == before


def test_a_different_file_under_the_name_is_refused_unless_overwrite(tmp_path: Path) -> None:
    base = tmp_path / "t"
    base.mkdir()
    (base / "pkg.zip").write_bytes(b"other")
    transport = create_transport({"protocol": "filesystem", "baseDir": str(base)})
    with pytest.raises(PermanentTransferError, match="overwrite"):
        transport.send(_package(tmp_path), SUBMISSION)
    overwriting = create_transport({"protocol": "filesystem", "baseDir": str(base),
                                    "overwrite": True})
    overwriting.send(_package(tmp_path), SUBMISSION)
    assert (base / "pkg.zip").read_bytes() == b"package bytes"


def test_missing_base_dir_without_create_is_permanent(tmp_path: Path) -> None:
    transport = create_transport({"protocol": "filesystem", "baseDir": str(tmp_path / "no"),
                                  "createIfMissing": False})
    with pytest.raises(PermanentTransferError, match="createIfMissing"):
        transport.send(_package(tmp_path), SUBMISSION)


def test_binding_errors_name_the_key() -> None:
    with pytest.raises(RepositoryConfigError, match="baseDir"):
        create_transport({"protocol": "filesystem"})
    with pytest.raises(RepositoryConfigError, match="colour"):
        create_transport({"protocol": "filesystem", "baseDir": "/x", "colour": "red"})
    with pytest.raises(RepositoryConfigError, match="unknown transport protocol 'carrier-pigeon'"):
        create_transport({"protocol": "carrier-pigeon"})


def test_devnull_reads_and_keeps_nothing(tmp_path: Path) -> None:
    receipt = create_transport({"protocol": "devnull"}).send(_package(tmp_path), SUBMISSION)
    assert receipt.accepted and receipt.access_url is None


@pytest.mark.parametrize("already_sent", [False, True])
def test_temporary_files_of_a_worker_that_died_are_removed(tmp_path: Path,
                                                           already_sent: bool) -> None:
    base = tmp_path / "t"
    base.mkdir()
    transport = create_transport({"protocol": "filesystem", "baseDir": str(base)})
    if already_sent:
        transport.send(_package(tmp_path), SUBMISSION)
    leftover = base / ".pkg.zip.4242.0badcafe.part"  # SIGKILLed mid-copy
    leftover.write_bytes(b"package")
    others = [base / ".pkg.zip.gz.4242.0badcafe.part", base / ".other.zip.7.12345678.part"]
    for other in others:
        other.write_bytes(b"someone else's")
    transport.send(_package(tmp_path), SUBMISSION)
    assert not leftover.exists()
    assert all(other.exists() for other in others), "another package's file was removed"
