"""The assembler port: a DepositSubmission in, a Package (a spooled file) out.

An assembler is built once per repository from its ``assembler`` entry in
repositories.json (``options``) and an ``AssemblerContext`` (where files and templates
may come from), and ``assemble`` may be called from several threads. Options it can
work around (a funder code NIHMS does not define) are ``warnings``, not errors, so a
PASS configuration loads; ``config check`` shows them. A Package carries its own
``warnings`` (metadata left out or written as given) for the Deposit's statusMessage.
Adapters are registered by specification name in ``ASSEMBLERS`` and imported lazily,
so a missing optional dependency fails only the format that needs it.

Where PASS's ``beanName`` chooses the format (``choose_format``), the entry's own
``specification`` is a label, as in PASS: PASS copies it into the package's metadata
(``PackageStream.Metadata.spec``, the SWORD ``Packaging`` its old SWORD transport sent)
and nowhere else; the package's name comes from the format (PASS names every NIHMS
package ``nihms-native-2022-05_<date>_<time>_<submission id>``, whatever the label).
Here the label is ``Package.label``, set in ``create_assembler``; names are made by
``common.package_basename`` from the format. ``Package.specification`` stays the
format's own identifier, which transports send as Packaging: a 2022-05 NIHMS package
labelled ``nihms-native-2017-07`` is not declared to a server as the 2017 format.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

from deposit_services.assemblers.sources import ANONYMOUS, FileSources
from deposit_services.errors import RepositoryConfigError, TransientAssemblyError
from deposit_services.model.submission import DepositSubmission
from deposit_services.registry import load_adapter

log = logging.getLogger(__name__)

CHUNK_SIZE = 1024 * 1024


@dataclass(frozen=True)
class Package:
    """A built package on disk with the figures a transport needs. ``warnings`` say
    what of the submission's metadata was left out or written as given (a DOI that does
    not parse, a funder code NIHMS does not define), for the Deposit's statusMessage."""

    path: Path
    name: str
    size: int
    md5: str
    sha256: str
    mime_type: str
    specification: str
    warnings: tuple[str, ...] = ()
    #: the repositories.json entry's own ``specification`` where PASS's beanName chose
    #: the format (PASS's package metadata ``spec``), else ``specification``
    label: str = ""
    #: each submission file written: (its id, its size, "<algorithm>:<hex digest>" of its
    #: bytes when the format computed one, else ""), so a resubmission whose file changed
    #: under the same name is not taken for a duplicate (service/duplicates.py)
    contents: tuple[tuple[str, int, str], ...] = ()

    def open(self) -> BinaryIO:
        return self.path.open("rb")

    def discard(self) -> None:
        """Remove the spooled file; safe to call twice."""
        self.path.unlink(missing_ok=True)


class BackgroundHasher:
    """Feeds chunks to hash objects in a thread, in order (hashlib releases the GIL, so
    hashing overlaps reading, compressing and writing). The queue is bounded, so memory
    stays at a few chunks. ``close`` waits until every chunk is hashed."""

    QUEUED_CHUNKS = 4

    def __init__(self, hashers: Iterable[Any], name: str = "hash") -> None:
        self._updates = [h.update for h in hashers]
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=self.QUEUED_CHUNKS)
        self._thread: threading.Thread | None = None
        self._name = name

    def _run(self) -> None:
        while (data := self._queue.get()) is not None:
            for update in self._updates:
                update(data)

    def update(self, data: bytes) -> None:
        """Hash ``data`` (immutable bytes: it is read later, in the thread)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()
        self._queue.put(data)

    def finish(self, data: bytes = b"") -> None:
        """Hash the last chunk and wait for all of them. With no thread started yet (a
        package smaller than a chunk) it is hashed here: a thread would cost more."""
        if self._thread is None:
            for update in self._updates:
                update(data)
            return
        if data:
            self._queue.put(data)
        self.close()

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None


class HashingWriter:
    """A write-only, non-seekable file object that counts and hashes what passes through.

    Being non-seekable makes ``zipfile`` stream (data descriptors instead of seeking
    back), so the package's own checksums are computed while it is written. MD5 and
    SHA-256 each run in a background thread (hashlib releases the GIL), in write order,
    while the caller reads and compresses the next chunk; a bounded queue keeps memory
    flat. The threads start with the first full chunk: a smaller package is hashed in
    ``close``. ``close`` (or reading ``md5``/``sha256``) waits for the threads.
    """

    _SMALL = 64 * 1024

    def __init__(self, target: BinaryIO, *, name: str = "package file") -> None:
        self._target = target
        self._name = name
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._sha256 = hashlib.sha256()
        self._pending = bytearray()
        # one thread each: MD5 is the slowest hash, and on two cores the split keeps up
        self._hashers = (BackgroundHasher((self._md5,), "package-md5"),
                         BackgroundHasher((self._sha256,), "package-sha256"))
        self._closed = False
        self._discard = False
        self.size = 0

    def _hash(self, data: bytes) -> None:
        for hasher in self._hashers:
            hasher.update(data)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._discard:  # the package is being thrown away; late writes go nowhere
            return len(data)
        if self._closed:
            raise ValueError("write to a closed HashingWriter")
        try:
            self._target.write(data)
        except OSError as exc:  # disk full, quota, I/O error: may go away, so transient
            raise TransientAssemblyError(
                f"cannot write {self._name}: {exc.strerror or exc}") from exc
        size = len(data) if not isinstance(data, memoryview) else data.nbytes
        if size < self._SMALL:
            self._pending += data
            if len(self._pending) >= CHUNK_SIZE:
                self._hash(bytes(self._pending))
                self._pending.clear()
        else:
            if self._pending:
                self._hash(bytes(self._pending))
                self._pending.clear()
            self._hash(data if isinstance(data, bytes) else bytes(data))
        self.size += size
        return size

    def close(self) -> None:
        """Hash what is left and stop the thread; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        tail = bytes(self._pending)
        self._pending.clear()
        for hasher in self._hashers:
            hasher.finish(tail)

    def abort(self) -> None:
        """Stop hashing and drop any later write (an abandoned zip or gzip writer still
        writes its trailer when it is garbage-collected)."""
        self._discard = True
        self.close()

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        if not self._discard:
            self._target.flush()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    @property
    def md5(self) -> str:
        self.close()
        return self._md5.hexdigest()

    @property
    def sha256(self) -> str:
        self.close()
        return self._sha256.hexdigest()


@dataclass(frozen=True)
class AssemblerContext:
    """What an assembler needs besides its options: where http(s) files come from, and
    the directories a template named in its options is looked up in, in order
    (repositories.json's own directory, then the configured template directory)."""

    sources: FileSources = ANONYMOUS
    template_dirs: tuple[Path, ...] = ()


class Assembler(ABC):
    """Builds one kind of package. Subclasses set ``specification``."""

    specification: ClassVar[str]

    def __init__(self, options: Mapping[str, Any] | None = None,
                 context: AssemblerContext | None = None) -> None:
        self.options: Mapping[str, Any] = options or {}
        self.context = context or AssemblerContext()
        self.sources: FileSources = self.context.sources  # where http(s) files come from
        self._warnings: list[str] = []
        #: the entry's label for its packages (``create_assembler``); None: the format's
        self.label: str | None = None

    @property
    def warnings(self) -> tuple[str, ...]:
        """Options this assembler works around (logged once, when it is built)."""
        return tuple(self._warnings)

    def warn(self, message: str) -> None:
        log.warning("%s assembler: %s", self.specification, message)
        self._warnings.append(message)

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
    "ro-crate-1.1": "deposit_services.assemblers.rocrate:RoCrateAssembler",
}

# What each adapter writes, for people (``config check``).
FORMAT_TITLES: dict[str, str] = {
    "deposit_services.assemblers.simple:SimpleZipAssembler": "SimpleZip package",
    "deposit_services.assemblers.nihms:Nihms2022Assembler": "NIHMS bulk package 2022-05",
    "deposit_services.assemblers.nihms:Nihms2017Assembler": "NIHMS bulk package 2017-07",
    "deposit_services.assemblers.mets:DSpaceMetsAssembler": "DSpace METS SIP",
    "deposit_services.assemblers.bagit:BagItAssembler": "BagIt 1.0 bag",
    "deposit_services.assemblers.binary:BinaryAssembler": "single file (Binary)",
    "deposit_services.assemblers.rocrate:RoCrateAssembler": "RO-Crate 1.1",
}

# PASS's assembler bean names (Spring's default name of each @Component, matched
# ignoring case) -> the specification in ASSEMBLERS that writes what that bean writes.
# In PASS the bean decides the format and ``specification`` is only a label:
# current PASS's nihmsAssembler writes the 2022-05 package whatever the label says.
PASS_BEANS: dict[str, str] = {
    "nihmsAssembler": "nihms-native-2022-05",  # pass-support NihmsAssembler
    "bagItAssembler": "bagit-1.0",  # pass-support BagItAssembler
    "simpleAssembler": "simple",  # pass-support's SimpleAssembler (its test configs)
    "dspaceMetsAssembler": "dspace-mets",  # OA-PASS (2020) DspaceMetsAssembler
    # pass-support InvenioRdmAssembler: the submission's files, which the invenioRdm
    # transport uploads one by one out of the zip (transports/invenio/files.py)
    "invenioRdmAssembler": "simple",
    # pass-support DSpaceAssembler: the submission's files, each of which the DSpace
    # transport uploads as its own bitstream of the workspace item (as PASS's does)
    "DSpaceAssembler": "simple",
}
# PASS beans whose packages only PASS's own transports take; not implemented here.
PASS_BEANS_ELSEWHERE: dict[str, str] = {
    "preassembledAssembler": "a PASS test fixture",
}


def pass_bean(bean_name: str | None, beans: Mapping[str, str] = PASS_BEANS) -> str | None:
    """The key of ``beans`` that ``bean_name`` names, ignoring case and spaces, or None."""
    folded = (bean_name or "").strip().casefold()
    return next((bean for bean in beans if bean.casefold() == folded), None) \
        if folded else None


@dataclass(frozen=True)
class FormatChoice:
    """The package format a repositories.json ``assembler`` entry gets, and why.

    ``specification`` is the ASSEMBLERS key to build; ``label`` is the entry's own
    ``specification`` (PASS writes it into the package metadata, not into the format);
    ``bean_name`` is PASS's bean when the entry names one (it then decides the format).
    """

    specification: str
    label: str
    bean_name: str | None = None

    @property
    def title(self) -> str:
        target = ASSEMBLERS.get(self.specification.strip().lower(), "")
        return FORMAT_TITLES.get(target, self.specification)

    def describe(self) -> str:
        """``NIHMS bulk package 2022-05 (beanName nihmsAssembler; label ...)``."""
        if self.bean_name:
            return f"{self.title} (beanName {self.bean_name}; label {self.label})"
        return f"{self.title} (specification {self.label})"


def _what_we_have() -> str:
    beans = ", ".join(f"{bean} ({spec})" for bean, spec in PASS_BEANS.items())
    formats = ", ".join(f"{title} ({spec})" for spec, title in (
        (spec, FORMAT_TITLES[ASSEMBLERS[spec]]) for spec in (
            "simple", "nihms-native-2022-05", "nihms-native-2017-07", "dspace-mets",
            "bagit-1.0", "binary")))
    return (f"beans implemented: {beans}; or drop beanName and name a specification: "
            f"{formats}")


def choose_format(specification: str, bean_name: str | None = None) -> FormatChoice:
    """The format for an entry, as current PASS chooses it: by ``beanName`` when there is
    one, else by ``specification`` (so ``nihms-native-2017-07`` without a beanName is
    the 2017 format, on purpose). RepositoryConfigError names an unknown bean or
    specification and what is implemented."""
    if bean_name is not None and bean_name.strip():
        bean = pass_bean(bean_name)
        if bean is not None:
            return FormatChoice(PASS_BEANS[bean], specification, bean)
        elsewhere = pass_bean(bean_name, PASS_BEANS_ELSEWHERE)
        if elsewhere is not None:
            raise RepositoryConfigError(
                f"beanName {bean_name!r} is PASS's assembler for "
                f"{PASS_BEANS_ELSEWHERE[elsewhere]}, not implemented here ({_what_we_have()})")
        raise RepositoryConfigError(f"unknown beanName {bean_name!r} ({_what_we_have()})")
    assembler_class(specification)  # an unknown specification: RepositoryConfigError
    return FormatChoice(specification, specification)


def assembler_class(specification: str) -> type[Assembler]:
    """The adapter registered for ``specification``; RepositoryConfigError if none."""
    cls: type[Assembler] = load_adapter(ASSEMBLERS, specification.strip().lower(), Assembler,
                                        "assembler specification", RepositoryConfigError)
    return cls


def create_assembler(specification: str, options: Mapping[str, Any] | None,
                     sources: FileSources = ANONYMOUS, *,
                     template_dirs: Sequence[Path] = (),
                     bean_name: str | None = None,
                     label: str | None = None) -> Assembler:
    """The assembler for ``specification`` (or for PASS's ``bean_name``, which then
    decides, see ``choose_format``); RepositoryConfigError if it cannot be built.
    Its ``warnings`` list what it works around (for ``config check`` to show).

    ``label``: the entry's own ``specification`` when ``specification`` is already the
    format chosen for its bean (``AssemblerConfig``). Where a bean chose the format,
    its packages carry the label (``Package.label``), as PASS's metadata does; without
    a bean the specification names the format and the packages carry the format's."""
    context = AssemblerContext(sources=sources, template_dirs=tuple(template_dirs))
    choice = choose_format(specification, bean_name)
    assembler = assembler_class(choice.specification)(options, context)
    if choice.bean_name is not None:
        assembler.label = label or choice.label
    return assembler
