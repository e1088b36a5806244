"""SimpleZip (``simple``): the submission's files in a zip, plus a checksum manifest.

Entries are the files by name (sanitised, made unique), then ``manifest-<alg>.txt``
for each configured algorithm in ``sha256sum`` format (``<hex>  <name>``), which
``sha256sum -c`` checks after unpacking.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from deposit_services.assemblers.archive import ArchiveOptions, Entry, EntryNames
from deposit_services.assemblers.base import Assembler, AssemblerContext, Package
from deposit_services.assemblers.common import (
    PackageBuilder,
    file_name,
    package_basename,
    require_files,
)
from deposit_services.model.submission import DepositSubmission


class SimpleZipAssembler(Assembler):
    specification = "http://purl.org/net/sword/package/SimpleZip"

    def __init__(self, options: Mapping[str, Any] | None = None,
                 context: AssemblerContext | None = None) -> None:
        super().__init__(options, context)
        self.archive = ArchiveOptions.from_options(self.options)
        self.archive.require_archive(self.specification)
        for warning in self.archive.warnings:
            self.warn(warning)

    def assemble(
        self, submission: DepositSubmission, workdir: Path, timestamp: datetime
    ) -> Package:
        require_files(submission)
        options = self.archive
        name = package_basename("simple", submission, timestamp) + options.extension
        manifest_names = [f"manifest-{alg}.txt" for alg in options.algorithms]
        names = EntryNames(reserved=manifest_names)
        with PackageBuilder(workdir, name, options, timestamp,
                            specification=self.specification, label=self.label,
                            sources=self.sources) as builder:
            entries: list[Entry] = [
                builder.add_file(file, names.unique(file_name(file))) for file in submission.files
            ]
            for alg, manifest_name in zip(options.algorithms, manifest_names, strict=True):
                lines = "".join(f"{e.digests[alg]}  {e.name}\n" for e in entries)
                builder.add_bytes(manifest_name, lines.encode())
            return builder.package()
