"""The archive layer under every assembler: formats, names, reproducibility, errors."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import os
import subprocess
import tarfile
import unicodedata
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from deposit_services.assemblers.archive import (
    ArchiveFormat,
    ArchiveOptions,
    ArchiveWriter,
    Compression,
    EntryNames,
)
from deposit_services.assemblers.base import ASSEMBLERS, HashingWriter, create_assembler
from deposit_services.assemblers.simple import SimpleZipAssembler
from deposit_services.errors import AssemblyError, RepositoryConfigError, Transient
from deposit_services.model.entities import FileRole
from deposit_services.model.submission import DepositFile, DepositSubmission
from tests.unit.assemblers.helpers import (
    STAMP,
    assert_figures_match_disk,
    deposit_file,
    members,
    no_spool_left,
    sha,
    write,
)

FORMATS = [
    ({"archive": "ZIP", "compression": "NONE"}, ".zip"),
    ({"archive": "ZIP", "compression": "GZIP"}, ".zip"),
    ({"archive": "ZIP", "compression": "BZIP2"}, ".zip"),
    ({"archive": "TAR", "compression": "NONE"}, ".tar"),
    ({"archive": "TAR", "compression": "GZIP"}, ".tar.gz"),
    ({"archive": "TAR", "compression": "BZIP2"}, ".tar.bz2"),
]
FORMAT_IDS = [f"{o['archive']}-{o['compression']}" for o, _ in FORMATS]


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("/etc/passwd", "etc/passwd"),
        ("../../../evil.sh", "evil.sh"),
        ("a/./b/../c.txt", "a/b/c.txt"),
        ("..", "file"),
        ("", "file"),
        ("C:\\Users\\x\\report.pdf", "C:/Users/x/report.pdf"),
        ("bell\x07tab\tnew\nline\x7f.txt", "bell_tab_new_line_.txt"),
        ("  spaced  / name.txt ", "spaced/name.txt"),
        ("e\u0301te\u0301.pdf", "\u00e9t\u00e9.pdf"),
        ("line\u2028sep.txt", "line_sep.txt"),
    ],
)
def test_entry_names_are_sanitised(raw: str, safe: str) -> None:
    assert EntryNames.sanitise(raw) == safe
    assert unicodedata.is_normalized("NFC", EntryNames.sanitise(raw))


def test_flat_names_keep_no_folders_and_long_names_keep_their_extension() -> None:
    assert EntryNames.sanitise("../dir/sub/x.pdf", flat=True) == "dir_sub_x.pdf"
    assert EntryNames.sanitise("/../", flat=True) == "file"
    long = EntryNames.sanitise("é" * 300 + ".pdf")
    assert long.endswith(".pdf") and len(long.encode()) <= 255


def test_duplicates_get_numbers_deterministically_ignoring_case() -> None:
    names = EntryNames(reserved=["manifest-sha256.txt"])
    got = [names.unique(n) for n in ("a.txt", "a.txt", "A.TXT", "dir/a.txt", "dir/a.txt",
                                     "manifest-sha256.txt", "noext", "noext", ".hidden")]
    assert got == ["a.txt", "a-2.txt", "A-3.TXT", "dir/a.txt", "dir/a-2.txt",
                   "manifest-sha256-2.txt", "noext", "noext-2", ".hidden"]


def test_options_are_validated_with_the_key_and_allowed_values() -> None:
    opts = ArchiveOptions.from_options({"archive": "tar", "compression": "bzip2",
                                        "algorithms": ["SHA-512", "md5", "md5"]})
    assert opts == ArchiveOptions(ArchiveFormat.TAR, Compression.BZIP2, ("sha512", "md5"))
    with pytest.raises(RepositoryConfigError, match=r"archive='RAR' is not one of ZIP / TAR"):
        ArchiveOptions.from_options({"archive": "RAR"})
    with pytest.raises(RepositoryConfigError, match="compression='XZ'"):
        ArchiveOptions.from_options({"compression": "XZ"})
    with pytest.raises(RepositoryConfigError, match=r"algorithms.*supported are sha512"):
        ArchiveOptions.from_options({"algorithms": ["crc32"]})
    with pytest.raises(RepositoryConfigError, match="not NONE"):
        SimpleZipAssembler({"archive": "NONE"})


def _submission(files_dir: Path) -> DepositSubmission:
    return DepositSubmission(id="sub/7:x", files=(
        deposit_file(write(files_dir, "manuscript.txt", b"words " * 30000), FileRole.MANUSCRIPT),
        deposit_file(write(files_dir, "random.bin", os.urandom(2 * 1024 * 1024 + 3)),
                     FileRole.SUPPLEMENTAL, uri=False),
        deposit_file(write(files_dir, "empty.dat", b""), FileRole.SUPPLEMENTAL),
    ))


@pytest.mark.parametrize(("options", "extension"), FORMATS, ids=FORMAT_IDS)
def test_every_format_holds_the_files_and_checksums_match_the_bytes(
    files_dir: Path, tmp_path: Path, options: dict[str, str], extension: str
) -> None:
    full: dict[str, object] = {**options, "algorithms": ["sha512", "sha256", "md5"]}
    submission = _submission(files_dir)
    package = SimpleZipAssembler(full).assemble(submission, tmp_path / "work", STAMP)
    assert package.name == f"simple_2024-05-04_14-22-25_sub_7_x{extension}"
    assert_figures_match_disk(package)
    found = members(package)
    originals = {Path(f.location.removeprefix("file://")).name:
                 Path(f.location.removeprefix("file://")).read_bytes() for f in submission.files}
    assert list(found) == [*originals, "manifest-sha512.txt", "manifest-sha256.txt",
                           "manifest-md5.txt"]
    for name, data in originals.items():
        assert found[name] == data
    for alg in ("sha512", "sha256", "md5"):
        expected = "".join(f"{sha(d, alg)}  {n}\n" for n, d in originals.items())
        assert found[f"manifest-{alg}.txt"].decode() == expected


def test_bzip2_is_real_bzip2(files_dir: Path, tmp_path: Path) -> None:
    package = SimpleZipAssembler({"archive": "TAR", "compression": "BZIP2"}).assemble(
        _submission(files_dir), tmp_path / "work", STAMP)
    raw = package.path.read_bytes()
    assert raw[:3] == b"BZh"
    with tarfile.open(fileobj=io.BytesIO(bz2.decompress(raw))) as inner:
        assert inner.getnames()[0] == "manuscript.txt"
    listing = subprocess.run(["tar", "tjf", str(package.path)], check=True,
                             capture_output=True, text=True).stdout.split()
    assert listing == ["manuscript.txt", "random.bin", "empty.dat", "manifest-sha256.txt"]


def test_gzip_and_tar_layout_follow_the_tools(files_dir: Path, tmp_path: Path) -> None:
    package = SimpleZipAssembler({"archive": "TAR", "compression": "GZIP"}).assemble(
        _submission(files_dir), tmp_path / "work", STAMP)
    inner = gzip.decompress(package.path.read_bytes())
    assert len(inner) % tarfile.RECORDSIZE == 0  # padded to whole records like GNU tar
    listing = subprocess.run(["tar", "tvzf", str(package.path)], check=True,
                             capture_output=True, text=True).stdout
    assert "2024-05-04 14:22" in listing and "-rw-r--r--" in listing


@pytest.mark.parametrize(("options", "extension"), FORMATS, ids=FORMAT_IDS)
def test_same_input_gives_byte_identical_packages(
    files_dir: Path, tmp_path: Path, options: dict[str, str], extension: str
) -> None:
    submission = _submission(files_dir)
    first = SimpleZipAssembler(options).assemble(submission, tmp_path / "one", STAMP)
    second = SimpleZipAssembler(options).assemble(submission, tmp_path / "two", STAMP)
    assert first.path != second.path
    assert first.path.read_bytes() == second.path.read_bytes()
    assert (first.md5, first.sha256, first.name) == (second.md5, second.sha256, second.name)
    later = SimpleZipAssembler(options).assemble(
        submission, tmp_path / "three", datetime(2024, 5, 5, tzinfo=UTC))
    assert later.path.read_bytes() != first.path.read_bytes()  # the timestamp is in there


def test_entry_times_are_the_deposit_timestamp(files_dir: Path, tmp_path: Path) -> None:
    submission = _submission(files_dir)
    zipped = SimpleZipAssembler({"archive": "ZIP"}).assemble(submission, tmp_path, STAMP)
    with zipfile.ZipFile(zipped.path) as archive:
        assert {i.date_time for i in archive.infolist()} == {(2024, 5, 4, 14, 22, 24)}
    tarred = SimpleZipAssembler({"archive": "TAR"}).assemble(submission, tmp_path, STAMP)
    with tarfile.open(tarred.path) as archive:
        assert {i.mtime for i in archive.getmembers()} == {int(STAMP.timestamp())}
        assert {(i.uid, i.gid, i.uname, i.mode) for i in archive.getmembers()} == {
            (0, 0, "", 0o644)}


@pytest.mark.parametrize("archive", ["ZIP", "TAR"])
def test_hostile_names_are_sanitised_in_the_archive(
    files_dir: Path, tmp_path: Path, archive: str
) -> None:
    source = write(files_dir, "x.txt", b"x")
    names = ["../../etc/cron.d/evil", "/abs/path.txt", "dup.txt", "dup.txt", "DUP.txt",
             "ctl\x1b[31m.txt", "cafe\u0301.txt", "café.txt", "..\\..\\win.txt"]
    submission = DepositSubmission(id="s", files=tuple(
        DepositFile(id=str(n), name=name, location=str(source)) for n, name in enumerate(names)))
    package = SimpleZipAssembler({"archive": archive, "algorithms": "md5"}).assemble(
        submission, tmp_path / "work", STAMP)
    assert list(members(package)) == [
        "etc/cron.d/evil", "abs/path.txt", "dup.txt", "dup-2.txt", "DUP-3.txt",
        "ctl_[31m.txt", "café.txt", "café-2.txt", "win.txt", "manifest-md5.txt"]


def test_missing_input_names_the_file_and_leaves_no_spool(files_dir: Path,
                                                          tmp_path: Path) -> None:
    good = deposit_file(write(files_dir, "ok.txt", b"ok"), FileRole.MANUSCRIPT)
    missing = DepositFile(id="9", name="figure 9.png", location=(files_dir / "gone.png").as_uri())
    work = tmp_path / "work"
    with pytest.raises(AssemblyError, match=r"file 'figure 9.png' \(file://.*gone.png\) cannot "
                                            r"be read: No such file"):
        SimpleZipAssembler().assemble(DepositSubmission(id="s", files=(good, missing)),
                                      work, STAMP)
    assert no_spool_left(work)


def test_unreadable_input_names_the_file(files_dir: Path, tmp_path: Path) -> None:
    folder = files_dir / "not-a-file.pdf"
    folder.mkdir()
    unreadable = DepositFile(id="1", name="not-a-file.pdf", location=str(folder))
    with pytest.raises(AssemblyError, match=r"'not-a-file.pdf'.*cannot be read: Is a directory"):
        SimpleZipAssembler().assemble(DepositSubmission(id="s", files=(unreadable,)),
                                      tmp_path / "work", STAMP)
    assert no_spool_left(tmp_path / "work")


def test_unsupported_location_scheme_is_an_assembly_error(tmp_path: Path) -> None:
    odd = DepositFile(id="1", name="a.pdf", location="s3://bucket/a.pdf")
    with pytest.raises(AssemblyError, match="unsupported file location scheme 's3'"):
        SimpleZipAssembler().assemble(DepositSubmission(id="s", files=(odd,)), tmp_path, STAMP)


def test_no_files_is_an_assembly_error(tmp_path: Path) -> None:
    with pytest.raises(AssemblyError, match="submission s has no files"):
        SimpleZipAssembler().assemble(DepositSubmission(id="s"), tmp_path, STAMP)


@pytest.mark.parametrize("archive", list(ArchiveFormat))
def test_a_file_that_changes_while_read_is_an_error(archive: ArchiveFormat) -> None:
    options = ArchiveOptions(archive=archive, compression=Compression.NONE)
    out = HashingWriter(io.BytesIO())
    writer = ArchiveWriter(out, options, STAMP)  # type: ignore[arg-type]
    with pytest.raises(AssemblyError, match=r"'short.bin' changed while it was read: 3 bytes, "
                                            r"expected 5"):
        writer.add_stream("short.bin", io.BytesIO(b"abc"), 5)
    writer = ArchiveWriter(out, options, STAMP)  # type: ignore[arg-type]
    with pytest.raises(AssemblyError, match=r"'long.bin' changed while it was read: more than 2"):
        writer.add_stream("long.bin", io.BytesIO(b"abc"), 2)


def test_archive_none_takes_exactly_one_file() -> None:
    target = io.BytesIO()
    writer = ArchiveWriter(target, ArchiveOptions(archive=ArchiveFormat.NONE), STAMP)
    entry = writer.add_bytes("only.pdf", b"%PDF-1.4 bytes")
    assert entry.digests == {"sha256": hashlib.sha256(b"%PDF-1.4 bytes").hexdigest()}
    with pytest.raises(AssemblyError, match="exactly one file"):
        writer.add_bytes("second.pdf", b"x")
    writer.close()
    assert target.getvalue() == b"%PDF-1.4 bytes"


def test_hashing_writer_hashes_every_write_in_order() -> None:
    target = io.BytesIO()
    out = HashingWriter(target)
    pieces: list[bytes | bytearray | memoryview] = [
        b"a" * 10, os.urandom(2 * 1024 * 1024), bytearray(b"b" * 70000),
        memoryview(os.urandom(5000)), b"", os.urandom(1024 * 1024 - 1), b"tail"]
    for piece in pieces:
        assert out.write(piece) == len(piece)
    data = target.getvalue()
    assert out.size == len(data) == out.tell()
    assert out.md5 == hashlib.md5(data).hexdigest()
    assert out.sha256 == hashlib.sha256(data).hexdigest()
    out.close()  # twice is fine
    with pytest.raises(ValueError, match="closed"):
        out.write(b"late")


def test_a_full_disk_is_a_transient_assembly_error() -> None:
    with open("/dev/full", "wb", buffering=0) as full:
        out = HashingWriter(full, name="/spool/pkg.zip")
        with pytest.raises(AssemblyError, match=r"cannot write /spool/pkg.zip: No space") as err:
            out.write(b"x" * 100)
    assert isinstance(err.value, Transient)  # the deposit is retried later, not failed
    out.abort()


def test_every_registered_specification_builds_its_assembler() -> None:
    assert all(key == key.lower() for key in ASSEMBLERS)
    expected = {
        "nihms-native-2022-05": "Nihms2022Assembler",
        "nihms-native-2017-07": "Nihms2017Assembler",
        "http://purl.org/net/sword/package/METSDSpaceSIP": "DSpaceMetsAssembler",
        "bagit-1.0": "BagItAssembler",
        "http://purl.org/net/sword/package/SimpleZip": "SimpleZipAssembler",
        "simple": "SimpleZipAssembler",
        "http://purl.org/net/sword/package/Binary": "BinaryAssembler",
    }
    for spec, cls in expected.items():
        assembler = create_assembler(spec, None)
        assert type(assembler).__name__ == cls
        assert assembler.specification.lower() in (spec.lower(), "http://purl.org/net/sword/"
                                                   "package/simplezip")
    for key in ASSEMBLERS:
        create_assembler(key.upper(), {})
