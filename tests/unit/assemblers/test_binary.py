"""SWORD Binary: the one file, byte for byte, with its own name and MIME type."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from deposit_services.assemblers.binary import BinaryAssembler
from deposit_services.errors import AssemblyError, RepositoryConfigError
from deposit_services.model.entities import FileRole
from deposit_services.model.submission import DepositSubmission
from tests.unit.assemblers.helpers import (
    STAMP,
    assert_figures_match_disk,
    deposit_file,
    no_spool_left,
    write,
)


def test_single_file_is_sent_as_it_is(files_dir: Path, tmp_path: Path) -> None:
    data = b"%PDF-1.7\n" + bytes(range(256)) * 5000  # over one read chunk
    source = write(files_dir, "Final Manuscript.pdf", data)
    submission = DepositSubmission(id="b", files=(
        deposit_file(source, FileRole.MANUSCRIPT, mime="application/pdf"),))
    package = BinaryAssembler().assemble(submission, tmp_path / "work", STAMP)
    assert package.path.read_bytes() == data
    assert package.name == "b_Final Manuscript.pdf"
    assert package.mime_type == "application/pdf"
    assert package.specification == "http://purl.org/net/sword/package/Binary"
    assert package.md5 == hashlib.md5(data).hexdigest()
    assert_figures_match_disk(package)


def test_mime_type_is_guessed_from_the_name_when_not_declared(files_dir: Path,
                                                             tmp_path: Path) -> None:
    source = write(files_dir, "figure.png", b"\x89PNG\r\n\x1a\n")
    submission = DepositSubmission(id="b", files=(deposit_file(source, FileRole.FIGURE,
                                                               name="../figure.png"),))
    package = BinaryAssembler().assemble(submission, tmp_path, STAMP)
    assert (package.name, package.mime_type) == ("b_figure.png", "image/png")


def test_same_named_files_of_two_submissions_get_different_package_names(
    files_dir: Path, tmp_path: Path
) -> None:
    """A drop target treats an existing same-size name as already sent: the names of two
    submissions' packages must differ even when their files are called the same."""
    source = write(files_dir, "manuscript.pdf", b"%PDF-1.7\n")
    names = {
        BinaryAssembler().assemble(
            DepositSubmission(id=sid, files=(deposit_file(source, FileRole.MANUSCRIPT),)),
            tmp_path / sid, STAMP,
        ).name
        for sid in ("15", "16")
    }
    assert names == {"15_manuscript.pdf", "16_manuscript.pdf"}


def test_several_files_are_refused_unless_the_manuscript_is_selected(
    rich: DepositSubmission, tmp_path: Path
) -> None:
    with pytest.raises(AssemblyError, match=r"has 6 files \(manuscript.pdf, fig1.png.*exactly "
                                            r"one.*select=manuscript"):
        BinaryAssembler().assemble(rich, tmp_path / "work", STAMP)
    assert no_spool_left(tmp_path / "work")
    package = BinaryAssembler({"select": "manuscript"}).assemble(rich, tmp_path, STAMP)
    manuscript = rich.manuscript
    assert manuscript is not None
    assert package.path.read_bytes() == Path(
        manuscript.location.removeprefix("file://")).read_bytes()
    no_manuscript = DepositSubmission(id="n", files=rich.files[1:])
    with pytest.raises(AssemblyError, match="has no MANUSCRIPT file"):
        BinaryAssembler({"select": "manuscript"}).assemble(no_manuscript, tmp_path, STAMP)


def test_options_are_checked() -> None:
    with pytest.raises(RepositoryConfigError, match="archive must be NONE or absent, not ZIP"):
        BinaryAssembler({"archive": "zip"})
    with pytest.raises(RepositoryConfigError, match="compression must be NONE or absent"):
        BinaryAssembler({"compression": "GZIP"})
    with pytest.raises(RepositoryConfigError, match="select='largest' is not one of"):
        BinaryAssembler({"select": "largest"})
