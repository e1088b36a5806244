"""A streaming ZIP writer whose archives Java's ``ZipInputStream`` reads entry by entry.

Python's ``zipfile`` writing to a non-seekable stream gives every entry a data
descriptor (sizes and CRC after the data). ``ZipInputStream`` refuses that for STORED
entries ("only DEFLATED entries can have EXT descriptor"), and PASS's consumers read
packages with it. So here:

- a STORED entry carries its CRC-32 and sizes in its local header. The CRC is needed
  before the data, so a seekable source (a local file) is read twice (CRC first, then
  the copy, whose CRC must agree, else the file changed while it was read), and a
  non-seekable one (a download) is spooled to a temporary file while its CRC is
  computed. Memory stays at one chunk either way;
- a DEFLATED entry is streamed with a data descriptor, which ``ZipInputStream`` reads.
  Sizes past 4 GiB get ZIP64 fields in the local header and an 8-byte descriptor; an
  entry within deflate's worst-case growth of 4 GiB is stored instead, because readers
  disagree on the descriptor's width there (JDK 17 goes by the actual sizes, APPNOTE by
  the local header).

Entries have a fixed timestamp and mode, so the same input gives the same bytes.
"""

from __future__ import annotations

import struct
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from deposit_services.errors import AssemblyError, TransientAssemblyError

CHUNK_SIZE = 1024 * 1024
STORED = 0
DEFLATED = 8
ZIP32_LIMIT = 0xFFFFFFFF
DEFLATE_MARGIN = 4 * 1024 * 1024  # > deflate's worst-case growth of a 4 GiB input
_FLAG_DESCRIPTOR = 0x08
_FLAG_UTF8 = 0x800
_UNIX = 3
_MODE = 0o100644 << 16
_LOCAL = struct.Struct("<4s5H3L2H")
_CENTRAL = struct.Struct("<4s6H3L5H2L")
_END = struct.Struct("<4s4H2LH")
_END64 = struct.Struct("<4sQ2H2L4Q")
_LOCATOR64 = struct.Struct("<4sLQL")

# copy(source, write): reads exactly the entry's size from source, calling write per chunk
Copier = Callable[[BinaryIO, Callable[[bytes], Any]], None]


@dataclass
class _Record:
    """What the central directory needs to know about one written entry."""

    name: bytes
    flags: int
    method: int
    crc: int
    compressed: int
    size: int
    offset: int


def dos_time(date_time: tuple[int, ...]) -> tuple[int, int]:
    """(time, date) fields of a ZIP header for ``(y, m, d, H, M, S)``."""
    year, month, day, hour, minute, second = date_time[:6]
    return (hour << 11) | (minute << 5) | (second // 2), ((year - 1980) << 9) | (month << 5) | day


class ZipStreamWriter:
    """Writes a ZIP archive to ``out`` front to back, never seeking it.

    ``deflate`` chooses DEFLATED (at ``level``) or STORED for every entry; ``spool_dir``
    is where a non-seekable source of a STORED entry is spooled.
    """

    def __init__(self, out: BinaryIO, *, deflate: bool, level: int,
                 date_time: tuple[int, ...], spool_dir: Path | None = None) -> None:
        self._out = out
        self._deflate = deflate
        self._level = level
        self._time, self._date = dos_time(date_time)
        self._spool_dir = spool_dir
        self._offset = 0
        self._records: list[_Record] = []
        self._closed = False

    def _write(self, data: bytes) -> None:
        self._out.write(data)
        self._offset += len(data)

    def add(self, name: str, source: BinaryIO, size: int, copy: Copier) -> None:
        """Write entry ``name`` with the ``size`` bytes ``copy`` reads from ``source``."""
        if self._closed:
            raise ValueError("write to a closed ZipStreamWriter")
        raw_name = name.encode("utf-8")
        flags = 0 if name.isascii() else _FLAG_UTF8
        if self._deflate and (size < ZIP32_LIMIT - DEFLATE_MARGIN or size > ZIP32_LIMIT):
            self._add_deflated(raw_name, flags, source, size, copy)
        else:
            self._add_stored(raw_name, flags, source, size, copy)

    # -- STORED: CRC and sizes in the local header ------------------------------------------

    def _add_stored(self, name: bytes, flags: int, source: BinaryIO, size: int,
                    copy: Copier) -> None:
        spool: BinaryIO | None = None
        try:
            if _seekable(source):
                start = source.tell()
                crc = _crc_of(source, size, name)
                source.seek(start)
                data = source
            else:
                spool, crc = self._spool(source, size, name)
                data = spool
            record = _Record(name, flags, STORED, crc, size, size, self._offset)
            self._local_header(record, zip64=size >= ZIP32_LIMIT)
            written = _CrcCounter(self._write)
            copy(data, written.write)
            if written.crc != crc or written.size != size:
                raise AssemblyError(f"file {name.decode()!r} changed while it was read: "
                                    "its bytes differ between two reads")
        finally:
            if spool is not None:
                spool.close()
        self._records.append(record)

    def _spool(self, source: BinaryIO, size: int, name: bytes) -> tuple[BinaryIO, int]:
        """A temporary copy of ``size`` bytes of ``source``, and their CRC-32."""
        try:
            spool: BinaryIO = tempfile.TemporaryFile(dir=self._spool_dir)  # noqa: SIM115
        except OSError as exc:
            raise TransientAssemblyError(
                f"cannot spool {name.decode()!r}: {exc.strerror or exc}") from exc
        try:
            counter = _CrcCounter(_spool_writer(spool, name))
            _read_exactly(source, size, name, counter.write)
            spool.seek(0)
        except BaseException:
            spool.close()
            raise
        return spool, counter.crc

    # -- DEFLATED: streamed, with a data descriptor -------------------------------------------

    def _add_deflated(self, name: bytes, flags: int, source: BinaryIO, size: int,
                      copy: Copier) -> None:
        zip64 = size > ZIP32_LIMIT
        record = _Record(name, flags | _FLAG_DESCRIPTOR, DEFLATED, 0, 0, 0, self._offset)
        self._local_header(record, zip64=zip64)
        compressor = zlib.compressobj(self._level, zlib.DEFLATED, -15)
        start = self._offset
        counter = _CrcCounter(lambda data: self._write(compressor.compress(data)))
        copy(source, counter.write)
        self._write(compressor.flush())
        record.crc, record.size = counter.crc, counter.size
        record.compressed = self._offset - start
        if not zip64 and record.compressed >= ZIP32_LIMIT:  # excluded by DEFLATE_MARGIN
            raise AssemblyError(f"entry {name.decode()!r} grew past 4 GiB when deflated")
        layout = "<4sLQQ" if zip64 else "<4sLLL"
        self._write(struct.pack(layout, b"PK\x07\x08", record.crc, record.compressed,
                                record.size))
        self._records.append(record)

    # -- headers ------------------------------------------------------------------------------

    def _local_header(self, record: _Record, *, zip64: bool) -> None:
        extra = b""
        crc, compressed, size = record.crc, record.compressed, record.size
        if zip64:
            extra = struct.pack("<2H2Q", 1, 16, size, compressed)
            compressed = size = ZIP32_LIMIT
        version = 45 if zip64 else 20
        self._write(_LOCAL.pack(b"PK\x03\x04", version, record.flags, record.method,
                                self._time, self._date, crc, compressed, size,
                                len(record.name), len(extra)) + record.name + extra)

    def close(self) -> None:
        """Write the central directory and the end records; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        start = self._offset
        any64 = False
        for record in self._records:
            fields = [record.size, record.compressed, record.offset]
            big = [value for value in fields if value >= ZIP32_LIMIT]
            extra = struct.pack(f"<2H{len(big)}Q", 1, 8 * len(big), *big) if big else b""
            any64 = any64 or bool(big)
            version = 45 if big else 20
            size, compressed, offset = (min(value, ZIP32_LIMIT) for value in fields)
            self._write(_CENTRAL.pack(
                b"PK\x01\x02", _UNIX << 8 | version, version, record.flags, record.method,
                self._time, self._date, record.crc, compressed, size, len(record.name),
                len(extra), 0, 0, 0, _MODE, offset) + record.name + extra)
        directory = self._offset - start
        count = len(self._records)
        if any64 or count >= 0xFFFF or start >= ZIP32_LIMIT or directory >= ZIP32_LIMIT:
            end64 = self._offset
            self._write(_END64.pack(b"PK\x06\x06", _END64.size - 12, _UNIX << 8 | 45, 45, 0, 0,
                                    count, count, directory, start))
            self._write(_LOCATOR64.pack(b"PK\x06\x07", 0, end64, 1))
        self._write(_END.pack(b"PK\x05\x06", 0, 0, min(count, 0xFFFF), min(count, 0xFFFF),
                              min(directory, ZIP32_LIMIT), min(start, ZIP32_LIMIT), 0))


class _CrcCounter:
    """Passes chunks on to ``write``, keeping their CRC-32 and total size."""

    def __init__(self, write: Callable[[bytes], Any]) -> None:
        self._next = write
        self.crc = 0
        self.size = 0

    def write(self, data: bytes) -> None:
        self.crc = zlib.crc32(data, self.crc)
        self.size += len(data)
        self._next(data)


def _seekable(source: BinaryIO) -> bool:
    check = getattr(source, "seekable", None)
    try:
        return bool(check and check())
    except OSError:
        return False


def _spool_writer(spool: BinaryIO, name: bytes) -> Callable[[bytes], Any]:
    def write(data: bytes) -> None:
        try:
            spool.write(data)
        except OSError as exc:  # disk full: may go away
            raise TransientAssemblyError(
                f"cannot spool {name.decode()!r}: {exc.strerror or exc}") from exc
    return write


def _read_exactly(source: BinaryIO, size: int, name: bytes,
                  write: Callable[[bytes], Any]) -> None:
    left = size
    while left > 0:
        data = source.read(min(CHUNK_SIZE, left))
        if not data:
            raise AssemblyError(f"file {name.decode()!r} changed while it was read: "
                                f"{size - left} bytes, expected {size}")
        write(bytes(data))
        left -= len(data)
    if source.read(1):
        raise AssemblyError(f"file {name.decode()!r} changed while it was read: "
                            f"more than {size} bytes")


def _crc_of(source: BinaryIO, size: int, name: bytes) -> int:
    counter = _CrcCounter(lambda data: None)
    _read_exactly(source, size, name, counter.write)
    return counter.crc
