"""A small real submission and its SimpleZip package, for the file-drop transport tests."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from deposit_services.assemblers.base import Package
from deposit_services.assemblers.simple import SimpleZipAssembler
from deposit_services.model.entities import FileRole
from deposit_services.model.submission import ArticleMetadata, DepositFile, DepositSubmission

PACKAGE_TIME = datetime(2024, 5, 4, 14, 22, 25, tzinfo=UTC)


def sample_submission(files: Path, supplement_bytes: int = 3 * 1024 * 1024) -> DepositSubmission:
    """A text manuscript and a random binary supplement written under ``files``."""
    files.mkdir(parents=True, exist_ok=True)
    (files / "manuscript.txt").write_text("Two stupendous minds.\n" * 2000, encoding="utf-8")
    (files / "data.bin").write_bytes(os.urandom(supplement_bytes))
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


def sample_package(submission: DepositSubmission, workdir: Path) -> Package:
    """The submission packaged by the project's SimpleZip assembler (deterministic name)."""
    return SimpleZipAssembler({"archive": "ZIP"}).assemble(submission, workdir, PACKAGE_TIME)
