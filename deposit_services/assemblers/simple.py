"""SimpleZip (``simple``): the submission's files in a zip, plus a checksum manifest.

Entries are the files by name (sanitised, made unique), then ``manifest-<alg>.txt``
for each configured algorithm in ``sha256sum`` format (``<hex>  <name>``).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, cast

from deposit_services.assemblers.archive import (
    ArchiveFormat,
    ArchiveOptions,
    ArchiveWriter,
    Entry,
    EntryNames,
)
from deposit_services.assemblers.base import Assembler, HashingWriter, Package, spool_path
from deposit_services.assemblers.sources import open_file
from deposit_services.errors import AssemblyError
from deposit_services.model.submission import DepositSubmission


def package_basename(prefix: str, submission: DepositSubmission, timestamp: datetime) -> str:
    """``<prefix>_<yyyy-MM-dd_HH-mm-ss>_<submission id>``, safe as a file name."""
    safe_id = EntryNames.sanitise(submission.id).replace("/", "_").replace(":", "_")
    return f"{prefix}_{timestamp:%Y-%m-%d_%H-%M-%S}_{safe_id}"


class SimpleZipAssembler(Assembler):
    specification = "http://purl.org/net/sword/package/SimpleZip"

    def assemble(self, submission: DepositSubmission, workdir: Path, timestamp: datetime) -> Package:
        options = ArchiveOptions.from_options(self.options)
        if options.archive is ArchiveFormat.NONE:
            raise AssemblyError("SimpleZip needs an archive (ZIP or TAR), not NONE")
        if not submission.files:
            raise AssemblyError(f"submission {submission.id} has no files to package")
        name = package_basename("simple", submission, timestamp) + options.extension
        path = spool_path(workdir, name)
        try:
            with path.open("wb") as raw:
                out = HashingWriter(raw)
                writer = ArchiveWriter(cast(Any, out), options, timestamp)
                manifest_names = [f"manifest-{alg}.txt" for alg in options.algorithms]
                names = EntryNames(reserved=manifest_names)
                entries: list[Entry] = []
                for file in submission.files:
                    with open_file(file) as (stream, size):
                        entries.append(writer.add_stream(names.unique(file.name), stream, size))
                for alg, manifest_name in zip(options.algorithms, manifest_names, strict=True):
                    lines = "".join(f"{e.digests[alg]}  {e.name}\n" for e in entries)
                    writer.add_bytes(manifest_name, lines.encode())
                writer.close()
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return Package(path=path, name=name, size=out.size, md5=out.md5, sha256=out.sha256,
                       mime_type=options.mime_type, specification=self.specification)
