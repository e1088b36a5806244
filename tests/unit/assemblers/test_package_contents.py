"""Package.contents: each submission file a package holds, with its size and a digest
of its bytes in every format, so the duplicate check (service/duplicates.py) tells a
corrected file from the same one under the same name and size."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from deposit_services.assemblers.base import Package, create_assembler
from deposit_services.model.entities import FileRole
from deposit_services.model.submission import DepositFile, DepositSubmission

WHEN = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
FORMATS = ["simple", "nihms-native-2022-05", "dspace-mets", "bagit", "binary", "ro-crate-1.1"]


def package(tmp_path: Path, sample1: DepositSubmission, spec: str, tag: str, data: bytes
            ) -> Package:
    folder = tmp_path / tag
    folder.mkdir()
    (folder / "paper.txt").write_bytes(data)
    paper = DepositFile(id="f1", name="paper.txt", location=str(folder / "paper.txt"),
                        role=FileRole.MANUSCRIPT, mime_type="text/plain")
    content = replace(sample1, id=f"sub-{tag}", files=(paper,))
    return create_assembler(spec, None).assemble(content, tmp_path / f"work-{tag}", WHEN)


@pytest.mark.parametrize("spec", FORMATS)
def test_every_format_records_each_file_with_size_and_digest(
        tmp_path: Path, sample1: DepositSubmission, spec: str) -> None:
    typo = package(tmp_path, sample1, spec, "typo", b"a typo in teh paper\n")
    fixed = package(tmp_path, sample1, spec, "fixed", b"a typo in the paper\n")
    again = package(tmp_path, sample1, spec, "again", b"a typo in the paper\n")
    for built in (typo, fixed, again):
        built.discard()
    ((_, size, digest),) = typo.contents
    assert typo.contents[0][0] == "f1" and size == 20 and digest.partition(":")[2]
    assert fixed.contents != typo.contents  # same name and size, other bytes
    assert again.contents == fixed.contents
