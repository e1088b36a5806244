"""BagIt 1.0 bags (``bagit-1.0``, RFC 8493), serialised as a zip or tar with one top
directory named after the bag (RFC 8493 section 4.2).

Inside: ``bagit.txt``, the payload under ``data/``, ``bag-info.txt`` (Payload-Oxum,
Bagging-Date, the submission's identifiers, organisation and contact fields from the
options), ``manifest-<alg>.txt`` and ``tagmanifest-<alg>.txt`` for each configured
algorithm (default sha512). Payload checksums come from the single read of each file.

Options: ``archive``, ``compression``, ``algorithms``, ``source-organization``,
``organization-address``, ``contact-name``, ``contact-phone``, ``contact-email``,
``external-description``, ``bag-group-identifier``, and ``bag-info`` (label -> value or
list of values) for any other bag-info.txt field.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from deposit_services.assemblers.archive import ArchiveOptions, Entry, EntryNames, utc
from deposit_services.assemblers.base import Assembler, AssemblerContext, Package
from deposit_services.assemblers.common import (
    PackageBuilder,
    file_name,
    package_basename,
    require_files,
)
from deposit_services.errors import RepositoryConfigError
from deposit_services.model.submission import DepositSubmission

log = logging.getLogger(__name__)

BAGIT_TXT = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
PAYLOAD_DIR = "data/"
# option name -> bag-info.txt label (RFC 8493 section 2.2.2 reserved labels)
FIELD_OPTIONS = {
    "source-organization": "Source-Organization",
    "organization-address": "Organization-Address",
    "contact-name": "Contact-Name",
    "contact-phone": "Contact-Phone",
    "contact-email": "Contact-Email",
    "external-description": "External-Description",
    "bag-group-identifier": "Bag-Group-Identifier",
}
_ARCHIVE_OPTIONS = ("archive", "compression", "algorithms", "bag-info")
_COMPUTED = {"payload-oxum", "bagging-date", "bag-size"}


def _one_line(value: Any) -> str:
    """A bag-info value on one line: line breaks and runs of white space become a space."""
    return " ".join(str(value).split())


def human_size(octets: int) -> str:
    size = float(octets)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{octets} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


class BagItAssembler(Assembler):
    specification = "bagit-1.0"

    def __init__(self, options: Mapping[str, Any] | None = None,
                 context: AssemblerContext | None = None) -> None:
        super().__init__(options, context)
        self.archive = ArchiveOptions.from_options(self.options, algorithms=("sha512",))
        self.archive.require_archive(self.specification)
        extra = self.options.get("bag-info") or {}
        if not isinstance(extra, Mapping):
            raise RepositoryConfigError("assembler option bag-info must map bag-info.txt "
                                        "labels to values")
        fields: list[tuple[str, str]] = []
        for option, label in FIELD_OPTIONS.items():
            if self.options.get(option):
                fields.append((label, _one_line(self.options[option])))
        for label, value in extra.items():
            clean = _one_line(label).replace(":", "")
            if not clean or clean.casefold() in _COMPUTED:
                raise RepositoryConfigError(f"assembler option bag-info: label {label!r} "
                                            "is empty or computed by the assembler")
            values = value if isinstance(value, list) else [value]
            fields.extend((clean, _one_line(v)) for v in values)
        self.fields = tuple(fields)
        unknown = sorted(set(self.options) - set(FIELD_OPTIONS) - set(_ARCHIVE_OPTIONS))
        if unknown:
            log.warning("bagit-1.0 assembler: options %s are not used", ", ".join(unknown))

    def assemble(
        self, submission: DepositSubmission, workdir: Path, timestamp: datetime
    ) -> Package:
        require_files(submission)
        options = self.archive
        bag = package_basename("bag", submission, timestamp)
        names = EntryNames()
        with PackageBuilder(workdir, bag + options.extension, options, timestamp,
                            specification=self.specification, sources=self.sources) as builder:
            tags = [builder.add_bytes(f"{bag}/bagit.txt", BAGIT_TXT)]
            payload: list[Entry] = []
            for file in submission.files:
                # RFC 8493 percent-encodes "%" in manifests, bagit-python does not decode
                # it: a name without "%" reads the same to both.
                name = names.unique(file_name(file).replace("%", "_"))
                payload.append(builder.add_file(file, f"{bag}/{PAYLOAD_DIR}{name}"))
            info = self.bag_info(submission, payload, timestamp)
            tags.append(builder.add_bytes(f"{bag}/bag-info.txt", info))
            for alg in options.algorithms:
                lines = "".join(f"{e.digests[alg]}  {e.name[len(bag) + 1:]}\n" for e in payload)
                tags.append(builder.add_bytes(f"{bag}/manifest-{alg}.txt", lines.encode()))
            for alg in options.algorithms:
                lines = "".join(f"{e.digests[alg]}  {e.name[len(bag) + 1:]}\n" for e in tags)
                builder.add_bytes(f"{bag}/tagmanifest-{alg}.txt", lines.encode())
            return builder.package()

    def bag_info(
        self, submission: DepositSubmission, payload: list[Entry], timestamp: datetime
    ) -> bytes:
        octets = sum(e.size for e in payload)
        fields = list(self.fields)
        labels = {label.casefold() for label, _ in fields}
        if "external-description" not in labels:
            title = submission.title or "untitled"
            fields.append(("External-Description", _one_line(
                f"PASS submission {submission.id}: {title}")))
        fields.append(("Bagging-Date", utc(timestamp).date().isoformat()))
        if submission.article.doi:
            fields.append(("External-Identifier", f"doi:{submission.article.doi}"))
        if submission.article.pmid:
            fields.append(("External-Identifier", f"pmid:{_one_line(submission.article.pmid)}"))
        fields.append(("Internal-Sender-Identifier", _one_line(submission.id)))
        if submission.title:
            fields.append(("Internal-Sender-Description", _one_line(submission.title)))
        fields.append(("Bag-Size", human_size(octets)))
        fields.append(("Payload-Oxum", f"{octets}.{len(payload)}"))
        return "".join(f"{label}: {value}\n" for label, value in fields).encode()
