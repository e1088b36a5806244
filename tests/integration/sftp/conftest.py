"""Fixtures for the SFTP tests: a real OpenSSH sshd on loopback, a package, bindings.

One sshd serves the whole module (it is stateless between tests: each test uploads
into its own directory). Missing sshd or tools FAIL the tests with the reason.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from deposit_services.assemblers.base import Package
from deposit_services.assemblers.simple import SimpleZipAssembler
from deposit_services.model.entities import FileRole
from deposit_services.model.submission import ArticleMetadata, DepositFile, DepositSubmission
from tests.support.sshd import Sshd, SshdUnavailable, running_sshd


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    try:
        with running_sshd(tmp_path_factory.mktemp("sshd"), password_user=True) as server:
            yield server
    except SshdUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def submission(tmp_path: Path) -> DepositSubmission:
    """A submission with a text manuscript and a 3 MB random supplement, on disk."""
    files = tmp_path / "files"
    files.mkdir()
    (files / "manuscript.txt").write_text("Two stupendous minds.\n" * 2000, encoding="utf-8")
    (files / "data.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    return DepositSubmission(
        id="sub-15",
        article=ArticleMetadata(title="Two stupendous minds", doi="10.1234/abc"),
        files=(
            DepositFile(id="f1", name="manuscript.txt", location=str(files / "manuscript.txt"),
                        role=FileRole.MANUSCRIPT, mime_type="text/plain"),
            DepositFile(id="f2", name="data.bin", location=str(files / "data.bin"),
                        role=FileRole.SUPPLEMENTAL),
        ),
    )


@pytest.fixture
def package(submission: DepositSubmission, tmp_path: Path) -> Package:
    """A real SimpleZip package built by the project's assembler (~3 MB)."""
    timestamp = datetime(2024, 5, 4, 14, 22, 25, tzinfo=UTC)
    return SimpleZipAssembler({"archive": "ZIP"}).assemble(submission, tmp_path / "work",
                                                           timestamp)


@pytest.fixture
def key_binding(sshd: Sshd, tmp_path: Path) -> Callable[..., dict[str, Any]]:
    """``key_binding(**overrides)``: a key-auth binding for ``sshd``, uploads under tmp_path."""

    def make(**overrides: Any) -> dict[str, Any]:
        binding: dict[str, Any] = {
            "protocol": "sftp",
            "server-fqdn": sshd.host,
            "server-port": str(sshd.port),
            "username": sshd.user,
            "private-key": str(sshd.client_key),
            "known-hosts": str(sshd.known_hosts),
            "default-directory": str(tmp_path / "inbox" / "%s"),
            "connect-timeout": 5,
            "read-timeout": 10,
        }
        binding.update(overrides)
        return {k: v for k, v in binding.items() if v is not None}

    return make


def today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")
