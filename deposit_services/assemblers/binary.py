"""SWORD Binary (``http://purl.org/net/sword/package/Binary``): one file sent as it is.

The package is the file's bytes, named like the file, with its MIME type (sniffed from
its first bytes, see ``mime``), so that the repository stores exactly what was
submitted. Which file: option ``select`` is ``only`` (default: the submission must have
exactly one file, so nothing is left out silently) or ``manuscript`` (the manuscript;
the other files are not sent, which is logged).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from deposit_services.assemblers.archive import ArchiveFormat, ArchiveOptions, EntryNames
from deposit_services.assemblers.base import Assembler, AssemblerContext, Package
from deposit_services.assemblers.common import (
    PackageBuilder,
    file_name,
    require_files,
)
from deposit_services.assemblers.mime import choose
from deposit_services.errors import AssemblyError, RepositoryConfigError
from deposit_services.model.submission import DepositFile, DepositSubmission

log = logging.getLogger(__name__)

SELECT_CHOICES = ("only", "manuscript")


class BinaryAssembler(Assembler):
    specification = "http://purl.org/net/sword/package/Binary"

    def __init__(self, options: Mapping[str, Any] | None = None,
                 context: AssemblerContext | None = None) -> None:
        super().__init__(options, context)
        archive = str(self.options.get("archive", "NONE")).upper()
        if archive != ArchiveFormat.NONE:
            raise RepositoryConfigError(
                f"{self.specification} sends one file as it is: assembler option archive "
                f"must be NONE or absent, not {archive}"
            )
        compression = str(self.options.get("compression", "NONE")).upper()
        if compression != "NONE":
            raise RepositoryConfigError(
                f"{self.specification} sends one file as it is: assembler option compression "
                f"must be NONE or absent, not {compression}"
            )
        self.select = str(self.options.get("select", "only")).strip().lower()
        if self.select not in SELECT_CHOICES:
            raise RepositoryConfigError(
                f"assembler option select={self.options.get('select')!r} is not one of "
                f"{', '.join(SELECT_CHOICES)}"
            )
        self.archive = ArchiveOptions(archive=ArchiveFormat.NONE, algorithms=())

    def choose(self, submission: DepositSubmission) -> DepositFile:
        require_files(submission)
        files = submission.files
        if self.select == "manuscript":
            manuscript = submission.manuscript
            if manuscript is None:
                raise AssemblyError(f"submission {submission.id} has no MANUSCRIPT file to "
                                    "send as a Binary package")
            left_out = [f.name for f in files if f is not manuscript]
            if left_out:
                log.warning("submission %s: Binary package sends the manuscript only; not "
                            "sent: %s", submission.id, ", ".join(left_out))
            return manuscript
        if len(files) != 1:
            raise AssemblyError(
                f"submission {submission.id} has {len(files)} files "
                f"({', '.join(f.name for f in files)}); a Binary package holds exactly one. "
                "Configure SimpleZip, or option select=manuscript to send the manuscript only"
            )
        return files[0]

    def assemble(
        self, submission: DepositSubmission, workdir: Path, timestamp: datetime
    ) -> Package:
        file = self.choose(submission)
        entry = EntryNames.sanitise(file_name(file), flat=True)
        # The submission id keeps two submissions' same-named files apart at a drop
        # target, where an existing same-size name counts as already sent.
        safe_id = EntryNames.sanitise(submission.id, flat=True).replace(":", "_")
        name = f"{safe_id}_{entry}"
        with PackageBuilder(workdir, name, self.archive, timestamp,
                            specification=self.specification, label=self.label,
                            sources=self.sources) as builder:
            written = builder.add_file(file, name, (), keep_head=True)
            return builder.package(mime_type=choose(file, entry, written.head))
