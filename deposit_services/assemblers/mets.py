"""DSpace METS SIP (``http://purl.org/net/sword/package/METSDSpaceSIP``), PASS's
JScholarship format: a zip with the files under ``data/`` and ``mets.xml`` at the root.

mets.xml follows the DSpace METS SIP Profile 1.0 as DSpace's SWORDv2 METS ingester reads
it (and as PASS built it, see tests/fixtures): a DC dmdSec (``qualifieddc``: title,
abstract, publisher, contributors, bibliographic citation, DOI), a DIM dmdSec for an
embargo (``local.embargo.lift`` / ``local.embargo.terms``), a fileSec whose files carry
MD5 CHECKSUM, SIZE and MIMETYPE measured while the bytes were packed (MIMETYPE sniffed
from the file's first bytes, see ``mime``), and a structMap. Elements are in METS
schema order; IDs are deterministic so the package is reproducible. The two dmdSecs
have different GROUPIDs: DSpace ingests one dmdSec per group. A DOI that does not parse
is written as given in ``dcterms:hasVersion`` (free text), with a package warning.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from lxml import etree

from deposit_services.assemblers.archive import (
    ArchiveFormat,
    ArchiveOptions,
    Entry,
    EntryNames,
    utc,
)
from deposit_services.assemblers.base import Assembler, AssemblerContext, Package
from deposit_services.assemblers.common import (
    PackageBuilder,
    file_name,
    package_basename,
    require_files,
    xml_document,
)
from deposit_services.assemblers.identifiers import parse_doi
from deposit_services.assemblers.mime import choose
from deposit_services.errors import RepositoryConfigError
from deposit_services.model.submission import DepositFile, DepositSubmission

METS_NS = "http://www.loc.gov/METS/"
XLINK_NS = "http://www.w3.org/1999/xlink"
DC_NS = "http://purl.org/dc/elements/1.1/"
DCTERMS_NS = "http://purl.org/dc/terms/"
DIM_NS = "http://www.dspace.org/xmlns/dspace/dim"
PROFILE = "DSpace METS SIP Profile 1.0"
METS_NAME = "mets.xml"
DATA_DIR = "data/"
AGENT = "deposit-services"
MAX_CITATION_AUTHORS = 3

_M = f"{{{METS_NS}}}"
_NSMAP = {None: METS_NS, "xlink": XLINK_NS}


def _sub(parent: Any, tag: str, text: str | None = None, **attributes: str) -> Any:
    element = etree.SubElement(parent, tag, {k: v for k, v in attributes.items() if v})
    if text is not None:
        element.text = text
    return element


def embargo_note(submission: DepositSubmission) -> str | None:
    end = submission.article.embargo_end_date
    if end is None:
        return None
    return f"Submission published under an embargo, which will last until {end.isoformat()}"


def citation(submission: DepositSubmission) -> str | None:
    """``Authors (year). Title. Journal, volume(issue). https://doi.org/DOI`` from what
    is known; None when there is not even a title."""
    article, journal = submission.article, submission.journal
    if not article.title:
        return None
    names = [a.name for a in submission.authors if a.name]
    parts: list[str] = []
    if names:
        shown = ", ".join(names[:MAX_CITATION_AUTHORS])
        parts.append(shown + (", et al." if len(names) > MAX_CITATION_AUTHORS else "."))
    year = (article.publication_date or "")[:4]
    if year.isdigit():
        parts.append(f"({year}).")
    parts.append(article.title.rstrip(".") + ".")
    source = journal.title or ""
    if article.volume:
        source += f", {article.volume}" if source else article.volume
        if article.issue:
            source += f"({article.issue})"
    if source:
        parts.append(source + ".")
    doi = parse_doi(article.doi)
    if doi is not None and doi.value is not None:
        parts.append(f"https://doi.org/{doi.value}")
    return " ".join(parts)


class DSpaceMetsAssembler(Assembler):
    specification = "http://purl.org/net/sword/package/METSDSpaceSIP"

    def __init__(self, options: Mapping[str, Any] | None = None,
                 context: AssemblerContext | None = None) -> None:
        super().__init__(options, context)
        self.archive = ArchiveOptions.from_options(self.options, algorithms=("md5",))
        if self.archive.archive is not ArchiveFormat.ZIP:
            raise RepositoryConfigError(
                f"{self.specification} is a zip (DSpace reads nothing else): assembler option "
                f"archive must be ZIP, not {self.archive.archive}"
            )
        for warning in self.archive.warnings:
            self.warn(warning)

    def assemble(
        self, submission: DepositSubmission, workdir: Path, timestamp: datetime
    ) -> Package:
        require_files(submission)
        names = EntryNames(flat=True)
        name = package_basename("dspace-mets", submission, timestamp) + self.archive.extension
        with PackageBuilder(workdir, name, self.archive, timestamp,
                            specification=self.specification, label=self.label,
                            sources=self.sources) as builder:
            written: list[tuple[DepositFile, Entry]] = []
            for file in submission.files:
                entry_name = DATA_DIR + names.unique(file_name(file))
                written.append((file, builder.add_file(file, entry_name, ("md5",),
                                                       keep_head=True)))
            doi = parse_doi(submission.article.doi)
            if doi is not None and not doi.valid:
                builder.warn(doi.as_given(METS_NAME))
            builder.add_bytes(METS_NAME, self.mets_xml(submission, written, timestamp), ())
            return builder.package()

    def mets_xml(
        self, submission: DepositSubmission, written: list[tuple[DepositFile, Entry]],
        timestamp: datetime,
    ) -> bytes:
        root = etree.Element(_M + "mets", nsmap=_NSMAP)
        for key, value in (("ID", "sword-mets"), ("OBJID", f"submission:{submission.id}"),
                           ("LABEL", "DSpace SWORD Item"), ("PROFILE", PROFILE)):
            root.set(key, value)
        header = _sub(root, _M + "metsHdr",
                      CREATEDATE=utc(timestamp).strftime("%Y-%m-%dT%H:%M:%SZ"))
        agent = _sub(header, _M + "agent", ROLE="CUSTODIAN", TYPE="ORGANIZATION")
        _sub(agent, _M + "name", AGENT)
        dmd_ids = ["dmd-dc"]
        self._dc_section(root, submission)
        if submission.article.embargo_end_date is not None:
            self._dim_section(root, submission)
            dmd_ids.append("dmd-dim")
        file_sec = _sub(root, _M + "fileSec", ID="filesec-1")
        group = _sub(file_sec, _M + "fileGrp", ID="filegrp-content", USE="CONTENT")
        struct = _sub(root, _M + "structMap", ID="structmap-1",
                      LABEL="DSpace CONTENT bundle structure")
        item = _sub(struct, _M + "div", ID="div-item", DMDID=" ".join(dmd_ids),
                    LABEL="DSpace Item Div")
        for n, (file, entry) in enumerate(written, start=1):
            element = _sub(group, _M + "file", ID=f"file-{n}",
                           MIMETYPE=choose(file, entry.name, entry.head), SIZE=str(entry.size),
                           CHECKSUM=entry.digests["md5"], CHECKSUMTYPE="MD5")
            locat = _sub(element, _M + "FLocat", ID=f"flocat-{n}", LOCTYPE="URL")
            locat.set(f"{{{XLINK_NS}}}href", entry.name)
            _sub(item, _M + "fptr", ID=f"fptr-{n}", FILEID=f"file-{n}")
        return xml_document(root)

    @staticmethod
    def _wrap(root: Any, dmd_id: str, label: str, **mdtype: str) -> Any:
        section = _sub(root, _M + "dmdSec", ID=dmd_id, GROUPID=f"{dmd_id}-group")
        wrap = _sub(section, _M + "mdWrap", ID=f"{dmd_id}-wrap", LABEL=label, **mdtype)
        return _sub(wrap, _M + "xmlData")

    def _dc_section(self, root: Any, submission: DepositSubmission) -> None:
        data = self._wrap(root, "dmd-dc", "Dublin Core", MDTYPE="DC")
        dc = etree.SubElement(data, f"{{{DCTERMS_NS}}}qualifieddc",
                              nsmap={"dc": DC_NS, "dcterms": DCTERMS_NS})
        article = submission.article
        d, t = f"{{{DC_NS}}}", f"{{{DCTERMS_NS}}}"
        for tag, value in ((d + "title", article.title), (t + "abstract", article.abstract),
                           (d + "publisher", submission.journal.publisher)):
            if value:
                _sub(dc, tag, value)
        for author in submission.authors:
            if author.name:
                _sub(dc, d + "contributor", author.name)
        text = citation(submission)
        if text:
            _sub(dc, t + "bibliographicCitation", text)
        doi = parse_doi(article.doi)
        if doi is not None:
            dc.append(etree.Comment("This DOI points to the published version of the "
                                    "manuscript, available after any embargo period has "
                                    "been satisfied."))
            _sub(dc, t + "hasVersion", doi.value or doi.raw)
        note = embargo_note(submission)
        if note:
            _sub(dc, d + "description", note)

    def _dim_section(self, root: Any, submission: DepositSubmission) -> None:
        data = self._wrap(root, "dmd-dim", "DSpace Intermediate Metadata", MDTYPE="OTHER",
                          OTHERMDTYPE="DIM")
        dim = etree.SubElement(data, f"{{{DIM_NS}}}dim",
                               nsmap={"dim": DIM_NS})
        end = submission.article.embargo_end_date
        assert end is not None
        field = f"{{{DIM_NS}}}field"
        for schema, element, qualifier, value in (
            ("local", "embargo", "lift", end.isoformat()),
            ("local", "embargo", "terms", end.isoformat()),
            ("dc", "description", "provenance", embargo_note(submission)),
        ):
            _sub(dim, field, value, mdschema=schema, element=element, qualifier=qualifier)
