"""Streaming archive writing (ZIP, TAR, TAR.GZ, TAR.BZ2, or one raw file) for every assembler.

Each input is checksummed with the configured algorithms and written into the archive
in the same pass, in chunks, so memory does not grow with the file size (a STORED zip
entry needs its CRC first: see ``zipstream``). Entries get a fixed timestamp and the
order the caller gives, so the same input gives byte-identical archives. Entry names
are sanitised (``EntryNames``). An entry can keep its first bytes (``head``) so that its
content type can be sniffed without reading the file again.
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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from deposit_services.assemblers.base import BackgroundHasher
from deposit_services.assemblers.zipstream import ZipStreamWriter
from deposit_services.errors import AssemblyError, RepositoryConfigError

CHUNK_SIZE = 1024 * 1024
GZIP_LEVEL = 6  # the default of gzip, zip and tar czf
BZIP2_LEVEL = 9  # the default of bzip2 and tar cjf
SUPPORTED_ALGORITHMS = ("sha512", "sha256", "md5")
ZIP_EPOCH = 315532800  # 1980-01-01, the earliest time a zip entry can carry
HEAD_BYTES = 8192  # what a content sniffer reads (filetype reads this much too)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_MAX_COMPONENT_BYTES = 255  # what common file systems accept for one path component



def utc(timestamp: datetime) -> datetime:
    """A package timestamp in UTC. It is timezone-aware, as every time of the model is
    (validated once, in model.entities); a naive one is a programming error."""
    if timestamp.tzinfo is None:
        raise ValueError(f"package timestamp {timestamp} has no time zone")
    return timestamp.astimezone(UTC)


class ArchiveFormat(enum.StrEnum):
    ZIP = "ZIP"
    TAR = "TAR"
    NONE = "NONE"


class Compression(enum.StrEnum):
    NONE = "NONE"
    GZIP = "GZIP"
    BZIP2 = "BZIP2"


def _choice(enum_cls: type[enum.StrEnum], key: str, value: Any) -> Any:
    try:
        return enum_cls(str(value).strip().upper())
    except ValueError:
        allowed = " / ".join(m.value for m in enum_cls)
        raise RepositoryConfigError(
            f"assembler option {key}={value!r} is not one of {allowed}"
        ) from None


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
        """Options over the format's defaults; RepositoryConfigError names a bad value."""
        archive = _choice(ArchiveFormat, "archive", options.get("archive", archive))
        compression = _choice(Compression, "compression", options.get("compression", compression))
        raw = options.get("algorithms", list(algorithms))
        if isinstance(raw, str):
            raw = [raw]
        algs = tuple(dict.fromkeys(str(a).strip().lower().replace("-", "") for a in raw))
        unknown = [a for a in algs if a not in SUPPORTED_ALGORITHMS]
        if unknown or not algs:
            raise RepositoryConfigError(
                f"assembler option algorithms={raw!r}: supported are "
                f"{', '.join(SUPPORTED_ALGORITHMS)}"
            )
        return cls(archive=archive, compression=compression, algorithms=algs)

    def require_archive(self, specification: str) -> None:
        """Formats with several entries cannot be written with ``archive`` NONE."""
        if self.archive is ArchiveFormat.NONE:
            raise RepositoryConfigError(
                f"{specification} holds several files: assembler option archive must be "
                "ZIP or TAR, not NONE"
            )

    @property
    def extension(self) -> str:
        if self.archive is ArchiveFormat.ZIP:
            return ".zip"
        if self.archive is ArchiveFormat.TAR:
            return {Compression.NONE: ".tar", Compression.GZIP: ".tar.gz",
                    Compression.BZIP2: ".tar.bz2"}[self.compression]
        return ""

    @property
    def warnings(self) -> tuple[str, ...]:
        """What these options do that a configuration's author may not expect."""
        if self.archive is ArchiveFormat.ZIP and self.compression is Compression.BZIP2:
            return ("assembler option compression=BZIP2 with archive=ZIP: zip entries are "
                    "deflated (GZIP), as PASS writes them; Java's ZipInputStream cannot read "
                    "bzip2 entries",)
        return ()

    @property
    def mime_type(self) -> str:
        if self.archive is ArchiveFormat.ZIP:
            return "application/zip"
        if self.archive is ArchiveFormat.TAR:
            return {Compression.NONE: "application/x-tar", Compression.GZIP: "application/gzip",
                    Compression.BZIP2: "application/x-bzip2"}[self.compression]
        return "application/octet-stream"


@dataclass(frozen=True)
class Entry:
    """What was written for one archive entry: its name, size and hex digests, and its
    first ``HEAD_BYTES`` bytes when they were asked for (to sniff its content type)."""

    name: str
    size: int
    digests: Mapping[str, str]
    head: bytes = field(default=b"", repr=False)


def _shorten(component: str) -> str:
    """A path component cut to 255 UTF-8 bytes, keeping its extension."""
    if len(component.encode()) <= _MAX_COMPONENT_BYTES:
        return component
    stem, dot, ext = component.rpartition(".")
    if not stem or len(ext) > 16:
        stem, dot, ext = component, "", ""
    budget = _MAX_COMPONENT_BYTES - len((dot + ext).encode())
    cut = stem.encode()[:budget].decode(errors="ignore")
    return cut + dot + ext


class EntryNames:
    """Makes entry names safe and unique, deterministically in call order.

    No absolute paths, no ``.``/``..`` segments, no control characters, Unicode NFC,
    components of at most 255 bytes; a name already used (ignoring case, so that the
    archive also unpacks on case-insensitive file systems) gets ``-2``, ``-3`` ...
    before its extension. ``flat`` turns directories into ``_`` for formats whose
    archives hold no folders.
    """

    def __init__(self, reserved: Iterable[str] = (), *, flat: bool = False) -> None:
        self._used: set[str] = {r.casefold() for r in reserved}
        self._flat = flat

    @staticmethod
    def sanitise(name: str, *, flat: bool = False) -> str:
        name = unicodedata.normalize("NFC", name)
        name = _CONTROL.sub("_", name).replace("\\", "/")
        parts = [p.strip() for p in name.split("/")]
        parts = [_shorten(p) for p in parts if p and p.strip(".")]
        joined = ("_" if flat else "/").join(parts)
        return (_shorten(joined) if flat else joined) or "file"

    def unique(self, name: str) -> str:
        name = self.sanitise(name, flat=self._flat)
        folder, slash, leaf = name.rpartition("/")
        stem, dot, ext = leaf.rpartition(".")
        if not stem:
            stem, dot, ext = leaf, "", ""
        candidate, n = name, 1
        while candidate.casefold() in self._used:
            n += 1
            candidate = f"{folder}{slash}{stem}-{n}{dot}{ext}"
        self._used.add(candidate.casefold())
        return candidate


def new_hashers(algorithms: Iterable[str]) -> dict[str, Any]:
    return {alg: hashlib.new(alg, usedforsecurity=False) for alg in algorithms}


class ArchiveWriter:
    """Writes entries into ``out`` (a non-seekable HashingWriter) as one archive.

    ZIP entries are STORED (compression NONE) with CRC and sizes in their local headers,
    or DEFLATED (GZIP, and BZIP2, which Java cannot read in a zip) with data descriptors:
    both as Java's ``ZipInputStream`` reads them. TAR entries are POSIX pax records. With
    ``ArchiveFormat.NONE`` exactly one entry may be written, as the raw bytes. ``close``
    finishes the archive; it does not close ``out``. ``spool_dir`` is where a download
    going into a STORED zip entry is spooled while its CRC is computed.
    """

    def __init__(self, out: BinaryIO, options: ArchiveOptions, timestamp: datetime,
                 spool_dir: Path | None = None) -> None:
        self._options = options
        self._mtime = max(int(utc(timestamp).timestamp()), ZIP_EPOCH)
        self._date_time = datetime.fromtimestamp(self._mtime, UTC).timetuple()[:6]
        self._zip: ZipStreamWriter | None = None
        self._compressor: BinaryIO | None = None
        self._sink: BinaryIO = out
        self._tar_size = 0
        self._entries = 0
        if options.archive is ArchiveFormat.ZIP:
            self._zip = ZipStreamWriter(out, deflate=options.compression is not Compression.NONE,
                                        level=GZIP_LEVEL, date_time=self._date_time,
                                        spool_dir=spool_dir)
        elif options.archive is ArchiveFormat.TAR:
            if options.compression is Compression.GZIP:
                self._compressor = gzip.GzipFile(  # type: ignore[assignment]
                    filename="", mode="wb", fileobj=out, compresslevel=GZIP_LEVEL, mtime=0
                )
            elif options.compression is Compression.BZIP2:
                self._compressor = bz2.BZ2File(  # type: ignore[assignment]
                    out, "wb", compresslevel=BZIP2_LEVEL
                )
            if self._compressor is not None:
                self._sink = self._compressor

    def add_stream(
        self, name: str, source: BinaryIO, size: int, algorithms: Iterable[str] | None = None,
        *, keep_head: bool = False,
    ) -> Entry:
        """Copy exactly ``size`` bytes of ``source`` into entry ``name``, hashing them.

        ``algorithms`` defaults to the configured ones; ``keep_head`` keeps the first
        ``HEAD_BYTES`` in the Entry. A source shorter or longer than ``size`` (a file
        that changed while it was read) is an AssemblyError.
        """
        hashers = new_hashers(self._options.algorithms if algorithms is None else algorithms)
        head = bytearray() if keep_head else None

        def copy(data: BinaryIO, write: Callable[[bytes], Any]) -> None:
            _copy(data, write, size, hashers, name, head)

        if self._zip is not None:
            self._zip.add(name, source, size, copy)
        elif self._options.archive is ArchiveFormat.TAR:
            self._tar_header(name, size)
            copy(source, self._sink.write)
            self._tar_write(b"\0" * (-size % tarfile.BLOCKSIZE), size)
        else:
            if self._entries:
                raise AssemblyError("archive NONE holds exactly one file")
            copy(source, self._sink.write)
        self._entries += 1
        return Entry(name, size, {alg: h.hexdigest() for alg, h in hashers.items()},
                     bytes(head or b""))

    def add_bytes(self, name: str, data: bytes, algorithms: Iterable[str] | None = None) -> Entry:
        return self.add_stream(name, io.BytesIO(data), len(data), algorithms)

    def _tar_header(self, name: str, size: int) -> None:
        info = tarfile.TarInfo(name)
        info.size = size
        info.mtime = self._mtime
        info.mode = 0o644
        info.uname = info.gname = ""
        header = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        self._tar_write(header, 0)

    def _tar_write(self, data: bytes, counted: int) -> None:
        """Write ``data`` (padding or a header); ``counted`` bytes went through _copy."""
        if data:
            self._sink.write(data)
        self._tar_size += counted + len(data)

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
        elif self._options.archive is ArchiveFormat.TAR:
            # two zero blocks end the archive; pad to tar's 10240-byte record like GNU tar
            self._tar_write(b"\0" * (2 * tarfile.BLOCKSIZE), 0)
            self._tar_write(b"\0" * (-self._tar_size % tarfile.RECORDSIZE), 0)
        elif not self._entries:
            raise AssemblyError("archive NONE needs exactly one file; none was written")
        if self._compressor is not None:
            self._compressor.close()


def _copy(
    source: BinaryIO, write: Callable[[bytes], Any], size: int, hashers: Mapping[str, Any],
    name: str, head: bytearray | None = None,
) -> None:
    """Read ``size`` bytes in chunks; each is written, and hashed in a background thread
    while the next is read (small entries are hashed inline). The first ``HEAD_BYTES``
    go into ``head`` when one is given."""
    left = size
    background = BackgroundHasher(hashers.values(), "entry-hash") if size > CHUNK_SIZE else None
    updates = [background.update] if background else [h.update for h in hashers.values()]
    try:
        while left > 0:
            data = source.read(min(CHUNK_SIZE, left))
            if not data:
                raise AssemblyError(f"file {name!r} changed while it was read: "
                                    f"{size - left} bytes, expected {size}")
            data = bytes(data) if not isinstance(data, bytes) else data
            if head is not None and len(head) < HEAD_BYTES:
                head += data[:HEAD_BYTES - len(head)]
            for update in updates:
                update(data)
            write(data)
            left -= len(data)
        if source.read(1):
            raise AssemblyError(f"file {name!r} changed while it was read: "
                                f"more than {size} bytes")
    finally:
        if background is not None:
            background.close()
