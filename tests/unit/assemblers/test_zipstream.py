"""The streaming ZIP writer: STORED entries carry CRC and sizes in their local headers
(no data descriptor, which Java's ZipInputStream refuses for them), DEFLATED entries are
streamed with descriptors, and zipfile and Info-ZIP's unzip read the result."""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from deposit_services.assemblers.archive import (
    ArchiveFormat,
    ArchiveOptions,
    ArchiveWriter,
    Compression,
)
from deposit_services.assemblers.zipstream import ZipStreamWriter
from deposit_services.errors import AssemblyError
from tests.unit.assemblers.helpers import STAMP

LOCAL = struct.Struct("<4s5H3L2H")


class NonSeekable(io.RawIOBase):
    """A download as the assemblers see it: read() only."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: Any) -> int:
        chunk = self._data.read(len(buffer))
        buffer[:len(chunk)] = chunk
        return len(chunk)


class Changing(io.BytesIO):
    """A local file that someone rewrites between our two reads."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self._reads = 0

    def seek(self, offset: int, whence: int = 0) -> int:
        self._reads += 1
        if self._reads == 1:
            self.getbuffer()[0] ^= 0xFF
        return super().seek(offset, whence)


def local_headers(data: bytes) -> list[dict[str, Any]]:
    """Every local file header in the archive, in order, read from the raw bytes."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
    found = []
    for info in infos:
        (sig, _version, flags, method, _time, _date, crc, csize, usize, name_len,
         _extra_len) = LOCAL.unpack_from(data, info.header_offset)
        assert sig == b"PK\x03\x04"
        start = info.header_offset + LOCAL.size
        name = data[start:start + name_len].decode()
        found.append({"name": name, "flags": flags, "method": method, "crc": crc,
                      "csize": csize, "usize": usize, "info": info})
    return found


def write_zip(compression: Compression, sources: dict[str, Any],
              spool_dir: Path | None = None) -> bytes:
    out = io.BytesIO()
    writer = ArchiveWriter(out, ArchiveOptions(ArchiveFormat.ZIP, compression), STAMP,
                           spool_dir=spool_dir)
    for name, source in sources.items():
        if isinstance(source, bytes):
            writer.add_bytes(name, source)
        else:
            size = len(source._data.getvalue()) if isinstance(source, NonSeekable) else (
                len(source.getvalue()) if isinstance(source, io.BytesIO) else 0)
            writer.add_stream(name, source, size)
    writer.close()
    return out.getvalue()


CONTENT = {"big.bin": os.urandom(3 * 1024 * 1024 + 5), "café.txt": b"caf\xc3\xa9\n" * 50,
           "empty": b"", "dir/text.txt": b"words " * 10000}


def test_stored_entries_carry_crc_and_sizes_in_the_local_header() -> None:
    data = write_zip(Compression.NONE, dict(CONTENT))
    headers = local_headers(data)
    assert [h["name"] for h in headers] == list(CONTENT)
    for header in headers:
        body = CONTENT[header["name"]]
        assert header["method"] == zipfile.ZIP_STORED
        assert not header["flags"] & 0x08  # no data descriptor
        assert header["crc"] == zlib.crc32(body) == header["info"].CRC
        assert header["csize"] == header["usize"] == len(body)
        assert bool(header["flags"] & 0x800) == (not header["name"].isascii())
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        assert {n: archive.read(n) for n in archive.namelist()} == CONTENT
        assert {i.date_time for i in archive.infolist()} == {(2024, 5, 4, 14, 22, 24)}
        assert {i.external_attr >> 16 for i in archive.infolist()} == {0o100644}


@pytest.mark.parametrize("compression", [Compression.GZIP, Compression.BZIP2])
def test_compressed_entries_are_deflated_with_descriptors(compression: Compression) -> None:
    data = write_zip(compression, dict(CONTENT))
    for header in local_headers(data):
        assert header["method"] == zipfile.ZIP_DEFLATED  # BZIP2 too: Java reads no other
        assert header["flags"] & 0x08 and header["crc"] == 0
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert {n: archive.read(n) for n in archive.namelist()} == CONTENT
    assert ArchiveOptions(ArchiveFormat.ZIP, Compression.BZIP2).warnings
    assert not ArchiveOptions(ArchiveFormat.ZIP, Compression.GZIP).warnings


def test_a_download_into_a_stored_entry_is_spooled_and_the_spool_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    body = os.urandom(2 * 1024 * 1024 + 1)
    seen: list[list[str]] = []
    real = ZipStreamWriter._spool

    def watching(self: ZipStreamWriter, *args: Any) -> Any:
        result = real(self, *args)
        seen.append(os.listdir(spool))  # an unnamed temporary file: nothing to leave behind
        return result

    monkeypatch.setattr(ZipStreamWriter, "_spool", watching)
    data = write_zip(Compression.NONE, {"download.bin": NonSeekable(body)}, spool)
    assert seen == [[]]
    [header] = local_headers(data)
    assert header["crc"] == zlib.crc32(body) and not header["flags"] & 0x08
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.read("download.bin") == body
    assert os.listdir(spool) == []


def test_a_file_that_changes_between_the_two_reads_is_an_error() -> None:
    with pytest.raises(AssemblyError, match=r"'x\.bin' changed while it was read"):
        write_zip(Compression.NONE, {"x.bin": Changing(b"abcdef" * 1000)})


@pytest.mark.parametrize("compression", list(Compression))
def test_info_zip_unzip_tests_the_archive(compression: Compression, tmp_path: Path) -> None:
    unzip = shutil.which("unzip")
    assert unzip, "unzip is missing: scripts/test.sh installs it"
    path = tmp_path / "p.zip"
    path.write_bytes(write_zip(compression, dict(CONTENT)))
    result = subprocess.run([unzip, "-tq", str(path)], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("deflate", [False, True])
def test_more_than_65535_entries_get_zip64_end_records(deflate: bool) -> None:
    out = io.BytesIO()
    writer = ZipStreamWriter(out, deflate=deflate, level=1, date_time=(2024, 1, 1, 0, 0, 0))
    count = 0x10000 + 3

    def copy(source: BinaryIO, write: Callable[[bytes], Any]) -> None:
        write(source.read())

    for n in range(count):
        writer.add(f"{n}", io.BytesIO(b"x"), 1, copy)
    writer.close()
    data = out.getvalue()
    assert b"PK\x06\x06" in data[-200:] and b"PK\x06\x07" in data[-200:]
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert len(archive.infolist()) == count
        assert archive.read(str(count - 1)) == b"x"
