"""What every assembler shares: the spooled package being written, names, warnings.

``PackageBuilder`` owns the spool file, the HashingWriter (the package's own size, MD5
and SHA-256, computed while it is written) and the ArchiveWriter; it removes the spool
file when anything fails, and turns a read error into an AssemblyError naming the file.
It also collects the package's warnings (metadata left out or written as given), which
end in the Deposit's statusMessage.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any, BinaryIO, cast
from urllib.parse import unquote, urlsplit

from lxml import etree

from deposit_services.assemblers.archive import (
    ArchiveFormat,
    ArchiveOptions,
    ArchiveWriter,
    Entry,
    EntryNames,
    utc,
)
from deposit_services.assemblers.base import HashingWriter, Package, spool_path
from deposit_services.assemblers.sources import ANONYMOUS, FileSources, open_file
from deposit_services.errors import AssemblyError
from deposit_services.model.submission import DepositFile, DepositSubmission

log = logging.getLogger(__name__)


def package_basename(prefix: str, submission: DepositSubmission, timestamp: datetime) -> str:
    """``<prefix>_<yyyy-MM-dd_HH-mm-ss>_<submission id>`` (UTC), safe as a file name.

    The one rule for package names. ``prefix`` comes from the format, never from an
    entry's label (PASS: ``nihms-native-2022-05_...`` for every NIHMS package, whatever
    its entry's ``specification`` says). The time is the deposit's fixed timestamp, so
    a rebuilt package has the same name (PASS uses the clock, and ``HH-MM-ss`` with the
    month where the minutes belong; its NIHMS names are otherwise the same)."""
    safe_id = EntryNames.sanitise(submission.id, flat=True).replace(":", "_") or "submission"
    return f"{prefix}_{utc(timestamp):%Y-%m-%d_%H-%M-%S}_{safe_id}"


def _has_extension(name: str) -> bool:
    stem, dot, ext = name.rpartition(".")
    return bool(stem.strip()) and bool(dot) and 0 < len(ext) <= 10 and " " not in ext


def file_name(file: DepositFile) -> str:
    """The name a file gets in a package (before sanitising).

    The File's ``name`` when it looks like a file name; otherwise the last segment of
    its location when that does (PASS test graphs name files ``test_chart`` and keep
    ``Chart.jpg`` in the URI, and PASS's assemblers used the URI's name); else ``name``.
    """
    if _has_extension(file.name):
        return file.name
    leaf = unquote(PurePosixPath(urlsplit(file.location).path).name)
    return leaf if _has_extension(leaf) else file.name or leaf or file.id


class PackageBuilder:
    """A package being written: ``with PackageBuilder(...) as b: b.add_file(...)``, then
    ``b.package()``. On an exception inside the block the spool file is removed."""

    def __init__(
        self,
        workdir: Path,
        name: str,
        options: ArchiveOptions,
        timestamp: datetime,
        *,
        specification: str,
        label: str | None = None,
        mime_type: str | None = None,
        sources: FileSources = ANONYMOUS,
    ) -> None:
        self.name = name
        self._sources = sources
        self.options = options
        self._workdir = workdir
        self._path = spool_path(workdir, name)
        self._timestamp = timestamp
        self._specification = specification
        self._label = label or specification  # Package.label: see assemblers.base
        self._mime_type = mime_type or options.mime_type
        self._raw: BinaryIO | None = None
        self._out: HashingWriter | None = None
        self._writer: ArchiveWriter | None = None
        self._closed = False
        self._warnings: list[str] = []
        self._contents: list[tuple[str, int, str]] = []  # Package.contents

    def __enter__(self) -> PackageBuilder:
        try:
            self._raw = self._path.open("xb")
        except OSError as exc:
            raise AssemblyError(
                f"cannot create package file {self._path}: {exc.strerror or exc}"
            ) from exc
        self._out = HashingWriter(self._raw, name=str(self._path))
        self._writer = ArchiveWriter(cast(Any, self._out), self.options, self._timestamp,
                                     spool_dir=self._workdir)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._out is not None:
            if kind is None:
                self._out.close()
            else:
                self._out.abort()
        if self._raw is not None:
            self._raw.close()
        if kind is not None:
            self._path.unlink(missing_ok=True)

    @property
    def writer(self) -> ArchiveWriter:
        assert self._writer is not None, "use PackageBuilder in a with block"
        return self._writer

    def warn(self, message: str) -> None:
        """Record (and log) something the package's recipient or operator should know."""
        if message not in self._warnings:
            log.warning("package %s: %s", self.name, message)
            self._warnings.append(message)

    def add_file(
        self, file: DepositFile, entry_name: str, algorithms: tuple[str, ...] | None = None,
        *, keep_head: bool = False,
    ) -> Entry:
        """Read ``file`` into entry ``entry_name``; AssemblyError names the file.
        ``keep_head``: the Entry keeps the file's first bytes (to sniff its type)."""
        algs = self.options.algorithms if algorithms is None else algorithms
        if not algs and self.options.archive is not ArchiveFormat.NONE:
            algs = ("md5",)  # for Package.contents: the duplicate check's file digest
        with open_file(file, self._sources) as (stream, size):
            try:
                entry = self.writer.add_stream(entry_name, stream, size, algs,
                                               keep_head=keep_head)
            except OSError as exc:  # writes are AssemblyErrors already: this is a read
                raise AssemblyError(
                    f"file {file.name!r} ({file.location}) cannot be read: {exc.strerror or exc}"
                ) from exc
        digest = min(f"{alg}:{hex}" for alg, hex in entry.digests.items()) if entry.digests else ""
        self._contents.append((file.id, entry.size, digest))
        return entry

    def add_bytes(self, entry_name: str, data: bytes,
                  algorithms: tuple[str, ...] | None = None) -> Entry:
        return self.writer.add_bytes(entry_name, data, algorithms)

    def package(self, mime_type: str | None = None) -> Package:
        """Finish the archive and describe the package (call once, inside the block);
        ``mime_type`` overrides the one given at construction (Binary sniffs its file)."""
        assert self._out is not None and self._raw is not None and not self._closed
        self.writer.close()
        self._raw.flush()
        self._closed = True
        out = self._out
        if self.options.archive is ArchiveFormat.NONE:  # the one file is the package
            self._contents = [(id, size, f"md5:{out.md5}") for id, size, _ in self._contents]
        return Package(path=self._path, name=self.name, size=out.size, md5=out.md5,
                       sha256=out.sha256, mime_type=mime_type or self._mime_type,
                       specification=self._specification, warnings=tuple(self._warnings),
                       label=self._label, contents=tuple(self._contents))


def xml_document(root: Any) -> bytes:
    """``root`` as a UTF-8 XML document with a declaration, indented, deterministic."""
    body: bytes = etree.tostring(root, encoding="UTF-8", pretty_print=True)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body


def require_files(submission: DepositSubmission) -> None:
    if not submission.files:
        raise AssemblyError(f"submission {submission.id} has no files to package")
