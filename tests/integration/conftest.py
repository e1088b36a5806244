"""Fixtures shared by the transport tests (SFTP, FTP, SWORDv2): one real package."""

from __future__ import annotations

from pathlib import Path

import pytest

from deposit_services.assemblers.base import Package
from deposit_services.model.submission import DepositSubmission
from tests.support.packages import sample_package, sample_submission


@pytest.fixture
def submission(tmp_path: Path) -> DepositSubmission:
    """A submission with a text manuscript and a 3 MB random supplement, on disk."""
    return sample_submission(tmp_path / "files")


@pytest.fixture
def package(submission: DepositSubmission, tmp_path: Path) -> Package:
    """A real SimpleZip package built by the project's assembler (~3 MB)."""
    return sample_package(submission, tmp_path / "work")
