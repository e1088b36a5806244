"""An RO-Crate package goes through the transports like any other: to a directory
(filesystem) and to a SWORDv2 collection as SimpleZip (a zip of files, its default
packaging there); what arrives is the crate, byte for byte. (SFTP and FTP move any
package the same way as filesystem: their tests use SimpleZip packages.)"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from deposit_services.assemblers.rocrate import METADATA, SIMPLE_ZIP, RoCrateAssembler
from deposit_services.transports.base import create_transport
from tests.integration.sword.conftest import sword_binding
from tests.support.packages import sample_submission
from tests.support.sword_server import SwordServer, running_sword_server

STAMP = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
LICENSE = {"license": "https://spdx.org/licenses/CC-BY-4.0"}


@pytest.fixture
def sword(tmp_path: Path) -> Iterator[SwordServer]:
    store = tmp_path / "sword-store"
    store.mkdir()
    with running_sword_server(store_dir=store) as server:
        yield server


def test_filesystem_receives_the_crate(tmp_path: Path) -> None:
    package = RoCrateAssembler(LICENSE).assemble(
        sample_submission(tmp_path / "files", 64 * 1024), tmp_path / "work", STAMP)
    target = tmp_path / "target"
    receipt = create_transport({"protocol": "filesystem", "baseDir": str(target)}).send(
        package, sample_submission(tmp_path / "files2", 1))
    arrived = target / package.name
    assert receipt.accepted and receipt.access_url == arrived.resolve().as_uri()
    assert hashlib.sha256(arrived.read_bytes()).hexdigest() == package.sha256
    with zipfile.ZipFile(arrived) as crate:
        graph = json.loads(crate.read(METADATA))["@graph"]
    assert METADATA in {entity["@id"] for entity in graph}


def test_swordv2_receives_the_crate_as_simplezip(tmp_path: Path, sword: SwordServer) -> None:
    submission = sample_submission(tmp_path / "files", 64 * 1024)
    package = RoCrateAssembler(LICENSE).assemble(submission, tmp_path / "work", STAMP)
    assert package.specification == SIMPLE_ZIP
    receipt = create_transport(sword_binding(sword)).send(package, submission)
    assert receipt.status_ref
    [deposit] = sword.deposits.values()
    assert deposit.packaging == SIMPLE_ZIP
    assert (deposit.md5, deposit.size) == (package.md5, package.size)
    assert deposit.path is not None
    with zipfile.ZipFile(deposit.path) as crate:
        assert crate.namelist()[-1] == METADATA


def test_an_unaccepted_packaging_is_refused_by_the_server(
        tmp_path: Path, sword: SwordServer) -> None:
    from deposit_services.errors import PermanentTransferError

    submission = sample_submission(tmp_path / "files", 1024)
    package = RoCrateAssembler({**LICENSE, "packaging": "https://w3id.org/ro/crate/1.1"}
                               ).assemble(submission, tmp_path / "work", STAMP)
    with pytest.raises(PermanentTransferError, match="packaging"):
        create_transport(sword_binding(sword)).send(package, submission)
    assert sword.deposits == {}
