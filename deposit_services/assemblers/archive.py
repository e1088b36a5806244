"""Streaming archive writing (ZIP, TAR, TAR.GZ, TAR.BZ2) shared by every assembler.

Each input is read once: its bytes are checksummed with the configured algorithms and
written into the archive in the same pass, in chunks, so memory does not grow with the
file size. Entries get a fixed timestamp and the order the caller gives, so the same
input gives byte-identical archives. Entry names are sanitised (``EntryNames``).
"""

from __future__ import annotations

import bz2
import enum
import gzip
import hashlib
import io
import re
import tarfile
import unicodedata
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO

from deposit_services.errors import AssemblyError

CHUNK_SIZE = 1024 * 1024
GZIP_LEVEL = 6  # gzip's and tar czf's default
SUPPORTED_ALGORITHMS = ("sha512", "sha256", "md5")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ArchiveFormat(enum.StrEnum):
    ZIP = "ZIP"
    TAR = "TAR"
    NONE = "NONE"


class Compression(enum.StrEnum):
    NONE = "NONE"
    GZIP = "GZIP"
    BZIP2 = "BZIP2"


@dataclass(frozen=True)
class ArchiveOptions:
    """The archive-related assembler options of repositories.json, validated."""

    archive: ArchiveFormat = ArchiveFormat.ZIP
    compression: Compression = Compression.GZIP
    algorithms: tuple[str, ...] = ("sha256",)

    @classmethod
    def from_options(
        cls,
        options: Mapping[str, Any],
        *,
        archive: ArchiveFormat = ArchiveFormat.ZIP,
        compression: Compression = Compression.GZIP,
        algorithms: tuple[str, ...] = ("sha256",),
    ) -> ArchiveOptions:
        try:
            archive = ArchiveFormat(str(options.get("archive", archive)).upper())
            compression = Compression(str(options.get("compression", compression)).upper())
        except ValueError as exc:
            raise AssemblyError(f"bad assembler option: {exc}") from exc
        raw = options.get("algorithms", list(algorithms))
        if isinstance(raw, str):
            raw = [raw]
        algs = tuple(str(a).lower().replace("-", "") for a in raw)
        unknown = [a for a in algs if a not in SUPPORTED_ALGORITHMS]
        if unknown or not algs:
            raise AssemblyError(
                f"bad assembler option algorithms={raw!r}: supported are "
                f"{', '.join(SUPPORTED_ALGORITHMS)}"
            )
        return cls(archive=archive, compression=compression, algorithms=algs)

    @property
    def extension(self) -> str:
        if self.archive is ArchiveFormat.ZIP:
            return ".zip"
        if self.archive is ArchiveFormat.TAR:
            return {Compression.NONE: ".tar", Compression.GZIP: ".tar.gz",
                    Compression.BZIP2: ".tar.bz2"}[self.compression]
        return ""

    @property
    def mime_type(self) -> str:
        if self.archive is ArchiveFormat.ZIP:
            return "application/zip"
        return {Compression.NONE: "application/x-tar", Compression.GZIP: "application/gzip",
                Compression.BZIP2: "application/x-bzip2"}[self.compression]


@dataclass(frozen=True)
class Entry:
    """What was written for one archive entry."""

    name: str
    size: int
    digests: Mapping[str, str]


class EntryNames:
    """Makes entry names safe and unique, deterministically in call order.

    No absolute paths, no ``.``/``..`` segments, no control characters, Unicode NFC;
    a repeated name gets ``-2``, ``-3``... before its extension.
    """

    def __init__(self, reserved: Iterable[str] = ()) -> None:
        self._used: set[str] = set(reserved)

    @staticmethod
    def sanitise(name: str) -> str:
        name = unicodedata.normalize("NFC", name)
        name = _CONTROL.sub("_", name).replace("\\", "/")
        parts = [p.strip() for p in name.split("/")]
        parts = [p for p in parts if p and p not in (".", "..")]
        return "/".join(parts) or "file"

    def unique(self, name: str) -> str:
        name = self.sanitise(name)
        candidate, n = name, 1
        stem, dot, ext = name.rpartition(".")
        if not stem or "/" in ext:
            stem, dot, ext = name, "", ""
        while candidate in self._used:
            n += 1
            candidate = f"{stem}-{n}{dot}{ext}"
        self._used.add(candidate)
        return candidate


def _hashers(algorithms: Iterable[str]) -> dict[str, Any]:
    return {alg: hashlib.new(alg, usedforsecurity=False) for alg in algorithms}


class ArchiveWriter:
    """Writes entries into ``out`` (a non-seekable HashingWriter) as one archive.

    With ``ArchiveFormat.NONE`` exactly one entry may be written, as the raw bytes.
    """

    def __init__(self, out: BinaryIO, options: ArchiveOptions, timestamp: datetime) -> None:
        self._out = out
        self._options = options
        self._mtime = max(int(timestamp.timestamp()), 315532800)  # zip's epoch is 1980
        self._date_time = datetime.utcfromtimestamp(self._mtime).timetuple()[:6]
        self._zip: zipfile.ZipFile | None = None
        self._tar: tarfile.TarFile | None = None
        self._compressor: BinaryIO | None = None
        self._raw_written = False
        if options.archive is ArchiveFormat.ZIP:
            method = {Compression.NONE: zipfile.ZIP_STORED, Compression.GZIP: zipfile.ZIP_DEFLATED,
                      Compression.BZIP2: zipfile.ZIP_BZIP2}[options.compression]
            self._zip = zipfile.ZipFile(out, "w", compression=method, allowZip64=True,
                                        compresslevel=GZIP_LEVEL if method == zipfile.ZIP_DEFLATED
                                        else None)
        elif options.archive is ArchiveFormat.TAR:
            target: BinaryIO = out
            if options.compression is Compression.GZIP:
                self._compressor = gzip.GzipFile(  # type: ignore[assignment]
                    filename="", mode="wb", fileobj=out, compresslevel=GZIP_LEVEL, mtime=0
                )
            elif options.compression is Compression.BZIP2:
                self._compressor = bz2.BZ2File(out, "wb")  # type: ignore[assignment]
            if self._compressor is not None:
                target = self._compressor
            self._tar = tarfile.open(fileobj=target, mode="w|", format=tarfile.PAX_FORMAT)

    def add_stream(self, name: str, source: BinaryIO, size: int) -> Entry:
        """Copy ``size`` bytes from ``source`` into entry ``name``, hashing them."""
        hashers = _hashers(self._options.algorithms)
        reader = _HashingReader(source, hashers)
        if self._zip is not None:
            info = zipfile.ZipInfo(name, date_time=self._date_time)  # type: ignore[arg-type]
            info.compress_type = self._zip.compression
            info.external_attr = 0o644 << 16
            with self._zip.open(info, "w", force_zip64=size > 0x7FFFFFFF) as dest:
                _copy(reader, dest, size, name)
        elif self._tar is not None:
            tarinfo = tarfile.TarInfo(name)
            tarinfo.size = size
            tarinfo.mtime = self._mtime
            tarinfo.mode = 0o644
            tarinfo.uname = tarinfo.gname = ""
            self._tar.addfile(tarinfo, _LimitedReader(reader, size, name))
        else:
            if self._raw_written:
                raise AssemblyError("archive NONE holds exactly one file")
            self._raw_written = True
            _copy(reader, self._out, size, name)
        if reader.count != size:
            raise AssemblyError(f"file {name!r} changed while it was read "
                                f"({reader.count} bytes, expected {size})")
        return Entry(name, size, {alg: h.hexdigest() for alg, h in hashers.items()})

    def add_bytes(self, name: str, data: bytes) -> Entry:
        return self.add_stream(name, io.BytesIO(data), len(data))

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
        if self._tar is not None:
            self._tar.close()
        if self._compressor is not None:
            self._compressor.close()


class _HashingReader:
    def __init__(self, source: BinaryIO, hashers: Mapping[str, Any]) -> None:
        self._source = source
        self._hashers = hashers
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        for h in self._hashers.values():
            h.update(data)
        self.count += len(data)
        return data


class _LimitedReader:
    """What tarfile reads from: exactly ``size`` bytes, an error if the file is short."""

    def __init__(self, source: _HashingReader, size: int, name: str) -> None:
        self._source = source
        self._left = size
        self._name = name

    def read(self, size: int = -1) -> bytes:
        want = self._left if size < 0 else min(size, self._left)
        data = self._source.read(want) if want else b""
        if want and not data:
            raise AssemblyError(f"file {self._name!r} is shorter than its size")
        self._left -= len(data)
        return data


def _copy(source: _HashingReader, dest: Any, size: int, name: str) -> None:
    left = size
    while left > 0:
        data = source.read(min(CHUNK_SIZE, left))
        if not data:
            raise AssemblyError(f"file {name!r} is shorter than its size")
        dest.write(data)
        left -= len(data)
