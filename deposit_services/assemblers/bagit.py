"""BagIt 1.0 bags (``bagit-1.0``, RFC 8493), serialised as a zip or tar with one top
directory named after the bag (RFC 8493 section 4.2).

Inside: ``bagit.txt``, the payload under ``data/``, ``bag-info.txt`` rendered from a
Handlebars template as PASS renders it (``baginfo``: PASS's own template unless the
``baginfo-template-resource`` option names another), ``manifest-<alg>.txt`` and
``tagmanifest-<alg>.txt`` for each configured algorithm (default sha512). Payload
checksums come from the single read of each file.

Options: ``archive``, ``compression``, ``algorithms``, ``baginfo-template-resource``,
``source-organization``, ``organization-address``, ``contact-name``, ``contact-phone``,
``contact-email`` (the template's sourceOrganization ... contactEmail: the template
decides where they go), ``external-description``, ``bag-group-identifier`` (fields that
replace the template's), and ``bag-info`` (label -> value or list of values) for any
other field.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from deposit_services.assemblers.archive import ArchiveOptions, Entry, EntryNames
from deposit_services.assemblers.baginfo import (
    DEFAULT_TEMPLATE,
    MODEL_OPTIONS,
    TEMPLATE_OPTION,
    BagInfoTemplate,
    bag_model,
    find_template,
    one_line,
)
from deposit_services.assemblers.base import Assembler, AssemblerContext, Package
from deposit_services.assemblers.common import (
    PackageBuilder,
    file_name,
    package_basename,
    require_files,
)
from deposit_services.assemblers.identifiers import parse_doi
from deposit_services.errors import AssemblyError, RepositoryConfigError
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
_ARCHIVE_OPTIONS = ("archive", "compression", "algorithms", "bag-info", TEMPLATE_OPTION)
_COMPUTED = {"payload-oxum", "bagging-date", "bag-size"}
BAG_INFO = "bag-info.txt"


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
        for warning in self.archive.warnings:
            self.warn(warning)
        # the model's options reach bag-info.txt through the template; the others replace
        # or add the field they name
        self.overrides = {label: one_line(self.options[option])
                          for option, label in FIELD_OPTIONS.items()
                          if self.options.get(option) and option not in MODEL_OPTIONS}
        fields: list[tuple[str, str]] = []
        for label, value in extra.items():
            clean = one_line(label).replace(":", "")
            if not clean or clean.casefold() in _COMPUTED:
                raise RepositoryConfigError(f"assembler option bag-info: label {label!r} "
                                            "is empty or computed by the assembler")
            values = value if isinstance(value, list) else [value]
            fields.extend((clean, one_line(v)) for v in values)
        self.fields = tuple(fields)
        named = self.options.get(TEMPLATE_OPTION)
        if named is None:
            text, where = DEFAULT_TEMPLATE, "PASS's bag-info.hbm (built in)"
        elif isinstance(named, str):
            text, where = find_template(named, self.context.template_dirs)
        else:
            raise RepositoryConfigError(f"assembler option {TEMPLATE_OPTION} must be a file "
                                        "name")
        self.template = BagInfoTemplate(text, where)
        try:  # a template that cannot be rendered is a configuration error, found now
            self.template.render(bag_model(DepositSubmission(id="check"), 0, 0,
                                           datetime.now().astimezone(), self.options))
        except AssemblyError as exc:
            raise RepositoryConfigError(str(exc)) from exc
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
                            specification=self.specification, label=self.label,
                            sources=self.sources) as builder:
            tags = [builder.add_bytes(f"{bag}/bagit.txt", BAGIT_TXT)]
            payload: list[Entry] = []
            for file in submission.files:
                # RFC 8493 percent-encodes "%" in manifests, bagit-python does not decode
                # it: a name without "%" reads the same to both.
                name = names.unique(file_name(file).replace("%", "_"))
                payload.append(builder.add_file(file, f"{bag}/{PAYLOAD_DIR}{name}"))
            info = self.bag_info(submission, payload, timestamp)
            doi = parse_doi(submission.article.doi)
            if doi is not None and not doi.valid and doi.raw in info.decode():
                builder.warn(doi.as_given(BAG_INFO))
            tags.append(builder.add_bytes(f"{bag}/{BAG_INFO}", info))
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
        """The rendered template; Payload-Oxum made right, option fields replacing the
        template's, the ``bag-info`` option's fields appended."""
        octets, count = sum(e.size for e in payload), len(payload)
        model = bag_model(submission, octets, count, timestamp, self.options)
        fields: list[tuple[str, str]] = []
        overrides = {label.casefold(): (label, value) for label, value in self.overrides.items()}
        replaced: set[str] = set()
        for label, value in self.template.render(model):
            key = label.casefold()
            if key == "payload-oxum" and value != f"{octets}.{count}":
                log.info("submission %s: %s wrote Payload-Oxum %s; the payload is %d.%d",
                         submission.id, self.template.where, value, octets, count)
                value = f"{octets}.{count}"
            if key in overrides:
                if key in replaced:
                    continue  # the option's one value replaces every one of the template's
                replaced.add(key)
                label, value = overrides[key]
            fields.append((label, value))
        fields.extend(field for key, field in overrides.items() if key not in replaced)
        fields.extend(self.fields)
        return "".join(f"{label}: {value}\n" for label, value in fields).encode()
