"""A drop binding's ``status-source``: none gives ACCEPTED at once; ``nihms-email`` gives
SUBMITTED with ``nihms-package:<package id>`` (also when the package was already there);
anything else is a configuration error naming the key."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from deposit_services.assemblers.base import Package
from deposit_services.errors import RepositoryConfigError
from deposit_services.model.submission import DepositSubmission
from tests.support.memory_drop import SERVERS, MemoryServer, MemoryTransport

SUBMISSION = DepositSubmission(id="42")
NAME = "nihms-native-2022-05_2026-11-30_01-02-03_42"


def transport(server: MemoryServer, **extra: Any) -> MemoryTransport:
    host = f"memory-{id(server)}"
    SERVERS[host] = server
    return MemoryTransport({"protocol": "memory", "server-fqdn": host, "username": "u",
                            "default-directory": "up", **extra})


@pytest.fixture
def package(tmp_path: Path) -> Package:
    data = b"tar.gz bytes" * 50
    path = tmp_path / "spool"
    path.write_bytes(data)
    return Package(path=path, name=NAME + ".tar.gz", size=len(data),
                   md5=hashlib.md5(data).hexdigest(), sha256=hashlib.sha256(data).hexdigest(),
                   mime_type="application/gzip", specification="nihms-native-2022-05")


def test_without_a_status_source_the_drop_is_accepted(package: Package) -> None:
    receipt = transport(MemoryServer()).send(package, SUBMISSION)
    assert receipt.accepted and receipt.status_ref is None


def test_with_nihms_email_the_deposit_waits_for_the_mail(package: Package) -> None:
    server = MemoryServer()
    receipt = transport(server, **{"status-source": "nihms-email"}).send(package, SUBMISSION)
    assert not receipt.accepted
    assert receipt.status_ref == f"nihms-package:{NAME}"
    assert receipt.access_url == f"mem://host:1/up/{NAME}.tar.gz"
    assert receipt.external_ids == (receipt.access_url,)
    assert receipt.message is not None and "waiting for NIHMS's Bulk submission email" in (
        receipt.message)
    # sent again after a crash: the package is there, the receipt is the same kind
    again = transport(server, **{"status-source": "nihms-email"}).send(package, SUBMISSION)
    assert (again.accepted, again.status_ref) == (False, f"nihms-package:{NAME}")
    assert again.message is not None and "not sent again" in again.message


def test_an_unknown_status_source_is_a_configuration_error() -> None:
    with pytest.raises(RepositoryConfigError, match="status-source"):
        transport(MemoryServer(), **{"status-source": "carrier-pigeon"})
