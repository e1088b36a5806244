"""The assembler port: a DepositSubmission in, a Package (a spooled file) out.

An assembler is built once per repository from its ``assembler`` entry in
repositories.json (``options``), and ``assemble`` may be called from several threads.
Adapters are registered by specification name in ``ASSEMBLERS`` and imported lazily,
so a missing optional dependency fails only the format that needs it.
"""

from __future__ import annotations

import hashlib
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

from deposit_services.errors import RepositoryConfigError
from deposit_services.model.submission import DepositSubmission
from deposit_services.registry import load_adapter

CHUNK_SIZE = 1024 * 1024


@dataclass(frozen=True)
class Package:
    """A built package on disk with the figures a transport needs."""

    path: Path
    name: str
    size: int
    md5: str
    sha256: str
    mime_type: str
    specification: str

    def open(self) -> BinaryIO:
        return self.path.open("rb")

    def discard(self) -> None:
        """Remove the spooled file; safe to call twice."""
        self.path.unlink(missing_ok=True)


class HashingWriter:
    """A write-only, non-seekable file object that counts and hashes what passes through.

    Being non-seekable makes ``zipfile`` stream (data descriptors instead of seeking
    back), so the package's own checksums are computed while it is written.
    """

    def __init__(self, target: BinaryIO) -> None:
        self._target = target
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._target.write(data)
        self._md5.update(data)
        self._sha256.update(data)
        self.size += len(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self._target.flush()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    @property
    def md5(self) -> str:
        return self._md5.hexdigest()

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()


class Assembler(ABC):
    """Builds one kind of package. Subclasses set ``specification`` and ``mime_type``."""

    specification: ClassVar[str]

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self.options: Mapping[str, Any] = options or {}

    @abstractmethod
    def assemble(
        self, submission: DepositSubmission, workdir: Path, timestamp: datetime
    ) -> Package:
        """Write the package for ``submission`` into ``workdir`` and describe it.

        ``timestamp`` is fixed per deposit, so that a rebuilt package has the same name
        and bytes (the transports rely on that to recognise a package already sent).
        Raises ``AssemblyError`` naming the file when an input cannot be read.
        """


def spool_path(workdir: Path, name: str) -> Path:
    """A fresh, unique path in ``workdir`` for a package being written."""
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir / f".{os.getpid()}-{os.urandom(6).hex()}-{name}"


# specification (lower case) -> "module:Class"; aliases map to the same adapter.
ASSEMBLERS: dict[str, str] = {
    "simple": "deposit_services.assemblers.simple:SimpleZipAssembler",
    "http://purl.org/net/sword/package/simplezip": (
        "deposit_services.assemblers.simple:SimpleZipAssembler"
    ),
    "nihms-native-2022-05": "deposit_services.assemblers.nihms:Nihms2022Assembler",
    "nihms-native-2017-07": "deposit_services.assemblers.nihms:Nihms2017Assembler",
    "http://purl.org/net/sword/package/metsdspacesip": (
        "deposit_services.assemblers.mets:DSpaceMetsAssembler"
    ),
    "dspace-mets": "deposit_services.assemblers.mets:DSpaceMetsAssembler",
    "bagit-1.0": "deposit_services.assemblers.bagit:BagItAssembler",
    "bagit": "deposit_services.assemblers.bagit:BagItAssembler",
    "http://purl.org/net/sword/package/binary": (
        "deposit_services.assemblers.binary:BinaryAssembler"
    ),
    "binary": "deposit_services.assemblers.binary:BinaryAssembler",
}


def assembler_class(specification: str) -> type[Assembler]:
    """The adapter registered for ``specification``; RepositoryConfigError if none."""
    cls: type[Assembler] = load_adapter(ASSEMBLERS, specification.strip().lower(), Assembler,
                                        "assembler specification", RepositoryConfigError)
    return cls


def create_assembler(specification: str, options: Mapping[str, Any] | None) -> Assembler:
    return assembler_class(specification)(options)
