"""MIME types as PASS sends them: sniffed from the file's first bytes (kept while it is
packed), preferred over a declaration that is missing, generic or contradicted."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from deposit_services.assemblers.archive import HEAD_BYTES, ArchiveOptions, ArchiveWriter
from deposit_services.assemblers.base import create_assembler
from deposit_services.assemblers.mime import choose, sniff
from deposit_services.model.entities import FileRole
from deposit_services.model.submission import DepositFile, DepositSubmission
from tests.unit.assemblers.helpers import STAMP, deposit_file, write
from tests.unit.assemblers.test_mets import check_mets

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 32
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 32
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def office(*members: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for member in members:
            archive.writestr(member, "<x/>")
    return out.getvalue()


def file(declared: str | None, name: str = "f") -> DepositFile:
    return DepositFile(id="1", name=name, location="/nowhere", mime_type=declared)


@pytest.mark.parametrize(
    ("declared", "name", "head", "chosen"),
    [
        ("text/plain", "paper.txt", PDF, "application/pdf"),          # contradicted
        (None, "paper", PDF, "application/pdf"),                        # missing
        ("application/octet-stream", "x.bin", PDF, "application/pdf"),  # generic
        ("binary/octet-stream", "x", PNG, "image/png"),
        ("application/pdf; charset=binary", "x.pdf", PDF, "application/pdf"),
        ("image/jpg", "c.jpg", JPEG, "image/jpeg"),                    # alias, agrees
        ("image/png", "c.png", JPEG, "image/jpeg"),                    # contradicted
        ("audio/mp4", "a.m4a", MP4, "audio/mp4"),                      # same subtype
        (DOCX, "p.docx", office("[Content_Types].xml", "word/document.xml"), DOCX),
        ("application/zip", "p.zip", office("[Content_Types].xml", "word/document.xml"),
         DOCX),                                                         # more specific
        ("application/vnd.ms-excel", "s.xls", office("a.txt"), "application/vnd.ms-excel"),
        (None, "bundle.zip", office("a.txt"), "application/zip"),
        ("text/csv", "t.csv", b"a,b\n1,2\n", "text/csv"),              # nothing sniffed
        (None, "t.csv", b"a,b\n1,2\n", "text/csv"),                    # from the name
        ("application/octet-stream", "t.csv", b"a,b\n", "text/csv"),
        (None, "noname", b"plain words", "application/octet-stream"),
        (None, "empty.pdf", b"", "application/pdf"),
    ],
)
def test_the_sniffed_type_wins_over_a_missing_generic_or_wrong_declaration(
    declared: str | None, name: str, head: bytes, chosen: str
) -> None:
    assert choose(file(declared, name), name, head) == chosen


def test_only_the_first_bytes_are_kept() -> None:
    writer = ArchiveWriter(io.BytesIO(), ArchiveOptions(), STAMP)
    big = PDF + b"x" * (3 * 1024 * 1024)
    entry = writer.add_stream("big.pdf", io.BytesIO(big), len(big), keep_head=True)
    assert entry.head == big[:HEAD_BYTES] and len(entry.head) == HEAD_BYTES == 8192
    assert sniff(entry.head) == "application/pdf"
    assert writer.add_bytes("small.txt", b"abc").head == b""  # not asked for: not kept


def test_mets_writes_the_sniffed_type_of_a_pdf_declared_text_plain(
    files_dir: Path, tmp_path: Path
) -> None:
    files = (
        deposit_file(write(files_dir, "paper.pdf", PDF + b"x" * 20000), FileRole.MANUSCRIPT,
                     mime="text/plain"),
        deposit_file(write(files_dir, "figure", PNG), FileRole.FIGURE),
        deposit_file(write(files_dir, "data.csv", b"a,b\n1,2\n"), FileRole.SUPPLEMENTAL,
                     mime="text/csv"),
    )
    submission = DepositSubmission(id="s", files=files)
    package = create_assembler("http://purl.org/net/sword/package/METSDSpaceSIP", {}).assemble(
        submission, tmp_path / "w", STAMP)
    by_href = {f["href"]: f["mime"] for f in check_mets(package, submission)["files"]}
    assert by_href == {"data/paper.pdf": "application/pdf", "data/figure": "image/png",
                       "data/data.csv": "text/csv"}


def test_binary_package_type_is_sniffed(files_dir: Path, tmp_path: Path) -> None:
    only = deposit_file(write(files_dir, "manuscript", PDF), FileRole.MANUSCRIPT,
                        mime="application/octet-stream")
    package = create_assembler("binary", {}).assemble(DepositSubmission(id="s", files=(only,)),
                                                      tmp_path / "w", STAMP)
    assert package.mime_type == "application/pdf"
